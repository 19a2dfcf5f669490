/**
 * The hug scenario (incident 5, the hug of death: a link on the front page of Reddit brought 10×
 * the usual traffic; a chat server pegged its core and refused everyone, a push server hit its
 * file-descriptor limit). New players arrive at a normal rate R, open loop, each opening a
 * WebSocket, sending connect with its own JWT and subscribing to a channel, then staying for a
 * session (uniform 0.5–1.5 × S seconds, so the normal load is about R × S players online)
 * before leaving. After a warm-up at R, the arrival rate ramps in steps to 10 × R, then stops
 * (the tail) while refused players still come back.
 *
 * The node is configured for a capacity that the normal load fits comfortably
 * (`client.connection_limit`, `client.connection_rate_limit`; load shedding on as by default).
 * A refused upgrade is an HTTP response read with ws's 'unexpected-response'
 * (load/admission-attempt.ts); the player behaves as a good native SDK should: it reads
 * `Retry-After` and tries again after it plus growing full jitter (load/retry-advice.ts), at most
 * `--retries` times. Everything else (timeouts, resets, error replies) is a failure and final.
 *
 * Measured: per phase, attempts, admissions, refusals and failures, the handshake latency of
 * admitted players (socket opened → subscribe confirmed) and of refusals; the Retry-After
 * advice; the server's refusal reasons (/metrics); connections held (client side, and the
 * server's bulwark_admission_connections, sampled); server RSS and CPU (/proc), event-loop lag
 * (/metrics); `/ready` polled throughout with its latency.
 *
 * Bulwark only: the reference servers have no admission.
 *
 * @module
 */
import { classifyFailure, openAttempt } from '../../load/admission-attempt.js';
import type { LeanClient } from '../../load/lean-client.js';
import { fetchMetrics, metricSeries } from '../../harness/api.js';
import {
  arrivalsDue,
  hugSchedule,
  phaseAt,
  phaseOfArrival,
  plannedArrivals,
  type Phase,
} from '../../load/arrival-schedule.js';
import { HttpProbe } from '../../harness/http-probe.js';
import { connectionToken } from '../../harness/jwt.js';
import { watchCpu } from '../../harness/proc.js';
import { fmt } from '../../harness/format.js';
import { parseRetryAfter, retryDelayMs } from '../../load/retry-advice.js';
import { type Chart, type ScenarioContext } from '../../harness/scenario.js';
import { cpuOrNaN, heldOnServer, rssOrNaN, ServerWatch } from '../../harness/server-watch.js';
import { LatencyRecorder, roundSummary, summarize } from '../../harness/stats.js';
import { type RunningServer } from '../../harness/targets.js';
import { Timeline } from '../../harness/timeline.js';
import { round, sleep, tally, waitFor } from '../../harness/util.js';
import { hugCharts } from './report.js';
import { type HugOptions, type HugResult } from './types.js';
import { SAMPLE_MS } from './options.js';

/** Per-phase tallies while running. */
export interface PhaseTally {
  arrivals: number;
  attempts: number;
  admitted: number;
  refused: number;
  failed: number;
  handshake: LatencyRecorder;
  refusal: LatencyRecorder;
  heldAtEnd: number;
  rssAtEndBytes: number;
  serverCpuPercent: number;
}

/** Timeout of connect and subscribe replies. */
export const REPLY_TIMEOUT_MS = 10_000;
/** How long the end of the run waits for attempts in flight. */
export const SETTLE_MS = 5000;
/**
 * HugRun is one run's players and tallies. Each player runs {@link HugRun.player}: attempts
 * until admitted, refused too often, failed, or the run ended; an admitted player holds its
 * connection for its session, then leaves.
 */
export class HugRun {
  readonly tallies: PhaseTally[];
  readonly tl: Timeline;
  /** Admitted handshakes after the warm-up (what the p99 check judges), and all of them. */
  readonly handshakeHug = new LatencyRecorder();
  readonly handshakeAll = new LatencyRecorder();
  readonly refusals = new LatencyRecorder();
  /** First attempt → subscribed, for players admitted after refusals. */
  readonly timeToAdmit = new LatencyRecorder();
  readonly retryAfterValues: number[] = [];
  readonly refusedByStatus: string[] = [];
  readonly failedByKind: string[] = [];
  /** Per admitted player, the refusals it had before getting in. */
  readonly admittedAfterRefusals: number[] = [];
  /** Close codes of admitted players closed by the server. */
  readonly unexpectedCodes: number[] = [];
  readonly heldSeries: Array<[number, number]> = [];
  readonly inFlightSeries: Array<[number, number]> = [];
  firstFailure: string | undefined;
  refusalsWithout = 0;
  attempts = 0;
  inFlight = 0;
  /** Client side: WebSockets upgraded and not closed (the server counts them from accept). */
  held = 0;
  peakHeld = 0;
  left = 0;
  gaveUp = 0;
  retryPendingAtEnd = 0;
  playersFailed = 0;
  notSent = 0;
  arrived = 0;
  /** Set at the end: closes from here on are ours, and nobody retries. */
  stopping = false;
  private readonly clients = new Set<LeanClient>();
  private readonly leaveTimers = new Set<NodeJS.Timeout>();
  private readonly hugStartMs: number;
  private readonly runEndMs: number;

  constructor(
    private readonly server: RunningServer,
    private readonly o: HugOptions,
    readonly phases: readonly Phase[],
    readonly t0: number,
  ) {
    this.tallies = phases.map(() => ({
      arrivals: 0,
      attempts: 0,
      admitted: 0,
      refused: 0,
      failed: 0,
      handshake: new LatencyRecorder(),
      refusal: new LatencyRecorder(),
      heldAtEnd: 0,
      rssAtEndBytes: Number.NaN,
      serverCpuPercent: Number.NaN,
    }));
    this.tl = new Timeline(o.bucketMs, t0);
    this.hugStartMs = phases[0]?.label === 'warm-up' ? phases[0].endMs : 0;
    this.runEndMs = phases[phases.length - 1]?.endMs ?? 0;
  }

  /** sampleClientSide records held and in-flight connections for the charts. */
  sampleClientSide(now: number): void {
    const x = round((now - this.t0) / 1000, 3);
    this.heldSeries.push([x, this.held]);
    this.inFlightSeries.push([x, this.inFlight]);
  }

  /** arrive starts new player number `index` (scheduled by phase `phase`). */
  arrive(index: number, phase: number, now: number): void {
    this.arrived++;
    (this.tallies[phase] as PhaseTally).arrivals++;
    this.tl.count('arrival', 1, now);
    void this.player(index);
  }

  /** stop ends the run: closes from here on are ours, nobody retries, scheduled leaves are cancelled. */
  stop(): void {
    this.stopping = true;
    for (const t of this.leaveTimers) clearTimeout(t);
  }

  /** closeAll destroys every socket (after the final readings). */
  closeAll(): void {
    for (const c of this.clients) c.terminate();
  }

  private async player(index: number): Promise<void> {
    const token = connectionToken(`hug-${index}`, this.server.tokenSecret);
    const channel = `bench:hug${index % this.o.channels}`;
    const firstAt = performance.now();
    for (let refusals = 0; ;) {
      if (this.stopping) {
        this.retryPendingAtEnd++;
        return;
      }
      if (this.inFlight >= this.o.maxInFlight || this.attempts >= this.o.maxAttempts) {
        this.notSent++;
        return;
      }
      const outcome = await this.attempt(token, channel, refusals, firstAt);
      if (outcome.kind !== 'refused') return;
      refusals++;
      if (refusals > this.o.retries) {
        this.gaveUp++;
        return;
      }
      // Come back after the advice plus growing jitter, as a good SDK does.
      const delay = retryDelayMs(outcome.retryAfter, refusals);
      if (performance.now() + delay - this.t0 >= this.runEndMs) {
        this.retryPendingAtEnd++;
        return;
      }
      await sleep(delay);
    }
  }

  /** attempt makes one try: open, then connect and subscribe if admitted. */
  private async attempt(
    token: string,
    channel: string,
    refusals: number,
    firstAt: number,
  ): Promise<{ kind: 'admitted' | 'failed' } | { kind: 'refused'; retryAfter: number | undefined }> {
    this.inFlight++;
    this.attempts++;
    const h0 = performance.now();
    const ph = this.tallies[phaseAt(this.phases, h0 - this.t0)] as PhaseTally;
    ph.attempts++;
    this.tl.count('attempt', 1, h0);
    const state = { counted: false, admitted: false, leaving: false };
    const out = await openAttempt({
      url: this.server.wsUrl,
      protocol: 'centrifugo',
      onClose: (code) => {
        if (!state.counted) return;
        state.counted = false;
        this.held--;
        if (state.admitted && !state.leaving && !this.stopping) this.unexpectedCodes.push(code);
      },
    });
    try {
      if (out.kind === 'refused') {
        const now = performance.now();
        ph.refused++;
        ph.refusal.add(now - h0);
        this.refusals.add(now - h0);
        this.refusedByStatus.push(String(out.status));
        this.tl.count('refused', 1, now);
        this.tl.sample('refusal', now - h0, now);
        const retryAfter = parseRetryAfter(out.retryAfter);
        if (retryAfter === undefined) this.refusalsWithout++;
        else this.retryAfterValues.push(retryAfter);
        return { kind: 'refused', retryAfter };
      }
      if (out.kind === 'failed') return this.fail(ph, out.error);
      const client = out.client;
      this.clients.add(client);
      state.counted = true;
      this.held++;
      this.peakHeld = Math.max(this.peakHeld, this.held);
      try {
        await client.connect(token, REPLY_TIMEOUT_MS);
        await client.subscribe(channel, undefined, REPLY_TIMEOUT_MS);
      } catch (err) {
        if (state.counted) {
          state.counted = false;
          this.held--;
        }
        client.terminate();
        return this.fail(ph, (err as Error).message);
      }
      const now = performance.now();
      const ms = now - h0;
      state.admitted = true;
      ph.admitted++;
      ph.handshake.add(ms);
      this.handshakeAll.add(ms);
      if (h0 - this.t0 >= this.hugStartMs) this.handshakeHug.add(ms);
      this.tl.count('admitted', 1, now);
      this.tl.sample('handshake', ms, now);
      this.admittedAfterRefusals.push(refusals);
      if (refusals > 0) this.timeToAdmit.add(now - firstAt);
      if (this.o.sessionSeconds > 0) this.scheduleLeave(client, state);
      return { kind: 'admitted' };
    } finally {
      this.inFlight--;
    }
  }

  private fail(ph: PhaseTally, message: string): { kind: 'failed' } {
    this.firstFailure ??= message;
    this.failedByKind.push(classifyFailure(message));
    ph.failed++;
    this.playersFailed++;
    this.tl.count('failed');
    return { kind: 'failed' };
  }

  /** scheduleLeave closes the player's connection (normally, 1000) after 0.5–1.5 × the mean session. */
  private scheduleLeave(client: LeanClient, state: { counted: boolean; leaving: boolean }): void {
    const timer = setTimeout(
      () => {
        this.leaveTimers.delete(timer);
        if (this.stopping || !state.counted) return;
        state.leaving = true;
        // Uncounted now: from here the server may still hold it for a moment, never the reverse.
        state.counted = false;
        this.held--;
        this.left++;
        this.tl.count('left');
        client.close();
      },
      this.o.sessionSeconds * 1000 * (0.5 + Math.random()),
    );
    this.leaveTimers.add(timer);
  }
}

/** runHug runs the scenario against a started Bulwark configured with the options' limits. */
export async function runHug(
  server: RunningServer,
  o: HugOptions,
  ctx: ScenarioContext,
): Promise<{ result: HugResult; charts: Chart[] }> {
  const phases = hugSchedule({
    rate: o.rate,
    warmupSeconds: o.warmupSeconds,
    steps: o.steps,
    stepSeconds: o.stepSeconds,
    top: o.top,
    tailSeconds: o.tailSeconds,
  });
  const runEndMs = phases[phases.length - 1]?.endMs ?? 0;
  await sleep(500);
  const rssIdle = rssOrNaN(server.pid);
  const metrics0 = await fetchMetrics(server).catch(() => undefined);
  const probe = new HttpProbe(`http://127.0.0.1:${server.port}/ready`, 500, o.readyTimeoutMs);
  const cpuWindow = watchCpu(server.pid);
  const t0 = performance.now();
  const run = new HugRun(server, o, phases, t0);
  const watch = new ServerWatch(server, t0, SAMPLE_MS, 1000);
  probe.start();
  watch.start();

  // The arrival ticker: open loop, on schedule whatever the server does.
  ctx.progress.begin('hug');
  let phaseIdx = 0;
  let phaseCpu0 = cpuOrNaN(server.pid);
  let phaseT0 = t0;
  let nextSample = t0 + SAMPLE_MS;
  const endPhase = (i: number, now: number) => {
    const t = run.tallies[i] as PhaseTally;
    t.heldAtEnd = run.held;
    t.rssAtEndBytes = rssOrNaN(server.pid);
    const cpu = cpuOrNaN(server.pid);
    t.serverCpuPercent = round(((cpu - phaseCpu0) / ((now - phaseT0) * 1000)) * 100, 1);
    phaseCpu0 = cpu;
    phaseT0 = now;
  };
  for (;;) {
    const now = performance.now();
    const elapsed = now - t0;
    const idx = phaseAt(phases, elapsed);
    while (phaseIdx < idx) endPhase(phaseIdx++, now);
    if (elapsed >= runEndMs) break;
    if (now >= nextSample) {
      run.sampleClientSide(now);
      nextSample += SAMPLE_MS;
    }
    const phase = phases[idx] as Phase;
    const due = arrivalsDue(phases, elapsed);
    // After a stall of the load generator, catch up over several ticks, not in one burst.
    const burst = Math.max(1, Math.ceil(phase.rate * 0.1));
    for (let k = 0; k < burst && run.arrived < due; k++) {
      run.arrive(run.arrived, phaseOfArrival(phases, run.arrived), now);
    }
    ctx.progress.update(
      elapsed / runEndMs,
      `${phase.label}: ${fmt(phase.rate)}/s offered, ${fmt(run.held)} held, ${fmt(run.inFlight)} in flight, ` +
        `${fmt(run.attempts)} attempts, ${fmt(run.refusals.count)} refused`,
    );
    await sleep(2);
  }
  endPhase(phaseIdx, performance.now());
  run.stop();
  await waitFor(() => run.inFlight === 0, SETTLE_MS, 20);
  // Final readings while the admitted players are still connected.
  const unfinished = run.inFlight;
  const unexpected = run.unexpectedCodes.length;
  const heldAtEnd = run.held;
  const cpu = cpuWindow();
  await Promise.all([watch.stop(), probe.stop()]);
  const metrics1 = await fetchMetrics(server).catch(() => undefined);
  if (metrics1) watch.noteHeld(heldOnServer(metrics1));
  const rssEnd = rssOrNaN(server.pid);
  const rssPeak = Math.max(watch.peakRssBytes, Number.isFinite(rssEnd) ? rssEnd : 0);
  const alive = !server.exited();
  ctx.progress.end();
  run.closeAll();

  let serverRejections: Record<string, number> | undefined;
  if (metrics0 && metrics1) {
    const before = metricSeries(metrics0, 'bulwark_rejections_total', 'reason');
    serverRejections = {};
    for (const [reason, n] of metricSeries(metrics1, 'bulwark_rejections_total', 'reason')) {
      const d = n - (before.get(reason) ?? 0);
      if (d > 0) serverRejections[reason] = d;
    }
  }
  const raSorted = Float64Array.from(run.retryAfterValues);
  const ra = summarize(raSorted);
  const admittedTally = tally(run.admittedAfterRefusals);
  const admittedFirstTry = admittedTally['0'] ?? 0;
  delete admittedTally['0'];
  const refused = run.refusals.count;
  const admitted = run.handshakeAll.count;
  const failed = run.failedByKind.length;
  ctx.log(
    `  ${fmt(run.attempts)} attempts: ${fmt(admitted)} admitted, ${fmt(refused)} refused, ${fmt(failed)} failed; ` +
      `peak held ${fmt(run.peakHeld)} (server ${fmt(watch.peakHeld)}) of ${fmt(o.connectionLimit)}`,
  );
  const result: HugResult = {
    normalOnline: Math.round(o.rate * o.sessionSeconds),
    plannedArrivals: plannedArrivals(phases),
    players: {
      arrived: run.arrived,
      admittedFirstTry,
      admittedAfterRetry: admitted - admittedFirstTry,
      admittedAfterRefusals: admittedTally,
      gaveUp: run.gaveUp,
      retryPendingAtEnd: run.retryPendingAtEnd,
      failed: run.playersFailed,
      notSent: run.notSent,
      unfinished,
    },
    attempts: {
      total: run.attempts,
      admitted,
      refused,
      failed,
      refusedByStatus: tally(run.refusedByStatus),
      failedByKind: tally(run.failedByKind),
      ...(run.firstFailure !== undefined ? { firstFailure: run.firstFailure } : {}),
    },
    advice: {
      refusalsWithRetryAfter: run.retryAfterValues.length,
      refusalsWithout: run.refusalsWithout,
      retryAfterSeconds: { min: raSorted.length ? (raSorted[0] as number) : Number.NaN, p50: ra.p50, max: ra.max },
      retryAfterCounts: tally(run.retryAfterValues),
    },
    ...(serverRejections ? { serverRejections } : {}),
    handshakeMs: roundSummary(run.handshakeHug.summary(), 2),
    handshakeAllMs: roundSummary(run.handshakeAll.summary(), 2),
    refusalMs: roundSummary(run.refusals.summary(), 2),
    timeToAdmitAfterRefusalMs: roundSummary(run.timeToAdmit.summary(), 0),
    held: { limit: o.connectionLimit, peakClient: run.peakHeld, peakServerSampled: watch.peakHeld, atEnd: heldAtEnd },
    closes: { left: run.left, unexpected, unexpectedByCode: tally(run.unexpectedCodes) },
    server: {
      alive,
      rssIdleBytes: rssIdle,
      rssPeakBytes: rssPeak,
      rssEndBytes: rssEnd,
      rssPerHeldBytes: run.peakHeld > 0 ? Math.round((rssPeak - rssIdle) / run.peakHeld) : Number.NaN,
      cpuPercentPeak: watch.peakCpuPercent,
      eventLoopLagP99MaxMs: round(watch.maxLagMs, 1),
    },
    ready: probe.summary(),
    cpu,
    phases: phases.map((p, i) => {
      const t = run.tallies[i] as PhaseTally;
      return {
        label: p.label,
        multiplier: p.multiplier,
        offeredPerSec: p.rate,
        seconds: (p.endMs - p.startMs) / 1000,
        arrivals: t.arrivals,
        attempts: t.attempts,
        admitted: t.admitted,
        refused: t.refused,
        failed: t.failed,
        handshakeMs: roundSummary(t.handshake.summary(), 2),
        refusalMs: roundSummary(t.refusal.summary(), 2),
        heldAtEnd: t.heldAtEnd,
        rssAtEndBytes: t.rssAtEndBytes,
        serverCpuPercent: t.serverCpuPercent,
      };
    }),
  };
  return { result, charts: hugCharts(run, watch, probe, o) };
}
