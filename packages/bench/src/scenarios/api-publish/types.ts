/**
 * The api-publish scenario's shapes: its options, the runs it makes (the HTTP floor, Bulwark's
 * `POST /api/publish`, Bulwark's `POST /api/batch`) and the result of one run.
 *
 * @module
 */
import type { LatencySummary } from '../../harness/stats.js';

/** ApiRunName names one run of the scenario, each on a fresh server. */
export type ApiRunName = 'floor' | 'bulwark' | 'batch';

/** Every run, in the order they are made (and listed in the table). */
export const API_RUNS: readonly ApiRunName[] = ['floor', 'bulwark', 'batch'];

/** ApiPublishOptions size the scenario. */
export interface ApiPublishOptions {
  /** The runs to make, in {@link API_RUNS} order. */
  runs: ApiRunName[];
  /** Keep-alive connections of the load generator, each with one request in flight. */
  connections: number;
  /** Channels the publishes go to, round robin. */
  channels: number;
  /** Publishes per `POST /api/batch` request (the batch run). */
  batchSize: number;
  /** Run the batch's commands concurrently (`"parallel": true`) instead of in order. */
  batchParallel: boolean;
  /** Seconds measured, after the warm-up. */
  seconds: number;
  /** Seconds of unmeasured load first (JIT, heap growth) on the same connections. */
  warmupSeconds: number;
  /** Padding bytes in each publication's data. */
  padBytes: number;
  /** The history namespace: publications kept per channel, and for how long. */
  historySize: number;
  historyTtl: string;
  /** One WebSocket subscriber per channel on Bulwark, counting deliveries (costs Bulwark CPU). */
  verifySubscribers: boolean;
  /** Bulwark/floor publishes per server CPU-second must be at least this (issue 18: 0.8). */
  ratioTarget: number;
  /** The batch run's publishes per server CPU-second / the floor's must be at least this. */
  batchRatioTarget: number;
}

/** ApiRunResult is what one run measured. */
export interface ApiRunResult {
  run: ApiRunName;
  /** What the requests were: "POST /api/publish" or "POST /api/batch × 50". */
  requestKind: string;
  connections: number;
  channels: number;
  /** Publishes per request (1, or the batch size). */
  publishesPerRequest: number;
  /** Length of the measured window, s. */
  seconds: number;
  /** Replies that arrived in the measured window, and the publishes they carried. */
  requests: number;
  publishes: number;
  requestsPerSec: number;
  publishesPerSec: number;
  /** Publishes acknowledged in each whole second of the window (spots stalls). */
  publishesBySecond: number[];
  /** Request written → whole reply read, ms, of the replies in the window. */
  latencyMs: LatencySummary;
  /**
   * Requests answered with a non-200 status, an `error` in the body (or in any reply of a
   * batch), a body that does not parse, or lost with their connection: warm-up, window and
   * drain together. Must be 0.
   */
  errors: number;
  /** The first few errors, as read. */
  errorSamples: string[];
  /**
   * Publishes acknowledged, all phases, and channels whose highest offset answered differs from
   * their count of acknowledged publishes (a publish lost or applied twice): must be 0.
   */
  acknowledged: number;
  offsetMismatches: number;
  /** Deliveries counted by the subscribers (--verify-subscribers), and how many were expected. */
  delivered?: number;
  expectedDeliveries?: number;
  serverCpuMicros: number;
  /** Server CPU over the window, % of one core. */
  serverCpuPercent: number;
  serverCpuMicrosPerPublish: number;
  /** Publishes per second of server CPU: the "per core" throughput. */
  publishesPerServerCpuSecond: number;
  /**
   * Time the server's main thread was runnable but waiting for a CPU, % of the window: on a
   * machine shared with other work a server that waits answers late without being busy, and
   * its CPU % alone would not say so (the per-CPU-second figures hold regardless).
   */
  serverRunQueueWaitPercent: number;
  /** The same for the load generator's threads. */
  loadgenRunQueueWaitPercent: number;
  /** Load generator CPU over the window, % of one core (≥ 90 %: it is the bottleneck). */
  loadgenCpuPercent: number;
  loadgenLoopDelayMs: { p99: number; max: number };
  /** Which side reached ≥ 90 % of a core: server, load generator, both or neither. */
  saturated: string;
}
