/**
 * The stalled-clients scenario's shapes: its options, each run, the verdict, the result.
 *
 * @module
 */
import { type FeedResult } from '../../load/live-feed.js';
import { type CpuReading } from '../../harness/proc.js';

/** StalledOptions size the stalled-clients scenario. */
export interface StalledOptions {
  /** All subscribers, healthy and stalled. */
  subscribers: number;
  channels: number;
  /** Share of the subscribers that stall in runs (b) and (c), %. */
  stalledPercent: number;
  /** API publications per second, all channels together. */
  publishRate: number;
  /** Padding bytes in each publication's data (~1 KB publications). */
  padBytes: number;
  /** Seconds of publishing per run. */
  seconds: number;
  /** Unmeasured publishing to the healthy clients before the stalled ones connect, seconds. */
  warmupSeconds: number;
  /** How long to wait for the last deliveries, and for stalled clients to see their close. */
  drainMs: number;
  /** How often server RSS is sampled, ms. */
  sampleMs: number;
  /** client.queue_max_size of run (c). */
  uncappedQueueBytes: number;
  connectConcurrency: number;
}

/** StalledRun is one run's outcome. */
export interface StalledRun extends CpuReading {
  label: string;
  stalledClients: number;
  /** client.queue_max_size, or undefined for the server's default. */
  queueMaxSize: number | undefined;
  /** Server RSS in MiB: after setup, highest sample during the run, and at its end. */
  rssMiB: { baseline: number; peak: number; final: number };
  /** bulwark_slow_disconnects_total at the end of the run. */
  slowDisconnects: number;
  /**
   * Seconds into the window by which the first and the last slow disconnect had happened (the
   * counter is read once a second), or null when none did: how long stalled clients held on.
   */
  slowDisconnectsBySecond: { first: number | null; last: number | null };
  /** bulwark_disconnects_total by code at the end of the run. */
  disconnectsByCode: Record<string, number>;
  /** Close codes the stalled clients saw once they read again (1006: no close frame reached them). */
  stalledCloseCodes: Record<string, number>;
  /** Stalled clients still open at the end. */
  stalledStillOpen: number;
  /** The healthy subscribers' deliveries. */
  healthy: FeedResult;
}

/** StalledVerdict judges (b) against (a) and (c). */
export interface StalledVerdict {
  /** Healthy p99 in (b) must stay within 2 × that of (a). */
  p99Ceiling: number;
  p99: number;
  /**
   * Memory the stalled clients add — a run's RSS growth (peak − baseline) beyond that of (a),
   * which has the same healthy traffic — must in (b) stay within half of that in (c).
   */
  addedRssCeilingMiB: number;
  addedRssMiB: number;
  pass: boolean;
  reasons: string[];
}

/** StalledResult is the whole scenario's outcome. */
export interface StalledResult {
  runs: StalledRun[];
  verdict: StalledVerdict;
}
