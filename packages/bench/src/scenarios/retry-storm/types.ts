/**
 * The retry-storm scenario's shapes: methods, variants, options, windows and results.
 *
 * @module
 */
import { type RpcOriginStats } from '../../servers/rpc-origin.js';
import type { LatencyRecorder } from '../../harness/stats.js';
import { type LatencySummary } from '../../harness/stats.js';

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

export type WindowName = 'warmup' | 'storm' | 'before' | 'settle' | 'after';

/** Window is a stretch of a variant's run, ms since the load started. */
export interface Window {
  name: WindowName;
  fromMs: number;
  toMs: number;
}

/** OutcomeTally counts attempts by outcome (`ok`, error codes, `timeout`, `disconnect`, `offline`). */
export interface OutcomeTally {
  attempts: number;
  outcomes: Record<string, number>;
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
   * `bulwark_proxy_concurrency_limit{target="rpc.proxy"}` read from /metrics every 500 ms:
   * [seconds since the load started, limit] (adaptive by default; fixed when it is off).
   */
  proxyLimit: [number, number][];
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

/** Limits are the thresholds of {@link retryStormChecks}. */
export interface Limits {
  successPercent: number;
  p99Ms: number;
  capacityPerSec: number;
}
