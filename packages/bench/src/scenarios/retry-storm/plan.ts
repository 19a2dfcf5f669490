/**
 * The storm's arithmetic: who is buggy, the demand each build makes, the origin sized for the
 * normal load, the windows of a run and their tallies.
 *
 * @module
 */
import { attemptsPerCall, outcomeKey, type CallOutcome } from '../../load/retry-policy.js';
import { originCapacity } from '../../servers/rpc-origin.js';
import { LatencyRecorder, roundSummary } from '../../harness/stats.js';
import { round } from '../../harness/util.js';
import type {
  RetryStormOptions,
  Demand,
  WindowName,
  Window,
  OutcomeTally,
  WindowTally,
  WindowResult,
  VariantResult,
} from './types.js';

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

/** REPORTED are the windows the table and the checks look at (warm-up and settle are in the JSON only). */
export const REPORTED: readonly WindowName[] = ['storm', 'before', 'after'];

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

export const newTally = (): OutcomeTally => ({ attempts: 0, outcomes: {} });

/** addOutcome counts one attempt that ended with `outcome`. */
export function addOutcome(t: OutcomeTally, outcome: CallOutcome): void {
  t.attempts++;
  const k = outcomeKey(outcome);
  t.outcomes[k] = (t.outcomes[k] ?? 0) + 1;
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

export const pct = (part: number, whole: number): number => (whole > 0 ? round((part / whole) * 100, 2) : Number.NaN);

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

/** reportedWindow finds a variant's window by name. */
export function reportedWindow(v: VariantResult, name: WindowName): WindowResult | undefined {
  return v.windows.find((w) => w.window === name);
}
