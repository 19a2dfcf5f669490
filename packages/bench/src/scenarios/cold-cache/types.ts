/**
 * The cold-cache scenario's shapes: its variants and options, and the result of each variant.
 *
 * @module
 */
import { type Series } from '../../harness/scenario.js';
import { type LatencySummary } from '../../harness/stats.js';

/** Variant is one way the cluster is configured for the cold start. */
export type Variant = 'shared' | 'local' | 'none' | 'naive';

/** VARIANTS are the variants in the order they run, with what each one is. */
export const VARIANTS: Record<Variant, string> = {
  shared: 'RPC cache + shared Redis tier, protected',
  local: 'RPC cache per node only, protected',
  none: 'no cache, protected',
  naive: 'no cache, unprotected (the incident)',
};

/** The cacheable RPC method the clients call (a sticker lookup, as in the incident). */
export const METHOD = 'sticker.get';

/** ColdCacheOptions size the scenario (see the flags for defaults). */
export interface ColdCacheOptions {
  /** M: Bulwark processes. */
  nodes: number;
  /** N: clients per process. */
  clients: number;
  /** K: unique keys. */
  keys: number;
  /** C: asks of each key per process. */
  asksPerKey: number;
  /** RPCs each client keeps outstanding. */
  inflight: number;
  /** The origin's service time per call (ms). */
  serviceMs: number;
  /** What the origin (database) sustains, calls/s: the peak-rate check's limit. */
  originCapacity: number;
  /** Calls in flight at the origin over which it answers 503 (0: unlimited). */
  originConcurrency: number;
  /** proxy.max_concurrent of the protected variants (per node). */
  maxConcurrent: number;
  /** proxy.max_queue of the protected variants (per node). */
  maxQueue: number;
  /** rpc.proxy.timeout (ms). */
  proxyTimeoutMs: number;
  /** Client-side bound on one RPC (ms). */
  rpcTimeoutMs: number;
  /** Bound on one variant's load phase (s): later asks are not sent and count as failed. */
  maxSeconds: number;
  /** Allowed excess of origin calls over one per key (shared) or one per key per node (local), e.g. 0.05. */
  slack: number;
  variants: Variant[];
  redisUrl: string;
  /** protection.shedding.enabled on every node. */
  shedding: boolean;
  connectConcurrency: number;
}

/** OriginSummary is what the origin saw in one variant. */
export interface OriginSummary {
  calls: number;
  /** Distinct keys called. */
  keys: number;
  /** Most calls for one key. */
  maxPerKey: number;
  /** Keys called more than once. */
  keysCalledAgain: number;
  /** Most calls in any 1 s window (calls/s): compared with the origin's capacity. */
  peakPerSec: number;
  /** Most calls in any 100 ms window, × 10 (calls/s): the burstiness inside a second. */
  peak100msPerSec: number;
  /** Calls answered 503 for being over the origin's concurrency. */
  rejected: number;
  /** Calls whose caller went away before the answer. */
  aborted: number;
  maxInFlight: number;
}

/** VariantResult is one variant's outcome. */
export interface VariantResult {
  variant: Variant;
  /** The proxy settings the variant ran with. */
  proxy: { cache: 'shared' | 'per node' | 'none'; maxConcurrent: number; maxQueue: number; breaker: boolean };
  /** RPCs the plan asked for: nodes × keys × asks per key. */
  rpcs: number;
  ok: number;
  /** Successful replies carrying another key's answer. */
  wrong: number;
  /** Failed RPCs by outcome (error code, "timeout", "disconnect", "not sent"). */
  failed: Record<string, number>;
  /** Latency of successful RPCs. */
  latencyMs: LatencySummary;
  /** From the first ask to the last reply (s). */
  serveSeconds: number;
  origin: OriginSummary;
  /** Bulwark's own counters, summed over the nodes (from /metrics; empty when unread). */
  bulwark: { cache: Record<string, number>; protections: Record<string, number>; rejections: Record<string, number> };
}

/** ColdCacheResult is the whole scenario's outcome. */
export interface ColdCacheResult {
  /** The highest origin rate the protected variants' concurrency limit allows (calls/s). */
  protectedRateBound: number;
  variants: VariantResult[];
}

/** VariantRun is a variant's result and its time series. */
export interface VariantRun {
  result: VariantResult;
  originRate: Series;
  originTotal: Series;
  p99: Series;
}
