/**
 * The hug scenario's shapes: its options, and the result of a run and of each phase.
 *
 * @module
 */
import { type ProbeSummary } from '../../harness/http-probe.js';
import { type CpuReading } from '../../harness/proc.js';
import { type LatencySummary } from '../../harness/stats.js';
import type { Timeline } from '../../harness/timeline.js';

/** HugOptions size the scenario. */
export interface HugOptions {
  /** Normal arrival rate: new players per second. */
  rate: number;
  /** Mean session, seconds (each player stays 0.5–1.5 × this); 0: stay until the end. */
  sessionSeconds: number;
  warmupSeconds: number;
  steps: number;
  stepSeconds: number;
  /** Highest multiple of the normal rate. */
  top: number;
  tailSeconds: number;
  /** client.connection_limit of the node. */
  connectionLimit: number;
  /** client.connection_rate_limit of the node (0: none). */
  connectionRateLimit: number;
  /** Retries after refusals, per player. */
  retries: number;
  /** Attempts in flight at most (the load generator's sockets and memory). */
  maxInFlight: number;
  /** Attempts (arrivals and retries) at most over the run. */
  maxAttempts: number;
  /** Channels the players spread over. */
  channels: number;
  p99LimitMs: number;
  maxRssMiB: number;
  maxFailedPercent: number;
  readyTimeoutMs: number;
  /** Width of the chart buckets. */
  bucketMs: number;
}

/** PhaseResult is one phase's row. */
export interface PhaseResult {
  label: string;
  multiplier: number;
  /** New players per second the schedule offered. */
  offeredPerSec: number;
  seconds: number;
  /** First attempts of new players. */
  arrivals: number;
  /** Arrivals and retries. */
  attempts: number;
  admitted: number;
  refused: number;
  failed: number;
  /** Socket opened → subscribe confirmed, admitted attempts started in this phase. */
  handshakeMs: LatencySummary;
  /** Socket opened → refusal read. */
  refusalMs: LatencySummary;
  /** Client-side connections held at the phase's end. */
  heldAtEnd: number;
  rssAtEndBytes: number;
  serverCpuPercent: number;
}

/** HugResult is the scenario's outcome. */
export interface HugResult {
  /** rate × session: players online at the normal rate. */
  normalOnline: number;
  plannedArrivals: number;
  players: {
    arrived: number;
    admittedFirstTry: number;
    admittedAfterRetry: number;
    /** Admitted players by the refusals they had before getting in. */
    admittedAfterRefusals: Record<string, number>;
    /** Refused 1 + retries times: gave up. */
    gaveUp: number;
    /** Refused, and their next try would have come after the run's end. */
    retryPendingAtEnd: number;
    failed: number;
    /** Arrivals or retries the load generator did not send (in-flight or attempt cap). */
    notSent: number;
    /** Attempts still in flight when the run ended (counted nowhere else). */
    unfinished: number;
  };
  attempts: {
    total: number;
    admitted: number;
    refused: number;
    failed: number;
    refusedByStatus: Record<string, number>;
    failedByKind: Record<string, number>;
    firstFailure?: string;
  };
  advice: {
    refusalsWithRetryAfter: number;
    refusalsWithout: number;
    /** Retry-After values (seconds) as read, and how often each came. */
    retryAfterSeconds: { min: number; p50: number; max: number };
    retryAfterCounts: Record<string, number>;
  };
  /** bulwark_rejections_total over the run, by reason (absent if /metrics did not answer). */
  serverRejections?: Record<string, number>;
  /** Admitted handshakes after the warm-up (ramp and tail). */
  handshakeMs: LatencySummary;
  /** Admitted handshakes of the whole run. */
  handshakeAllMs: LatencySummary;
  refusalMs: LatencySummary;
  /** First attempt → subscribed, for players admitted after refusals (Retry-After waits included). */
  timeToAdmitAfterRefusalMs: LatencySummary;
  held: { limit: number; peakClient: number; peakServerSampled: number; atEnd: number };
  closes: { left: number; unexpected: number; unexpectedByCode: Record<string, number> };
  server: {
    alive: boolean;
    rssIdleBytes: number;
    rssPeakBytes: number;
    rssEndBytes: number;
    /** (peak RSS − idle RSS) / peak connections held. */
    rssPerHeldBytes: number;
    cpuPercentPeak: number;
    eventLoopLagP99MaxMs: number;
  };
  ready: ProbeSummary;
  cpu: CpuReading;
  phases: PhaseResult[];
}

/** HugTrace is what the charts read of a run: its timeline and the client-side samples. */
export interface HugTrace {
  readonly tl: Timeline;
  readonly heldSeries: Array<[number, number]>;
  readonly inFlightSeries: Array<[number, number]>;
  readonly t0: number;
}
