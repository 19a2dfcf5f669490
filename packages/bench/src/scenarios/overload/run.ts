/**
 * The overload scenario (incident 1: a team bulletin board whose clients poll history): how much
 * admitted work Bulwark still does, and how fast, when offered 1×, 2× and 10× what it can serve —
 * with load shedding (`protection.shedding`) on and off.
 *
 * Every run is on a fresh Bulwark with a `board` namespace keeping history, the per-connection
 * and per-user read rate limits lifted (the pollers are the load, not abusers to throttle), a
 * larger write-queue cap (see {@link POLLER_QUEUE_BYTES}), and `board:history` filled with `page`
 * publications of ~300 bytes through the server API.
 *
 * - Pollers: K connections sending `history {channel: board:history, limit: page}`. Each reply
 *   is matched to its command by id; latency = reply time − send time.
 * - A live feed: S subscribers on `board:live` receive API publications at a fixed rate; their
 *   delivery latency and loss show whether publications keep flowing under overload.
 * - Capacity C: a closed loop (each poller keeps `depth` polls outstanding) on a server with
 *   shedding off, after a warm-up; C = successful replies per second.
 * - Then open loop (sends on a fixed schedule whatever the replies do) at 1×, 2×, 10× C, each
 *   with shedding on and off. Replies are ok (goodput), refused with 111 (shed), other errors,
 *   or missing once the window and a grace period are over (timeouts).
 *
 * Bulwark only: the raw-ws reference server has neither history nor shedding.
 *
 * @module
 */
import type { Log } from '../../harness/scenario.js';
import { fetchMetrics, metricSeries, ServerApi } from '../../harness/api.js';
import { CommandClient, type ReplyHead } from '../../load/command-client.js';
import { LiveFeed } from '../../load/live-feed.js';
import { runPaced, staggeredStreams } from '../../load/pacing.js';
import { watchCpu } from '../../harness/proc.js';
import { type ScenarioReport } from '../../harness/report.js';
import { LatencyRecorder, roundSummary } from '../../harness/stats.js';
import {
  bulwarkAvailable,
  onFreshBulwark,
  ServerRunError,
  type RunningServer,
  type StartOptions,
} from '../../harness/targets.js';
import { mapLimit, round, sleep, tally, waitFor } from '../../harness/util.js';
import { judgeOverload } from './verdict.js';
import type { OverloadOptions, OverloadCapacity, OverloadRun, OverloadResult } from './types.js';

export const HISTORY_CHANNEL = 'board:history';
export const LIVE_CHANNEL = 'board:live';
/** Bytes of text in each history publication (about 300 bytes of data with its JSON). */
export const HISTORY_TEXT_BYTES = 280;
/** Padding of each live publication (~150-byte pushes, as in the fan-out scenario). */
export const LIVE_PAD_BYTES = 64;
/**
 * client.queue_max_size of the runs. Each poller connection stands in for many real clients
 * (200 connections carry thousands of polls/s, where a real client has one poll outstanding),
 * so under overload hundreds of polls wait in one poller's socket, and the server answers all
 * it reads in one pass. At the default 1 MiB, the ~30 replies of 33 KB that makes disconnect
 * the poller as slow (3008) before shedding can act, and the run would measure that instead
 * (stalled readers are the `stalled` scenario's). 64 MiB keeps a flushed frame below the ws
 * client's 100 MiB message limit.
 */
export const POLLER_QUEUE_BYTES = 64 * 2 ** 20;
/** overloadConfig is the Bulwark config of one run. */
export function overloadConfig(opts: OverloadOptions, shedding: boolean): Record<string, unknown> {
  const board = {
    name: 'board',
    history_size: opts.page,
    history_ttl: '300s',
    allow_history_for_client: true,
    allow_subscribe_for_client: true,
  };
  return {
    channel: { namespaces: [board] },
    client: { history_max_publication_limit: opts.page, queue_max_size: POLLER_QUEUE_BYTES },
    protection: {
      rate_limit: { connection: { read: { rate: 0 } }, user: { read: { rate: 0 } } },
      shedding: { enabled: shedding },
    },
  };
}

/** A poller's connection and the send times of its polls in the current phase. */
export interface Poller {
  client: CommandClient;
  /** Id of the phase's first poll; send times are indexed by id − firstId. */
  firstId: number;
  /** Send time (performance.now() ms) per poll; 0 once answered. */
  sentAt: Float64Array;
}

/** Per-phase tallies the reply handler writes to. */
export interface Phase {
  open: boolean;
  /** Closed loop: answer each reply tallied with a new poll on the same poller. */
  refill: boolean;
  /** Until when replies are tallied (closed loop: the window's end). */
  countUntil: number;
  sent: number;
  /** Replies received, tallied or not: sent − replies are still outstanding. */
  replies: number;
  ok: number;
  shed: number;
  otherErrors: Map<number, number>;
  okLatency: LatencyRecorder;
  shedLatency: LatencyRecorder;
}

export function newPhase(refill: boolean): Phase {
  return {
    open: true,
    refill,
    countUntil: Number.POSITIVE_INFINITY,
    sent: 0,
    replies: 0,
    ok: 0,
    shed: 0,
    otherErrors: new Map(),
    okLatency: new LatencyRecorder(),
    shedLatency: new LatencyRecorder(),
  };
}

/** A started server with its pollers and live feed. */
export interface Rig {
  server: RunningServer;
  pollers: Poller[];
  feed: LiveFeed;
  replyBytes: number;
  /** Starts a phase: resets send times and routes replies to the returned tallies. */
  startPhase(refill: boolean): Phase;
  /** Sends `count` polls on poller `i`. */
  poll(i: number, count: number): void;
}

export const pollBody = (page: number) => `"history":{"channel":"${HISTORY_CHANNEL}","limit":${page}}`;

/**
 * setUp fills the board's history and connects the feed's subscribers and the pollers (into
 * `pollers`, so that the caller can close whatever connected even when setting up fails).
 */
export async function setUp(
  server: RunningServer,
  api: ServerApi,
  feed: LiveFeed,
  pollers: Poller[],
  opts: OverloadOptions,
  log: Log,
): Promise<Rig> {
  const text = 'x'.repeat(HISTORY_TEXT_BYTES);
  for (let i = 0; i < opts.page; i++) {
    await api.publish(HISTORY_CHANNEL, `{"author":"user-${i % 17}","n":${i},"text":"${text}"}`);
  }
  const page = await api.call('history', `{"channel":"${HISTORY_CHANNEL}","limit":${opts.page}}`);
  // The API's result is the client reply's body; ~20 bytes of `{"id":N,"history":…}` wrap it.
  const replyBytes = Buffer.byteLength(JSON.stringify(page)) + 20;

  await feed.subscribe(opts.subscribers, () => 0, opts.connectConcurrency);

  const body = pollBody(opts.page);
  let phase = newPhase(false);
  const record = (p: Poller, first: number, count: number) => {
    const need = first - p.firstId + count;
    if (need > p.sentAt.length) {
      const bigger = new Float64Array(Math.max(need, p.sentAt.length * 2));
      bigger.set(p.sentAt);
      p.sentAt = bigger;
    }
    const now = performance.now();
    for (let k = 0; k < count; k++) p.sentAt[first - p.firstId + k] = now;
    phase.sent += count;
  };
  const onReply = (p: Poller, head: ReplyHead) => {
    const idx = head.id - p.firstId;
    const t0 = idx >= 0 && idx < p.sentAt.length ? (p.sentAt[idx] as number) : 0;
    if (!phase.open || !(t0 > 0)) return; // a reply to an earlier phase's poll
    p.sentAt[idx] = 0;
    phase.replies++;
    const now = performance.now();
    if (now > phase.countUntil) return;
    if (head.errorCode === 0) {
      phase.ok++;
      phase.okLatency.add(now - t0);
    } else if (head.errorCode === 111) {
      phase.shed++;
      phase.shedLatency.add(now - t0);
    } else {
      phase.otherErrors.set(head.errorCode, (phase.otherErrors.get(head.errorCode) ?? 0) + 1);
    }
    if (phase.refill) record(p, p.client.send(body), 1);
  };
  const failures: string[] = [];
  await mapLimit(
    opts.pollers,
    opts.connectConcurrency,
    async (i) => {
      const p: Poller = {
        client: new CommandClient(server.wsUrl, (h) => onReply(p, h)),
        firstId: 2,
        sentAt: new Float64Array(64),
      };
      pollers.push(p);
      await p.client.connect(`poller-${i}`, server.tokenSecret);
    },
    (_i, err) => failures.push((err as Error).message),
  );
  if (failures.length) throw new Error(`${failures.length}/${opts.pollers} pollers failed; first: ${failures[0]}`);
  log(
    `  ${HISTORY_CHANNEL} holds ${opts.page} publications (${(replyBytes / 1024).toFixed(1)} KiB per reply); ` +
      `${opts.subscribers} subscribers and ${opts.pollers} pollers connected`,
  );
  return {
    server,
    pollers,
    feed,
    replyBytes,
    startPhase(refill) {
      phase.open = false;
      phase = newPhase(refill);
      for (const p of pollers) {
        p.firstId = p.client.peekId;
        p.sentAt.fill(0);
      }
      return phase;
    },
    poll(i, count) {
      const p = pollers[i] as Poller;
      record(p, p.client.send(body, count), count);
    },
  };
}

/**
 * closedLoop keeps `depth` polls outstanding per poller for `seconds`, with the live feed
 * publishing as in the open-loop runs; returns the tallies of replies within the window.
 */
export async function closedLoop(rig: Rig, opts: OverloadOptions, depth: number, seconds: number): Promise<Phase> {
  const phase = rig.startPhase(true);
  phase.countUntil = performance.now() + seconds * 1000;
  rig.pollers.forEach((_p, i) => rig.poll(i, depth));
  // Replies after the window are not tallied, and so not refilled either.
  await Promise.all([sleep(seconds * 1000), rig.feed.publish(opts.publishRate, seconds * 1000)]);
  await waitFor(() => phase.replies >= phase.sent, opts.graceMs);
  phase.open = false;
  return phase;
}

export async function warmUp(rig: Rig, opts: OverloadOptions): Promise<void> {
  if (opts.warmupSeconds > 0) await closedLoop(rig, opts, 1, opts.warmupSeconds);
  // Let the server's smoothed lag settle before the measured window.
  await sleep(300);
}

/** measureCapacity is the closed-loop run that finds C. */
export async function measureCapacity(rig: Rig, opts: OverloadOptions, log: Log): Promise<OverloadCapacity> {
  await warmUp(rig, opts);
  const done = watchCpu(rig.server.pid);
  const phase = await closedLoop(rig, opts, opts.depth, opts.capacitySeconds);
  const cpu = done();
  const perSec = Math.round(phase.ok / opts.capacitySeconds);
  let limitedBy = `neither CPU saturated (server ${cpu.serverCpuPercent}%, load generator ${cpu.loadgenCpuPercent}%)`;
  if (cpu.serverCpuPercent >= 90) limitedBy = `server CPU (${cpu.serverCpuPercent}%)`;
  else if (cpu.loadgenCpuPercent >= 90) limitedBy = `load generator CPU (${cpu.loadgenCpuPercent}%): C is understated`;
  const errors = phase.shed + [...phase.otherErrors.values()].reduce((a, b) => a + b, 0);
  log(`  capacity C = ${perSec} polls/s (${opts.depth} in flight per poller); limited by ${limitedBy}`);
  return {
    perSec,
    ok: phase.ok,
    errors,
    okLatencyMs: roundSummary(phase.okLatency.summary(), 2),
    serverCpuPercent: cpu.serverCpuPercent,
    loadgenCpuPercent: cpu.loadgenCpuPercent,
    limitedBy,
  };
}

/** openLoop runs one open-loop window at `rate` polls/s with the live feed publishing. */
export async function openLoop(
  rig: Rig,
  opts: OverloadOptions,
  rate: number,
): Promise<Omit<OverloadRun, 'multiplier' | 'shedding' | 'targetRate' | 'capped'>> {
  await warmUp(rig, opts);
  const windowMs = opts.seconds * 1000;
  const phase = rig.startPhase(false);
  rig.feed.startPhase();
  const done = watchCpu(rig.server.pid);
  const streams = staggeredStreams(rig.pollers.length, rate, windowMs);
  const [elapsedMs] = await Promise.all([
    runPaced(streams, windowMs, (i, count) => rig.poll(i, count)),
    rig.feed.publish(opts.publishRate, windowMs),
  ]);
  await Promise.all([waitFor(() => phase.replies >= phase.sent, opts.graceMs), rig.feed.drain(opts.graceMs)]);
  phase.open = false;
  const cpu = done();
  const server = await fetchMetrics(rig.server).then(
    (text) => ({
      rejections: Object.fromEntries(metricSeries(text, 'bulwark_rejections_total', 'reason')),
      eventLoopLagP99Ms: round(
        (metricSeries(text, 'bulwark_event_loop_lag_p99_seconds').get('') ?? Number.NaN) * 1000,
        1,
      ),
    }),
    () => undefined,
  );
  return {
    sent: phase.sent,
    ok: phase.ok,
    shed: phase.shed,
    otherErrors: Object.fromEntries(phase.otherErrors),
    timeouts: phase.sent - phase.replies,
    offeredPerSec: Math.round(phase.sent / (elapsedMs / 1000)),
    goodputPerSec: Math.round(phase.ok / opts.seconds),
    shedPerSec: Math.round(phase.shed / opts.seconds),
    okLatencyMs: roundSummary(phase.okLatency.summary(), 2),
    shedLatencyMs: roundSummary(phase.shedLatency.summary(), 2),
    feed: rig.feed.result(),
    ...cpu,
    pollersClosed: tally(rig.pollers.map((p) => p.client.closeCode)),
    server,
  };
}

/** onRig runs `fn` on a fresh server set up for the scenario, and always tears the rig down. */
export function onRig<R>(
  start: StartOptions,
  opts: OverloadOptions,
  shedding: boolean,
  label: string,
  log: Log,
  fn: (rig: Rig) => Promise<R>,
): Promise<R> {
  return onFreshBulwark(start, overloadConfig(opts, shedding), label, log, async (server) => {
    const api = new ServerApi(server);
    const feed = new LiveFeed(server, api, () => LIVE_CHANNEL, 1, LIVE_PAD_BYTES);
    const pollers: Poller[] = [];
    try {
      return await fn(await setUp(server, api, feed, pollers, opts, log));
    } finally {
      for (const p of pollers) p.client.terminate();
      feed.terminate();
      api.close();
    }
  });
}

/**
 * runOverload measures the capacity, then runs every multiplier with shedding on and off, each on
 * a fresh Bulwark started with `start`, and returns the Bulwark outcome.
 */
export async function runOverload(
  start: StartOptions,
  opts: OverloadOptions,
  log: Log,
): Promise<ScenarioReport<OverloadResult>['results']> {
  if (!bulwarkAvailable(start.bulwarkMain)) return { bulwark: { skipped: 'Bulwark is not built' } };
  try {
    let replyBytes = 0;
    const capacity = await onRig(start, opts, false, 'overload / capacity', log, async (rig) => {
      replyBytes = rig.replyBytes;
      return measureCapacity(rig, opts, log);
    });
    if (capacity.perSec <= 0) throw new Error('capacity run completed no polls');
    const runs: OverloadRun[] = [];
    for (const multiplier of opts.multipliers) {
      for (const shedding of [true, false]) {
        const wanted = multiplier * capacity.perSec;
        const targetRate = Math.min(wanted, opts.maxOfferedRate);
        const capped = targetRate < wanted;
        const label = `overload / ${multiplier}× ${shedding ? 'with' : 'without'} shedding`;
        if (capped) log(`${label}: ${wanted} polls/s is past the load generator's ${opts.maxOfferedRate}/s: capped`);
        const r = await onRig(start, opts, shedding, label, log, (rig) => openLoop(rig, opts, targetRate));
        runs.push({ multiplier, shedding, targetRate, capped, ...r });
        log(`  ${describe(runs[runs.length - 1] as OverloadRun)}`);
      }
    }
    return {
      bulwark: {
        result: { page: opts.page, replyBytes, capacity, runs, verdict: judgeOverload(capacity.perSec, runs) },
      },
    };
  } catch (err) {
    log(`overload: ERROR: ${(err as Error).message}`);
    return {
      bulwark: {
        error: (err as Error).message,
        ...(err instanceof ServerRunError ? { serverLog: err.serverLog } : {}),
      },
    };
  }
}

export function describe(r: OverloadRun): string {
  return (
    `offered ${r.offeredPerSec}/s: ok ${r.goodputPerSec}/s (p50 ${r.okLatencyMs.p50} / p99 ${r.okLatencyMs.p99} ms), ` +
    `shed ${r.shedPerSec}/s, timeouts ${r.timeouts}; feed p99 ${r.feed.latencyMs.p99} ms, loss ${r.feed.loss.missing}; ` +
    `server ${r.serverCpuPercent}% CPU, load generator ${r.loadgenCpuPercent}%`
  );
}
