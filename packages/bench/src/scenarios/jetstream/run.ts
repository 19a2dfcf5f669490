/**
 * One run of the jetstream scenario on a started Bulwark: lean subscribers on every channel,
 * then each phase of the plan (the fixed rate, then the ramp steps): the backend publishes to
 * JetStream at the phase's rate for its seconds, the consumer's lag is sampled, the phase is
 * drained (every message delivered, the consumer caught up, or the drain time out), then judged.
 * The ramp stops at the first failing phase. Deliveries are attributed to their phase by their
 * sequence numbers, so a phase's loss, duplicates and order are exact.
 *
 * @module
 */
import type { Log } from '../../harness/scenario.js';
import { connectionToken } from '../../harness/jwt.js';
import { readCpuMicros, watchCpu } from '../../harness/proc.js';
import type { Progress } from '../../harness/progress.js';
import { LatencyRecorder, roundSummary, SeqTracker } from '../../harness/stats.js';
import type { RunningServer } from '../../harness/targets.js';
import { nowMicros, round, sleep, waitFor } from '../../harness/util.js';
import { LeanClient } from '../../load/lean-client.js';
import { channelName, localNatsPid, type JetStreamBackend } from './backend.js';
import { phasePlan, type JetStreamOptions, type PhasePlan } from './options.js';
import { judgePhase, limitOf, type PhaseResult, type Verdict } from './verdict.js';

/** RunResult is everything a run measured. */
export interface RunResult {
  subscribers: number;
  phases: (PhaseResult & Verdict)[];
  maxPassingRate: number;
  limitedBy: string;
}

/** Phase is one phase being measured: where its sequence numbers start and what arrived. */
interface Phase {
  plan: PhasePlan;
  /** Per channel, the first sequence number of this phase. */
  firstSeq: number[];
  /** Per subscriber. */
  trackers: SeqTracker[];
  latency: LatencyRecorder;
  startMicros: number;
  lastDeliveryMicros: number;
}

/** runPhases runs the plan against `server`; see the module comment. */
export async function runPhases(
  o: JetStreamOptions,
  server: RunningServer,
  backend: JetStreamBackend,
  durable: string,
  log: Log,
  progress: Progress,
): Promise<RunResult> {
  const phases: Phase[] = [];
  const subscriberChannel: number[] = [];
  const onPush = (sub: number, ch: number, seq: number, sentAtMicros: number): void => {
    const now = nowMicros();
    for (let i = phases.length - 1; i >= 0; i--) {
      const p = phases[i]!;
      if (seq < p.firstSeq[ch]!) continue;
      p.trackers[sub]!.record(seq);
      p.latency.add((now - sentAtMicros) / 1000);
      p.lastDeliveryMicros = now;
      return;
    }
  };
  const clients: LeanClient[] = [];
  try {
    for (let ch = 0; ch < o.channels; ch++) {
      for (let k = 0; k < o.subscribersPerChannel; k++) {
        const sub = subscriberChannel.length;
        subscriberChannel.push(ch);
        const client = new LeanClient({
          url: server.wsUrl,
          protocol: server.protocol,
          onPush: (c, seq, at) => onPush(sub, c, seq, at),
        });
        clients.push(client);
        await client.open();
        await client.connect(connectionToken(`js-sub-${sub}`, server.tokenSecret));
        await client.subscribe(channelName(ch));
      }
    }
    if (!(await consumerExists(backend, durable))) {
      throw new Error(`Bulwark did not create the durable consumer ${durable} within 10 s`);
    }

    const results: (PhaseResult & Verdict)[] = [];
    for (const plan of phasePlan(o)) {
      const phase: Phase = {
        plan,
        firstSeq: Array.from({ length: o.channels }, (_, ch) => backend.sent(ch) + 1),
        trackers: [],
        latency: new LatencyRecorder(),
        startMicros: nowMicros(),
        lastDeliveryMicros: 0,
      };
      phase.trackers = subscriberChannel.map((ch) => new SeqTracker(phase.firstSeq[ch]));
      phases.push(phase);
      const r = await runPhase(o, phase, subscriberChannel, backend, durable, server.pid, progress);
      const verdict = judgePhase(r, o.p99LimitMs);
      results.push({ ...r, ...verdict });
      log(
        `  ${plan.label} ${plan.rate} msg/s: ${verdict.pass ? 'pass' : `FAIL (${verdict.reason})`} — consumed ${r.consumedPerSec}/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, max lag ${r.maxLag}, server CPU ${r.serverCpuPercent}%`,
      );
      if (!verdict.pass) break;
    }
    return {
      subscribers: subscriberChannel.length,
      phases: results,
      ...limitOf(results, o.maxAckPending, o.p99LimitMs),
    };
  } finally {
    for (const c of clients) c.terminate();
  }
}

/** consumerExists waits up to 10 s for Bulwark's durable consumer to appear. */
async function consumerExists(backend: JetStreamBackend, durable: string): Promise<boolean> {
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    if ((await backend.lag(durable)) !== undefined) return true;
    await sleep(100);
  }
  return false;
}

/** runPhase publishes at the phase's rate for its seconds, drains, and measures. */
async function runPhase(
  o: JetStreamOptions,
  phase: Phase,
  subscriberChannel: readonly number[],
  backend: JetStreamBackend,
  durable: string,
  serverPid: number,
  progress: Progress,
): Promise<PhaseResult> {
  const { plan } = phase;
  const acked0 = backend.acked;
  const errors0 = backend.errors;
  const sent0 = backend.total;
  let maxLag = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      maxLag = Math.max(maxLag, (await backend.lag(durable)) ?? 0);
      await sleep(250);
    }
  })();
  const cpu = watchCpu(serverPid);
  const natsCpu = natsCpuWatch(o.natsUrl);
  const t0 = performance.now();
  const windowMs = plan.seconds * 1000;
  const total = Math.round(plan.rate * plan.seconds);
  let sent = 0;
  for (let elapsed = 0; elapsed < windowMs && sent < total; elapsed = performance.now() - t0) {
    const due = Math.min(total, Math.round((elapsed / 1000) * plan.rate));
    if (due > sent) sent += backend.publish(due - sent);
    progress.update(elapsed / windowMs, `${plan.label}: ${sent} published, lag ${maxLag}`);
    await sleep(5);
  }
  // The pacing loop ends at the window's end with the last moment's messages due: send them.
  if (sent < total) sent += backend.publish(total - sent);
  const windowEndMicros = nowMicros();
  const publishSeconds = (performance.now() - t0) / 1000;
  const load = cpu();
  const natsCpuPercent = natsCpu();
  await backend.settle(5000);

  const published = backend.total - sent0;
  /** publishedTo is how many messages of this phase channel `ch` was given. */
  const publishedTo = (ch: number) => backend.sent(ch) - phase.firstSeq[ch]! + 1;
  const arrived = () => phase.trackers.reduce((s, t) => s + t.distinct, 0);
  const expected = subscriberChannel.reduce((s, ch) => s + publishedTo(ch), 0);
  const d0 = performance.now();
  await waitFor(() => arrived() >= expected, o.drainSeconds * 1000, 20);
  let lagAfterDrain = (await backend.lag(durable)) ?? 0;
  while (lagAfterDrain > 0 && performance.now() - d0 < o.drainSeconds * 1000) {
    await sleep(100);
    lagAfterDrain = (await backend.lag(durable)) ?? 0;
  }
  const drainMs = performance.now() - d0;
  sampling = false;
  await sampler;

  let missing = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  phase.trackers.forEach((t, sub) => {
    missing += t.missing(publishedTo(subscriberChannel[sub]!));
    duplicates += t.duplicates;
    outOfOrder += t.outOfOrder;
  });
  const consumedSeconds = Math.max(1e-3, (phase.lastDeliveryMicros - phase.startMicros) / 1e6);
  const consumed = arrived() / o.subscribersPerChannel;
  return {
    label: plan.label,
    targetRate: plan.rate,
    published,
    publishErrors: backend.errors - errors0,
    publishedPerSec: round((backend.acked - acked0) / Math.max(publishSeconds, plan.seconds), 0),
    consumedPerSec: round(consumed / consumedSeconds, 0),
    tailMs: Math.max(0, Math.round((phase.lastDeliveryMicros - windowEndMicros) / 1000)),
    expected,
    missing,
    duplicates,
    outOfOrder,
    latencyMs: roundSummary(phase.latency.summary(), 2),
    maxLag,
    lagAfterDrain,
    drainMs: Math.round(drainMs),
    serverCpuPercent: load.serverCpuPercent,
    loadgenCpuPercent: load.loadgenCpuPercent,
    natsCpuPercent,
  };
}

/** natsCpuWatch starts reading the local nats-server's CPU; the returned function ends the window (NaN: not found). */
function natsCpuWatch(url: string): () => number {
  const pid = localNatsPid(url);
  const read = (): number => {
    try {
      return pid === undefined ? Number.NaN : readCpuMicros(pid);
    } catch {
      return Number.NaN;
    }
  };
  const cpu0 = read();
  const t0 = performance.now();
  return () => round(((read() - cpu0) / ((performance.now() - t0) * 1000)) * 100, 1);
}
