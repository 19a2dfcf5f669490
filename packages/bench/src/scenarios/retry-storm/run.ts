/**
 * The retry-storm scenario (incident 4, Halo 4's launch: a client bug sent 10× the expected
 * requests to one API, the storage behind it throttled, and the client retried every failure
 * three times; a kill switch on the API stopped the bleeding).
 *
 * Players, each on its own connection with its own JWT, call RPCs that Bulwark proxies to one
 * game backend (an {@link RpcOrigin} with a fixed capacity that queues, then throttles with
 * 503, and keeps working on calls whose caller gave up):
 * - everyone's normal gameplay calls `match.state` every `interval` (jittered ±50 %), without
 *   retries;
 * - the buggy build (`--buggy-percent` of the players) also calls `inbox.sync` at
 *   `buggy-factor`× that rate from the storm's start, and retries each failed call
 *   `retries` times at once, whatever the error (the incident's client bug);
 * - both methods go to the same backend target (`rpc.proxy`), as the incident's broken API
 *   shared its storage with the rest of the service.
 *
 * The origin is provisioned at 1.6× the normal load. The storm's first attempts bring a second
 * normal load (10 % of the players at 10×): 133 % of capacity, and every failure is sent again
 * up to 3 times (up to 333 %). Bulwark runs a connection's commands one at a time, so a buggy
 * player has at most one call at the backend and the rest wait in its session: the origin is
 * overrun when the buggy players' calls in flight exceed what it holds (workers + queue), and
 * its quick 503s come back as quick retries.
 *
 * Variants, each on a fresh Bulwark and a fresh origin: `unprotected` (rate limits, shedding,
 * breaker and the proxy concurrency limit off), `defaults` (Bulwark as shipped), `tuned`
 * (per-connection rpc rate limit sized to the game, proxy limits sized to the backend) and
 * `kill-switch` (proxy sized to the backend, generic rate limits; mid-storm the operator sets
 * `kill_switch_set {kind: rpc, target: inbox.sync}` through the server API).
 *
 * Measured per window (calls are assigned to a window by send time): well-behaved players'
 * success, goodput and latency of successful calls; the buggy feature's attempts and outcomes;
 * what the origin was offered (arrivals per second against its capacity) and what it throttled.
 *
 * @module
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { RpcClient } from '../../load/rpc-client.js';
import { fetchMetrics, metricSeries, ServerApi } from '../../harness/api.js';
import { fmt, fmtCounts, formatTable } from '../../harness/format.js';
import {
  attemptsPerCall,
  outcomeKey,
  reconnectDelayMs,
  shouldRetry,
  type CallOutcome,
  type RetryPolicy,
} from '../../load/retry-policy.js';
import {
  methodOf,
  originCapacity,
  RpcOrigin,
  type OriginArrival,
  type RpcOriginStats,
} from '../../servers/rpc-origin.js';
import { check, type Chart, type Check, type ScenarioContext, type Series } from '../../harness/scenario.js';
import { LatencyRecorder, roundSummary, type LatencySummary } from '../../harness/stats.js';
import { onFreshBulwark, type RunningServer } from '../../harness/targets.js';
import { Timeline } from '../../harness/timeline.js';
import { mapLimit, round, sleep, waitFor } from '../../harness/util.js';
import { flags } from './options.js';

/** The RPC everyone's gameplay calls. */
export const GAME_METHOD = 'match.state';
/** The RPC the buggy feature hammers. */
export const FEATURE_METHOD = 'inbox.sync';

/** VariantName names one protection setup. */
export type VariantName = 'unprotected' | 'defaults' | 'tuned' | 'kill-switch';
export const allVariants: readonly VariantName[] = ['unprotected', 'defaults', 'tuned', 'kill-switch'];

/** RetryStormOptions size the scenario. */
export interface RetryStormOptions {
  clients: number;
  /** Share of the players running the buggy build, %. */
  buggyPercent: number;
  /** A player's mean interval between match.state calls, ms (jittered ±50 %). */
  intervalMs: number;
  /** The buggy feature calls inbox.sync at this multiple of the normal rate. */
  buggyFactor: number;
  /** Immediate retries of each failed inbox.sync call. */
  retries: number;
  /** Normal traffic before the storm, seconds. */
  warmupSeconds: number;
  /** Storm seconds per variant. */
  seconds: number;
  /** Kill-switch variant: seconds into the storm when the switch is set. */
  switchAfterSeconds: number;
  /** Kill-switch variant: seconds after the switch left out of both windows (queues drain). */
  settleSeconds: number;
  /** Client-side RPC timeout, ms (centrifuge-js's default is 5 s). */
  callTimeoutMs: number;
  originWorkers: number;
  originServiceMs: number;
  /** The origin queues about this much work (ms), then throttles. */
  originQueueMs: number;
  /** Tuned variant: per-connection rpc limit (calls/s) and bucket size. */
  rpcRate: number;
  rpcBurst: number;
  /** Tuned and kill-switch variants: proxy.max_queue holds this much of the origin's work, ms. */
  proxyQueueMs: number;
  variants: VariantName[];
  /** Checks: well-behaved success at least this, %; p99 at most this, ms. */
  successLimitPercent: number;
  p99LimitMs: number;
  connectConcurrency: number;
}

// ---------------------------------------------------------------- the load model (pure)

/** Demand is what the players ask of the backend, in calls per second. */
export interface Demand {
  buggyClients: number;
  /** Every player's match.state. */
  normalPerSec: number;
  /** The buggy feature's first attempts. */
  featurePerSec: number;
  /** Normal + feature first attempts. */
  stormPerSec: number;
  /** Normal + feature with every attempt failing (each call sent 1 + retries times). */
  worstPerSec: number;
}

/** buggyCount is how many of `clients` players run the buggy build (rounded, at least 1 when the share is > 0). */
export function buggyCount(clients: number, buggyPercent: number): number {
  if (!(buggyPercent > 0)) return 0;
  return Math.min(clients, Math.max(1, Math.round((clients * buggyPercent) / 100)));
}

/**
 * isBuggy says whether player `i` of `clients` runs the buggy build: exactly `buggy` players
 * do, spread evenly over the population (so they are not all connected first).
 */
export function isBuggy(i: number, clients: number, buggy: number): boolean {
  return Math.floor(((i + 1) * buggy) / clients) > Math.floor((i * buggy) / clients);
}

/** demandOf computes the offered load of a configuration. */
export function demandOf(
  o: Pick<RetryStormOptions, 'clients' | 'buggyPercent' | 'intervalMs' | 'buggyFactor' | 'retries'>,
): Demand {
  const buggyClients = buggyCount(o.clients, o.buggyPercent);
  const perPlayer = 1000 / o.intervalMs;
  const normalPerSec = o.clients * perPlayer;
  const featurePerSec = buggyClients * perPlayer * o.buggyFactor;
  return {
    buggyClients,
    normalPerSec,
    featurePerSec,
    stormPerSec: normalPerSec + featurePerSec,
    worstPerSec: normalPerSec + featurePerSec * attemptsPerCall(1, { retries: o.retries }),
  };
}

/** originQueueOf is the origin's queue limit: `originQueueMs` of its work. */
export function originQueueOf(
  o: Pick<RetryStormOptions, 'originWorkers' | 'originServiceMs' | 'originQueueMs'>,
): number {
  return o.originQueueMs > 0 ? callsOfWork(originCapacity(o.originWorkers, o.originServiceMs), o.originQueueMs) : 0;
}

/** Headroom of the default origin over the normal load. */
export const ORIGIN_HEADROOM = 1.6;

/**
 * defaultOriginWorkers sizes the origin like a backend provisioned for the normal load with
 * headroom: workers = round(headroom × normal calls/s × service time), at least 1.
 */
export function defaultOriginWorkers(normalPerSec: number, serviceMs: number, headroom = ORIGIN_HEADROOM): number {
  return Math.max(1, Math.round((headroom * normalPerSec * serviceMs) / 1000));
}

/**
 * callsOfWork is how many calls hold `ms` of a backend's work at `capacityPerSec`: the size of
 * a queue that waits at most about `ms` (at least 1).
 */
export function callsOfWork(capacityPerSec: number, ms: number): number {
  return Math.max(1, Math.round((capacityPerSec * ms) / 1000));
}

// ---------------------------------------------------------------- windows (pure)

export type WindowName = 'warmup' | 'storm' | 'before' | 'settle' | 'after';

/** Window is a stretch of a variant's run, ms since the load started. */
export interface Window {
  name: WindowName;
  fromMs: number;
  toMs: number;
}

/** REPORTED are the windows the table and the checks look at (warm-up and settle are in the JSON only). */
const REPORTED: readonly WindowName[] = ['storm', 'before', 'after'];

/**
 * windowsOf lays out a variant's run: a warm-up of normal traffic, then the storm; with the
 * kill switch, the storm is split into `before` the switch, `settle` (queues drain, calls
 * refused before the switch finish their retries) and `after`. Throws when the switch leaves
 * no `after` window.
 */
export function windowsOf(
  o: Pick<RetryStormOptions, 'warmupSeconds' | 'seconds' | 'switchAfterSeconds' | 'settleSeconds'>,
  killSwitch: boolean,
): Window[] {
  const stormAt = o.warmupSeconds * 1000;
  const end = stormAt + o.seconds * 1000;
  const warmup: Window = { name: 'warmup', fromMs: 0, toMs: stormAt };
  if (!killSwitch) return [warmup, { name: 'storm', fromMs: stormAt, toMs: end }];
  const switchAt = stormAt + o.switchAfterSeconds * 1000;
  const afterAt = switchAt + o.settleSeconds * 1000;
  if (!(o.switchAfterSeconds > 0) || !(afterAt < end)) {
    throw new Error(
      `--switch-after ${o.switchAfterSeconds} s + ${o.settleSeconds} s settling must end inside the ${o.seconds} s storm`,
    );
  }
  return [
    warmup,
    { name: 'before', fromMs: stormAt, toMs: switchAt },
    { name: 'settle', fromMs: switchAt, toMs: afterAt },
    { name: 'after', fromMs: afterAt, toMs: end },
  ];
}

/** windowIndex is the index of the window holding `tMs`, or -1 outside every window. */
export function windowIndex(tMs: number, windows: readonly Window[]): number {
  for (let i = 0; i < windows.length; i++) {
    const w = windows[i] as Window;
    if (tMs >= w.fromMs && tMs < w.toMs) return i;
  }
  return -1;
}

// ---------------------------------------------------------------- accounting (pure)

/** OutcomeTally counts attempts by outcome (`ok`, error codes, `timeout`, `disconnect`, `offline`). */
export interface OutcomeTally {
  attempts: number;
  outcomes: Record<string, number>;
}

export const newTally = (): OutcomeTally => ({ attempts: 0, outcomes: {} });

/** addOutcome counts one attempt that ended with `outcome`. */
export function addOutcome(t: OutcomeTally, outcome: CallOutcome): void {
  t.attempts++;
  const k = outcomeKey(outcome);
  t.outcomes[k] = (t.outcomes[k] ?? 0) + 1;
}

/** WindowTally is everything counted in one window. */
export interface WindowTally {
  /** Well-behaved players' match.state. */
  good: OutcomeTally;
  /** Latency of the well-behaved players' successful calls. */
  goodLatency: LatencyRecorder;
  /** Buggy players' match.state. */
  buggyGame: OutcomeTally;
  /** Buggy players' inbox.sync, every attempt. */
  feature: OutcomeTally;
  /** inbox.sync calls (first attempts). */
  featureCalls: number;
  /** Calls the origin received, by method. */
  originByMethod: Record<string, number>;
  originThrottled: number;
}

export const newWindowTally = (): WindowTally => ({
  good: newTally(),
  goodLatency: new LatencyRecorder(),
  buggyGame: newTally(),
  feature: newTally(),
  featureCalls: 0,
  originByMethod: {},
  originThrottled: 0,
});

/** WindowResult is one window's summary. */
export interface WindowResult {
  window: WindowName;
  seconds: number;
  good: {
    attempts: number;
    ok: number;
    successPercent: number;
    /** Successful well-behaved calls per second. */
    goodputPerSec: number;
    /** Latency of the successful calls. */
    latencyMs: LatencySummary;
    /** Failed attempts by outcome. */
    failures: Record<string, number>;
  };
  buggyGame: { attempts: number; ok: number; successPercent: number };
  feature: { calls: number; attempts: number; attemptsPerCall: number; outcomes: Record<string, number> };
  origin: {
    arrivals: number;
    /** Calls offered to the origin per second (served, queued or throttled). */
    perSec: number;
    /** perSec as a share of the origin's capacity, %. */
    loadPercent: number;
    throttled: number;
    byMethod: Record<string, number>;
  };
}

const pct = (part: number, whole: number): number => (whole > 0 ? round((part / whole) * 100, 2) : Number.NaN);

/** summarizeWindow turns a window's tallies into its {@link WindowResult}. */
export function summarizeWindow(w: Window, t: WindowTally, capacityPerSec: number): WindowResult {
  const seconds = (w.toMs - w.fromMs) / 1000;
  const goodOk = t.good.outcomes.ok ?? 0;
  const failures = Object.fromEntries(Object.entries(t.good.outcomes).filter(([k]) => k !== 'ok'));
  const arrivals = Object.values(t.originByMethod).reduce((a, b) => a + b, 0);
  const perSec = seconds > 0 ? arrivals / seconds : Number.NaN;
  return {
    window: w.name,
    seconds,
    good: {
      attempts: t.good.attempts,
      ok: goodOk,
      successPercent: pct(goodOk, t.good.attempts),
      goodputPerSec: seconds > 0 ? round(goodOk / seconds, 1) : Number.NaN,
      latencyMs: roundSummary(t.goodLatency.summary(), 1),
      failures,
    },
    buggyGame: {
      attempts: t.buggyGame.attempts,
      ok: t.buggyGame.outcomes.ok ?? 0,
      successPercent: pct(t.buggyGame.outcomes.ok ?? 0, t.buggyGame.attempts),
    },
    feature: {
      calls: t.featureCalls,
      attempts: t.feature.attempts,
      attemptsPerCall: t.featureCalls > 0 ? round(t.feature.attempts / t.featureCalls, 2) : Number.NaN,
      outcomes: { ...t.feature.outcomes },
    },
    origin: {
      arrivals,
      perSec: round(perSec, 1),
      loadPercent: capacityPerSec > 0 ? round((perSec / capacityPerSec) * 100, 1) : Number.NaN,
      throttled: t.originThrottled,
      byMethod: { ...t.originByMethod },
    },
  };
}

/** VariantResult is one variant's outcome. */
export interface VariantResult {
  variant: VariantName;
  /** The Bulwark config the variant adds (the proxy endpoint left out). */
  config: Record<string, unknown>;
  windows: WindowResult[];
  /** Connections closed under the players, by close code (3013: the rate limiter's). */
  disconnects: { good: Record<string, number>; buggy: Record<string, number> };
  reconnects: number;
  origin: RpcOriginStats;
  /** When the kill switch was on (the API answered), seconds since the load started. */
  switchAtSeconds?: number;
  /** From the server's /metrics at the end (absent when it did not answer). */
  server?: {
    /** bulwark_proxy_protected_calls_total by outcome. */
    protectedCalls: Record<string, number>;
    /** bulwark_rejections_total by reason. */
    rejections: Record<string, number>;
  };
  /** Wall time of the variant, start to stop of its servers, seconds. */
  runSeconds: number;
  /**
   * p99 event-loop delay of the load generator (which also runs the origin) and of Bulwark
   * over the run, ms: when high, the machine, not the protections, set the latencies.
   */
  lagP99Ms: { loadgen: number; server: number };
}

/** VariantError is a variant that could not run to its end. */
export interface VariantError {
  variant: VariantName;
  error: string;
  serverLog?: string[];
}

/** reportedWindow finds a variant's window by name. */
export function reportedWindow(v: VariantResult, name: WindowName): WindowResult | undefined {
  return v.windows.find((w) => w.window === name);
}

/** Limits are the thresholds of {@link retryStormChecks}. */
export interface Limits {
  successPercent: number;
  p99Ms: number;
  capacityPerSec: number;
}

/**
 * retryStormChecks judges a run:
 * - `unprotected` must reproduce the storm: the origin was driven past what it holds and had
 *   to throttle (otherwise the load generator did not produce the incident, and the protected
 *   variants' passes would mean nothing);
 * - `tuned` over the storm, and `kill-switch` after the switch: well-behaved success ≥ the
 *   limit, their p99 ≤ the limit, and the origin offered at most its capacity;
 * - `kill-switch`: no inbox.sync reached the origin after the switch (and its settling).
 * `defaults` is reported for contrast and not judged.
 */
export function retryStormChecks(
  variants: readonly VariantResult[],
  l: Limits,
  errors: readonly VariantError[] = [],
): Check[] {
  const checks: Check[] = errors.map((e) => check(`${e.variant}: ran to its end`, 0, '==', 1));
  const protectedWindow = (name: string, w: WindowResult) => {
    checks.push(check(`${name}: well-behaved success`, w.good.successPercent, '>=', l.successPercent, '%'));
    checks.push(check(`${name}: well-behaved p99`, w.good.latencyMs.p99, '<=', l.p99Ms, 'ms'));
    checks.push(check(`${name}: origin calls offered`, w.origin.perSec, '<=', l.capacityPerSec, 'calls/s'));
  };
  for (const v of variants) {
    if (v.variant === 'unprotected') {
      const w = reportedWindow(v, 'storm');
      checks.push(
        check('unprotected: storm reproduced (origin throttled, 503)', w?.origin.throttled ?? 0, '>', 0, 'calls'),
      );
    } else if (v.variant === 'tuned') {
      const w = reportedWindow(v, 'storm');
      if (w) protectedWindow('tuned, storm', w);
      else checks.push(check('tuned: storm window measured', 0, '==', 1));
    } else if (v.variant === 'kill-switch') {
      const w = reportedWindow(v, 'after');
      if (w) {
        protectedWindow('kill switch, after', w);
        checks.push(
          check(
            'kill switch, after: inbox.sync at the origin',
            w.origin.byMethod[FEATURE_METHOD] ?? 0,
            '==',
            0,
            'calls',
          ),
        );
      } else checks.push(check('kill switch: after window measured', 0, '==', 1));
    }
  }
  return checks;
}

// ---------------------------------------------------------------- Bulwark configs

/**
 * sizedProxy is proxy.max_concurrent and max_queue sized to the origin, as an operator would:
 * twice its workers in flight (so a worker never idles during the round trip between two
 * calls), never more than it holds without throttling (workers + its queue), and a queue
 * holding `proxyQueueMs` of its work.
 */
export function sizedProxy(
  o: Pick<RetryStormOptions, 'originWorkers' | 'originServiceMs' | 'originQueueMs' | 'proxyQueueMs'>,
): { max_concurrent: number; max_queue: number } {
  const capacity = originCapacity(o.originWorkers, o.originServiceMs);
  return {
    max_concurrent: Math.min(2 * o.originWorkers, o.originWorkers + originQueueOf(o)),
    max_queue: callsOfWork(capacity, o.proxyQueueMs),
  };
}

/** variantConfig is the Bulwark config of a variant (without the proxy endpoint). */
export function variantConfig(v: VariantName, o: RetryStormOptions): Record<string, unknown> {
  switch (v) {
    case 'unprotected':
      return {
        protection: {
          rate_limit: { connection: { rpc: { rate: 0 } }, user: { rpc: { rate: 0 } } },
          shedding: { enabled: false },
        },
        // The breaker cannot be switched off: it is made unreachable.
        proxy: { max_concurrent: 100_000, max_queue: 0, breaker: { failure_rate: 1, min_requests: 1_000_000_000 } },
      };
    case 'defaults':
      return {};
    case 'tuned':
      return {
        protection: { rate_limit: { connection: { rpc: { rate: o.rpcRate, burst: o.rpcBurst } } } },
        proxy: sizedProxy(o),
      };
    case 'kill-switch':
      return { proxy: sizedProxy(o) };
  }
}

const describeVariant = (v: VariantName, o: RetryStormOptions): string => {
  const p = sizedProxy(o);
  switch (v) {
    case 'unprotected':
      return 'rpc rate limits, shedding, proxy concurrency limit and breaker off';
    case 'defaults':
      return 'Bulwark as shipped: rpc 50/s per connection (burst 100), proxy 64 in flight + queue 256, breaker';
    case 'tuned':
      return `rpc ${fmt(o.rpcRate, 1)}/s per connection (burst ${o.rpcBurst}); proxy ${p.max_concurrent} in flight + queue ${p.max_queue}; breaker`;
    case 'kill-switch':
      return `proxy ${p.max_concurrent} in flight + queue ${p.max_queue}, default rate limits; kill_switch_set rpc ${FEATURE_METHOD} ${fmt(o.switchAfterSeconds, 1)} s into the storm`;
  }
};

// ---------------------------------------------------------------- running a variant

/** A player: one connection, reconnecting with the SDK's backoff when closed. */
interface Player {
  user: string;
  buggy: boolean;
  client: RpcClient | undefined;
  connected: boolean;
  reconnectAttempt: number;
  timers: Set<NodeJS.Timeout>;
}

/** Rig is a variant's run in progress. */
interface Rig {
  server: RunningServer;
  windows: Window[];
  tallies: WindowTally[];
  timeline: Timeline;
  t0: number;
  /** Load is being generated (schedules and retries run). */
  running: boolean;
  /** Teardown: closes are expected. */
  closing: boolean;
  disconnects: { good: Record<string, number>; buggy: Record<string, number> };
  reconnects: number;
  policy: RetryPolicy;
}

const elapsed = (rig: Rig) => performance.now() - rig.t0;

function later(p: Player, ms: number, fn: () => void): void {
  const t = setTimeout(() => {
    p.timers.delete(t);
    fn();
  }, ms);
  p.timers.add(t);
}

/** connectPlayer opens a connection for `p`; closes after it connected count as disconnects and reconnect. */
async function connectPlayer(rig: Rig, p: Player): Promise<void> {
  const c: RpcClient = new RpcClient(rig.server.wsUrl, (code) => onClosed(rig, p, c, code));
  p.client = c;
  p.connected = false;
  try {
    await c.connect(p.user, rig.server.tokenSecret);
  } catch (err) {
    c.terminate();
    throw err;
  }
  p.connected = true;
}

/** Connect attempts per player at the start (an SDK keeps trying; admission may refuse some while the node is busy). */
const INITIAL_CONNECT_ATTEMPTS = 8;

/** connectWithRetries connects `p` before the load starts, retrying with the SDK's backoff. */
async function connectWithRetries(rig: Rig, p: Player): Promise<void> {
  for (let n = 0; ; n++) {
    try {
      await connectPlayer(rig, p);
      return;
    } catch (err) {
      if (n + 1 >= INITIAL_CONNECT_ATTEMPTS) throw err;
      await sleep(reconnectDelayMs(n, Math.random()));
    }
  }
}

function onClosed(rig: Rig, p: Player, c: RpcClient, code: number): void {
  if (p.client !== c || rig.closing) return;
  if (p.connected) {
    const d = p.buggy ? rig.disconnects.buggy : rig.disconnects.good;
    d[code] = (d[code] ?? 0) + 1;
    rig.timeline.count(p.buggy ? 'buggy.disconnect' : 'good.disconnect');
  }
  p.client = undefined;
  p.connected = false;
  if (!rig.running) return;
  later(p, reconnectDelayMs(p.reconnectAttempt++, Math.random()), () => {
    if (!rig.running || rig.closing) return;
    connectPlayer(rig, p).then(
      () => {
        p.reconnectAttempt = 0;
        rig.reconnects++;
      },
      () => undefined, // the close handler schedules the next attempt
    );
  });
}

type CallKind = 'good' | 'buggyGame' | 'feature';

/** attempt sends attempt number `n` of a call and accounts for it; the buggy feature retries. */
function attempt(rig: Rig, p: Player, method: string, data: string, n: number): void {
  const kind: CallKind = !p.buggy ? 'good' : method === FEATURE_METHOD ? 'feature' : 'buggyGame';
  const wi = windowIndex(elapsed(rig), rig.windows);
  const tally = wi >= 0 ? rig.tallies[wi] : undefined;
  if (kind === 'feature') {
    rig.timeline.count('feature.attempt');
    if (n === 0 && tally) tally.featureCalls++;
  }
  const record = (outcome: CallOutcome, latencyMs: number): void => {
    if (tally) addOutcome(tally[kind], outcome);
    if (kind === 'good') {
      if (outcome === 0) {
        tally?.goodLatency.add(latencyMs);
        rig.timeline.count('good.ok');
        rig.timeline.sample('good.latency', latencyMs);
      } else rig.timeline.count('good.failed');
    }
  };
  const sent = p.client?.send(method, data, (outcome, latencyMs) => {
    record(outcome, latencyMs);
    if (kind === 'feature' && rig.running && shouldRetry(outcome, n, rig.policy)) attempt(rig, p, method, data, n + 1);
  });
  if (!sent) record('offline', 0);
}

/**
 * every calls `fire` for player `p` from `fromMs` (plus a random phase) to `toMs` after the
 * load started, at intervals of `periodMs` jittered ±50 %. Times are planned from the schedule,
 * not from when a timer ran, so a late load generator does not lower the offered rate.
 */
function every(rig: Rig, p: Player, periodMs: number, fromMs: number, toMs: number, fire: () => void): void {
  let next = fromMs + Math.random() * periodMs;
  const arm = () => {
    if (next >= toMs) return;
    later(p, Math.max(0, next - elapsed(rig)), () => {
      if (!rig.running) return;
      fire();
      next += periodMs * (0.5 + Math.random());
      arm();
    });
  };
  arm();
}

type Log = (msg: string) => void;

/** runVariant runs one variant on a fresh origin and Bulwark, and always tears both down. */
export async function runVariant(
  ctx: ScenarioContext,
  o: RetryStormOptions,
  v: VariantName,
): Promise<{
  result: VariantResult;
  timeline: Timeline;
}> {
  const log: Log = ctx.log;
  const killSwitch = v === 'kill-switch';
  const windows = windowsOf(o, killSwitch);
  const tallies = windows.map(() => newWindowTally());
  const timeline = new Timeline(500);
  let t0 = performance.now();
  const onArrival = ({ atMs, method, fate }: OriginArrival) => {
    const t = atMs - t0;
    timeline.count('origin.arrival');
    if (fate === 'throttle') timeline.count('origin.throttled');
    const wi = windowIndex(t, windows);
    const tally = wi >= 0 ? tallies[wi] : undefined;
    if (!tally) return;
    tally.originByMethod[method] = (tally.originByMethod[method] ?? 0) + 1;
    if (fate === 'throttle') tally.originThrottled++;
  };
  const origin = await RpcOrigin.start({
    workers: o.originWorkers,
    serviceMs: o.originServiceMs,
    queueLimit: originQueueOf(o),
    answer: (req) => ({ result: { data: { method: methodOf(req), ok: true } } }),
    onArrival,
  });
  const capacity = origin.capacity;
  const config = variantConfig(v, o);
  const bulwarkConfig = {
    ...config,
    rpc: { proxy: { endpoint: `${origin.url}/rpc` }, without_namespace: { proxy_enabled: true } },
  };
  try {
    const out = await onFreshBulwark(ctx.bulwark, bulwarkConfig, `retry-storm / ${v}`, log, async (server) => {
      const rig: Rig = {
        server,
        windows,
        tallies,
        timeline,
        t0,
        running: false,
        closing: false,
        disconnects: { good: {}, buggy: {} },
        reconnects: 0,
        policy: { retries: o.retries },
      };
      const nBuggy = buggyCount(o.clients, o.buggyPercent);
      const players: Player[] = Array.from({ length: o.clients }, (_, i) => ({
        user: `player-${i}`,
        buggy: isBuggy(i, o.clients, nBuggy),
        client: undefined,
        connected: false,
        reconnectAttempt: 0,
        timers: new Set(),
      }));
      const api = new ServerApi(server);
      const lag = monitorEventLoopDelay({ resolution: 10 });
      const timers: { sweeper?: NodeJS.Timeout; killSwitch?: NodeJS.Timeout } = {};
      try {
        ctx.progress.begin(`retry-storm / ${v}: connecting`);
        const failures: string[] = [];
        let connected = 0;
        await mapLimit(
          players.length,
          o.connectConcurrency,
          async (i) => {
            await connectWithRetries(rig, players[i] as Player);
            ctx.progress.update(++connected / players.length, `${fmt(connected)} players connected`);
          },
          (_i, err) => failures.push((err as Error).message),
        );
        if (failures.length) {
          throw new Error(`${failures.length}/${players.length} players failed to connect; first: ${failures[0]}`);
        }
        const stormAt = o.warmupSeconds * 1000;
        const endAt = stormAt + o.seconds * 1000;
        ctx.progress.begin(`retry-storm / ${v}`);
        lag.enable();
        rig.t0 = t0 = performance.now();
        timeline.restart(t0);
        rig.running = true;
        players.forEach((p, i) => {
          const gameData = `{"match":${i % 64}}`;
          every(rig, p, o.intervalMs, 0, endAt, () => attempt(rig, p, GAME_METHOD, gameData, 0));
          if (p.buggy) {
            every(rig, p, o.intervalMs / o.buggyFactor, stormAt, endAt, () =>
              attempt(rig, p, FEATURE_METHOD, '{"report":"suspicious"}', 0),
            );
          }
        });
        let switchAtSeconds: number | undefined;
        if (killSwitch) {
          const switchAt = stormAt + o.switchAfterSeconds * 1000;
          timers.killSwitch = setTimeout(
            () => {
              api
                .call(
                  'kill_switch_set',
                  JSON.stringify({ kind: 'rpc', target: FEATURE_METHOD, reason: 'inbox.sync off: client bug' }),
                )
                .then(
                  () => {
                    switchAtSeconds = round(elapsed(rig) / 1000, 2);
                  },
                  (err: unknown) => log(`  kill_switch_set failed: ${(err as Error).message}`),
                );
            },
            Math.max(0, switchAt - elapsed(rig)),
          );
        }
        timers.sweeper = setInterval(() => {
          const now = performance.now();
          for (const p of players) p.client?.expire(now, o.callTimeoutMs);
          const t = now - t0;
          const wi = windowIndex(t, windows);
          const w = wi >= 0 ? (tallies[wi] as WindowTally) : undefined;
          const phase = w ? (windows[wi] as Window).name : 'ending';
          const goodOk = w ? pct(w.good.outcomes.ok ?? 0, w.good.attempts) : Number.NaN;
          ctx.progress.update(
            Math.min(1, t / endAt),
            `${phase}: well-behaved ok ${fmt(goodOk, 1)}%, origin in flight ${origin.inFlight}`,
          );
        }, 100);
        await waitFor(() => elapsed(rig) >= endAt, endAt + 5000, 50);
        // Stop sending (and retrying); replies to calls in flight are still accounted.
        rig.running = false;
        for (const p of players) for (const t of p.timers) clearTimeout(t);
        await waitFor(() => players.every((p) => (p.client?.pending ?? 0) === 0), o.callTimeoutMs + 1000, 50);
        if (killSwitch && switchAtSeconds === undefined) throw new Error('the kill switch was never set');
        const server_ = await fetchMetrics(server).then(
          (text) => ({
            protectedCalls: Object.fromEntries(metricSeries(text, 'bulwark_proxy_protected_calls_total', 'outcome')),
            rejections: Object.fromEntries(metricSeries(text, 'bulwark_rejections_total', 'reason')),
            lagP99Ms: round((metricSeries(text, 'bulwark_event_loop_lag_p99_seconds').get('') ?? Number.NaN) * 1000, 1),
          }),
          () => undefined,
        );
        return { rig, switchAtSeconds, server: server_, loadgenLagP99Ms: round(lag.percentile(99) / 1e6, 1) };
      } finally {
        rig.running = false;
        rig.closing = true;
        lag.disable();
        clearInterval(timers.sweeper);
        clearTimeout(timers.killSwitch);
        for (const p of players) {
          for (const t of p.timers) clearTimeout(t);
          p.client?.terminate();
        }
        api.close();
        ctx.progress.end();
      }
    });
    const result: VariantResult = {
      variant: v,
      config,
      windows: windows.map((w, i) => summarizeWindow(w, tallies[i] as WindowTally, capacity)),
      disconnects: out.rig.disconnects,
      reconnects: out.rig.reconnects,
      origin: origin.stats(),
      ...(out.switchAtSeconds !== undefined ? { switchAtSeconds: out.switchAtSeconds } : {}),
      ...(out.server
        ? { server: { protectedCalls: out.server.protectedCalls, rejections: out.server.rejections } }
        : {}),
      runSeconds: 0,
      lagP99Ms: { loadgen: out.loadgenLagP99Ms, server: out.server?.lagP99Ms ?? Number.NaN },
    };
    return { result, timeline };
  } finally {
    await origin.close();
  }
}

// ---------------------------------------------------------------- report

function featureCell(w: WindowResult): string {
  const o = w.feature.outcomes;
  if (w.feature.attempts === 0) return '-';
  const known = ['ok', '111', '100', '108'];
  const other = Object.entries(o)
    .filter(([k]) => !known.includes(k))
    .reduce((a, [, n]) => a + n, 0);
  return `${fmt(o.ok ?? 0)} / ${fmt(o['111'] ?? 0)} / ${fmt(o['100'] ?? 0)} / ${fmt(o['108'] ?? 0)} / ${fmt(other)}`;
}

const failureCell = (f: Record<string, number>): string => fmtCounts(f);

const nonZero = (counts: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0));

/** retryStormTable renders the results. */
export function retryStormTable(
  o: RetryStormOptions,
  capacity: number,
  variants: readonly VariantResult[],
  errors: readonly VariantError[] = [],
): string {
  const d = demandOf(o);
  const header = [
    'variant / window',
    'good ok/s',
    'good ok %',
    'good p50 / p99 ms',
    'good failures',
    'buggy calls → attempts (×)',
    'inbox.sync ok / 111 / 100 / 108 / other',
    'buggy match.state ok %',
    'origin calls/s (% cap)',
    'origin 503',
  ];
  const rows: string[][] = [header];
  for (const v of variants) {
    for (const name of REPORTED) {
      const w = reportedWindow(v, name);
      if (!w) continue;
      rows.push([
        name === 'storm' ? v.variant : `${v.variant}: ${name}`,
        fmt(w.good.goodputPerSec, 1),
        fmt(w.good.successPercent, 2),
        `${fmt(w.good.latencyMs.p50, 1)} / ${fmt(w.good.latencyMs.p99, 1)}`,
        failureCell(w.good.failures),
        `${fmt(w.feature.calls)} → ${fmt(w.feature.attempts)} (${fmt(w.feature.attemptsPerCall, 2)})`,
        featureCell(w),
        fmt(w.buggyGame.successPercent, 1),
        `${fmt(w.origin.perSec)} (${fmt(w.origin.loadPercent)}%)`,
        fmt(w.origin.throttled),
      ]);
    }
  }
  const detail: string[][] = [
    [
      'variant',
      'run s',
      'origin max in flight / wait ms',
      'origin service ms',
      'origin wasted',
      'proxy protections',
      'server refusals',
      'disconnects buggy; good',
      'reconnects',
      'lag p99 ms loadgen / server',
    ],
    ...variants.map((v) => [
      v.variant,
      fmt(v.runSeconds, 1),
      `${fmt(v.origin.maxInFlight)} / ${fmt(v.origin.maxWaitMs)}`,
      fmt(v.origin.meanServiceMs, 1),
      fmt(v.origin.wasted),
      v.server ? fmtCounts(nonZero(v.server.protectedCalls)) : '-',
      v.server ? fmtCounts(nonZero(v.server.rejections)) : '-',
      `${fmtCounts(v.disconnects.buggy)}; ${fmtCounts(v.disconnects.good)}`,
      fmt(v.reconnects),
      `${fmt(v.lagP99Ms.loadgen)} / ${fmt(v.lagP99Ms.server)}`,
    ]),
  ];
  return [
    `retry-storm: ${fmt(o.clients)} players, ${fmt(d.buggyClients)} on the buggy build (${FEATURE_METHOD} at ${o.buggyFactor}× ` +
      `= ${fmt((o.buggyFactor * 1000) / o.intervalMs, 1)}/s each, ${o.retries} immediate retries per failure); everyone calls ` +
      `${GAME_METHOD} every ${fmt(o.intervalMs / 1000, 1)} s ±50 %; ${o.warmupSeconds} s warm-up, ${o.seconds} s storm per variant`,
    `origin: ${o.originWorkers} workers × ${o.originServiceMs} ms = ${fmt(capacity)} calls/s, queue ${originQueueOf(o)} (${o.originQueueMs} ms), then 503; ` +
      `demand: normal ${fmt(d.normalPerSec)}/s (${fmt((d.normalPerSec / capacity) * 100)}% of capacity), storm ${fmt(d.stormPerSec)}/s ` +
      `first attempts (${fmt((d.stormPerSec / capacity) * 100)}%), up to ${fmt(d.worstPerSec)}/s with retries (${fmt((d.worstPerSec / capacity) * 100)}%)`,
    ...variants.map((v) => `  ${v.variant}: ${describeVariant(v.variant, o)}`),
    '',
    formatTable(rows),
    '  good = well-behaved players (match.state, no retries); latency of successful calls; failures by outcome',
    '  (100 temporary, 111 too many requests, offline = due while disconnected); origin calls/s = offered (served, queued or throttled)',
    '',
    formatTable(detail),
    ...errors.map((e) => `  ${e.variant}: ERROR: ${e.error}`),
  ].join('\n');
}

export function charts(
  o: RetryStormOptions,
  variants: readonly VariantResult[],
  timelines: readonly Timeline[],
  capacity: number,
): Chart[] {
  // Buckets after the end hold only the replies of the last calls: left out, they would draw a fall.
  const end = o.warmupSeconds + o.seconds;
  const per = (f: (t: Timeline, v: VariantResult) => Series): Series[] =>
    variants.map((v, i) => {
      const s = f(timelines[i] as Timeline, v);
      return { label: s.label, points: s.points.filter(([x]) => x < end) };
    });
  const origin = per((t, v) => t.rate('origin.arrival', v.variant));
  const switched = variants.find((v) => v.switchAtSeconds !== undefined)?.switchAtSeconds;
  const when = `storm from ${fmt(o.warmupSeconds)} s${switched !== undefined ? `, kill switch at ${fmt(switched, 1)} s` : ''}`;
  return [
    {
      title: `Well-behaved players: successful RPCs per second (${when})`,
      xLabel: 's',
      yLabel: 'ok calls/s',
      series: per((t, v) => t.rate('good.ok', v.variant)),
    },
    {
      title: `Well-behaved players: p99 latency of successful RPCs (${when})`,
      xLabel: 's',
      yLabel: 'ms',
      series: per((t, v) => t.quantile('good.latency', 99, v.variant)),
    },
    {
      title: 'Origin: calls offered per second, against its capacity',
      xLabel: 's',
      yLabel: 'calls/s',
      series: [
        ...origin,
        {
          label: 'capacity',
          points: [
            [0, capacity],
            [end, capacity],
          ],
        },
      ],
    },
    {
      title: `Buggy build: ${FEATURE_METHOD} attempts per second (retries included)`,
      xLabel: 's',
      yLabel: 'attempts/s',
      series: per((t, v) => t.rate('feature.attempt', v.variant)),
    },
  ];
}

// ---------------------------------------------------------------- the scenario

function parseVariants(s: string): VariantName[] {
  const names = s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!(allVariants as readonly string[]).includes(n)) {
      throw new Error(`--variants: unknown variant "${n}" (choose from ${allVariants.join(', ')})`);
    }
  }
  if (names.length === 0) throw new Error('--variants: name at least one variant');
  return allVariants.filter((v) => names.includes(v));
}

/** optionsOf resolves the flags (defaults filled in). */
export function optionsOf(ctx: Pick<ScenarioContext, 'quick' | 'flags'>): RetryStormOptions {
  const f = ctx.flags;
  const clients = f.int(flags.clients);
  const intervalMs = f.num(flags.interval);
  const seconds = f.num(flags.duration);
  const originServiceMs = f.num(flags.originServiceMs);
  const normal = (clients * 1000) / intervalMs;
  return {
    clients,
    buggyPercent: f.num(flags.buggyPercent),
    intervalMs,
    buggyFactor: f.num(flags.buggyFactor),
    retries: f.int(flags.retries),
    warmupSeconds: f.num(flags.warmup),
    seconds,
    switchAfterSeconds: f.num(flags.switchAfter, seconds / 2),
    settleSeconds: ctx.quick ? 1 : 2,
    callTimeoutMs: 5000,
    originWorkers: f.int(flags.originWorkers, defaultOriginWorkers(normal, originServiceMs)),
    originServiceMs,
    originQueueMs: f.num(flags.originQueueMs),
    rpcRate: f.num(flags.rpcRate),
    rpcBurst: f.int(flags.rpcBurst),
    proxyQueueMs: 250,
    variants: parseVariants(f.str(flags.variants, allVariants.join(','))),
    successLimitPercent: f.num(flags.successLimit),
    p99LimitMs: f.num(flags.p99Limit),
    connectConcurrency: 100,
  };
}
