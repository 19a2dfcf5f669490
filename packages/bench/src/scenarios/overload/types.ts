/**
 * The overload scenario's shapes: its options, each run's replies, the capacity, the verdict, the result.
 *
 * @module
 */
import { type FeedResult } from '../../load/live-feed.js';
import { type CpuReading } from '../../harness/proc.js';
import { type LatencySummary } from '../../harness/stats.js';

/** OverloadOptions size the overload scenario. */
export interface OverloadOptions {
  /** Connections polling history. */
  pollers: number;
  /** Subscribers of the live channel. */
  subscribers: number;
  /** Publications per second to the live channel. */
  publishRate: number;
  /** Publications kept in the board channel's history, and the page each poll asks for. */
  page: number;
  /** Seconds of each open-loop run. */
  seconds: number;
  /** Seconds of the closed-loop capacity run. */
  capacitySeconds: number;
  /** Polls each poller keeps outstanding in the capacity run. */
  depth: number;
  /** Offered load of the open-loop runs, in multiples of the capacity. */
  multipliers: number[];
  /** Highest offered rate, polls/s: beyond it the one-core load generator cannot send on time. */
  maxOfferedRate: number;
  /** Unmeasured closed-loop polling (one outstanding per poller) before each run, seconds. */
  warmupSeconds: number;
  /** How long replies may still arrive after a run's window. */
  graceMs: number;
  connectConcurrency: number;
}

/** ReplyCounts tallies the replies to a run's polls. */
export interface ReplyCounts {
  sent: number;
  ok: number;
  /** Refused with error 111 (too many requests, temporary): shed. */
  shed: number;
  /** Other error replies, by code. */
  otherErrors: Record<string, number>;
  /** Polls without a reply when the grace period ended. */
  timeouts: number;
}

/** OverloadRun is one open-loop run at a multiple of the capacity (CPU over the window and grace). */
export interface OverloadRun extends ReplyCounts, CpuReading {
  multiplier: number;
  shedding: boolean;
  /** Polls per second asked for: multiplier × capacity, capped at maxOfferedRate. */
  targetRate: number;
  /** Whether maxOfferedRate capped the target. */
  capped: boolean;
  /** Polls per second actually sent. */
  offeredPerSec: number;
  /** Successful replies per second of the window. */
  goodputPerSec: number;
  shedPerSec: number;
  /** Latency of successful replies. */
  okLatencyMs: LatencySummary;
  /** Latency of refusals: how fast a shed poll is answered. */
  shedLatencyMs: LatencySummary;
  feed: FeedResult;
  /** Pollers the server closed during the run, by close code. */
  pollersClosed: Record<string, number>;
  /**
   * From the server's /metrics after the grace (absent when it did not answer in 5 s): refusals
   * by reason (`overload_read`: polls shed, whether or not the refusal reached the poller in
   * time) and the p99 event-loop lag over the run.
   */
  server?: { rejections: Record<string, number>; eventLoopLagP99Ms: number };
}

/** OverloadCapacity is the closed-loop measurement of C. */
export interface OverloadCapacity {
  /** C: successful polls per second. */
  perSec: number;
  ok: number;
  errors: number;
  okLatencyMs: LatencySummary;
  serverCpuPercent: number;
  loadgenCpuPercent: number;
  /** Which side most likely set C, judged from the two CPU readings. */
  limitedBy: string;
}

/** OverloadVerdict is the pass/fail judgement of shedding at the highest multiplier. */
export interface OverloadVerdict {
  multiplier: number;
  /** Goodput must reach this: half of C. */
  goodputFloor: number;
  goodput: number;
  /** p99 of successful replies must stay within this: 10 × the p99 at 1× with shedding. */
  p99Ceiling: number;
  p99: number;
  pass: boolean;
  reasons: string[];
}

/** OverloadResult is the whole scenario's outcome. */
export interface OverloadResult {
  page: number;
  /** Size of one history reply, bytes. */
  replyBytes: number;
  capacity: OverloadCapacity;
  runs: OverloadRun[];
  verdict: OverloadVerdict;
}
