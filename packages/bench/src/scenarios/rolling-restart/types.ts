/**
 * The rolling-restart scenario's shapes: options, per-restart results, completeness, the result.
 *
 * @module
 */
import { type SubscribeOutcome } from '../../load/recovering-client.js';
import type { ServerApi } from '../../harness/api.js';
import type { LatencyRecorder, SeqTracker } from '../../harness/stats.js';
import { type LatencySummary } from '../../harness/stats.js';
import { type RunningServer } from '../../harness/targets.js';

/** RollingOptions size the scenario. */
export interface RollingOptions {
  clients: number;
  channels: number;
  /** API publications per second, all channels together. */
  rate: number;
  /** Bulwark's drain.window, ms. */
  drainWindowMs: number;
  /** How long the load balancer keeps routing to a draining node (its readiness probe), ms. */
  probeDelayMs: number;
  /** 1: drain A (players move to B); 2: then start a fresh A' and drain B (players move to A'). */
  restarts: number;
  /** Publishing before the first restart and after the last, seconds. */
  steadySeconds: number;
  /** How much longer than drain.window a restart may take until every player is back, ms. */
  slackMs: number;
  /** The peak reconnect rate may be at most this × players / drain.window. */
  maxPeakFactor: number;
  /** history_size of the namespace. */
  historySize: number;
  redisUrl: string;
  connectConcurrency: number;
  /** Chart bucket width, ms. */
  bucketMs: number;
}

/** RestartResult is what one restart (one node drained) did to the players. */
export interface RestartResult {
  label: string;
  /** Players connected to the drained node when the drain began. */
  affected: number;
  /** Of them, disconnected by the drain with 3001. */
  drained: number;
  /** Of them, subscribed again on another node by the end of the wait. */
  back: number;
  /** Seconds after the drain began of the first and last 3001 disconnect. */
  disconnectsS: { first: number; last: number } | null;
  /** Seconds from the drain's start until the last affected player was subscribed again; null if not all were. */
  allBackS: number | null;
  /** Highest number of reconnects (resubscribes) in any 1 s interval. */
  reconnectPeakPerSec: number;
  /** What the drain window should give: affected / window. */
  expectedPerSec: number;
  /** Connect attempts that failed during the restart, by reason (503 from the draining node, …). */
  failedAttempts: Record<string, number>;
  /** Per player: time from its disconnect to its resubscribe reply. */
  offlineMs: LatencySummary;
  resubscribes: number;
  /** Resubscribes answered `recovered: false`. */
  notRecovered: number;
  /** Publications carried in resubscribe replies. */
  recoveredPublications: number;
  /**
   * The server's own counters on the nodes that stayed up, read once the players were back
   * (cumulative since each node started): upgrades refused by reason (`overload` is load
   * shedding, `draining` only happens on a draining node) and recoveries by result.
   */
  nodeCounters: Record<string, NodeCounters>;
  /** How the drained process exited: "code/signal", "0/null" when clean. */
  exit: string;
}

/** NodeCounters are a node's /metrics counters that matter here. */
export interface NodeCounters {
  rejections: Record<string, number>;
  recoveries: Record<string, number>;
}

/** MissingExample shows one player's missing publications, for a report of a real loss. */
export interface MissingExample {
  client: number;
  channel: string;
  missingSeqs: number[];
  /** The stream offsets the API gave those publications (0: unknown). */
  missingOffsets: number[];
  /** Every subscribe reply the player got (what it asked to recover from, what it got). */
  subscribes: SubscribeOutcome[];
}

/** Completeness is the exact delivery account over the whole run. */
export interface Completeness {
  /** Deliveries owed: Σ over players of the publications the API accepted on their channel. */
  expected: number;
  /** Owed deliveries that never arrived, live or recovered, at players subscribed at the end. */
  missing: number;
  /** Owed deliveries not received by players that were not subscribed at the end (they never came back). */
  missingAway: number;
  clientsWithLoss: number;
  duplicates: number;
  /** Arrivals of a sequence number below one already received (publisher-side reordering included). */
  outOfOrder: number;
  /** Publications whose API call failed (not owed; a received one is not counted as missing or extra). */
  unconfirmed: number;
}

/** RollingResult is the scenario's outcome. */
export interface RollingResult {
  restarts: RestartResult[];
  published: number;
  apiFailures: number;
  apiLastError?: string;
  liveDeliveries: number;
  recoveredDeliveries: number;
  completeness: Completeness;
  /** Deliveries that went back in stream offset (see Observer.offsetRegressions); must be 0. */
  offsetRegressions: number;
  missingExamples: MissingExample[];
  notRecoveredExamples: Array<SubscribeOutcome & { client: number; channel: string }>;
  /** Players not subscribed at the end, and those that gave up (terminal close or refusal). */
  notSubscribedAtEnd: number;
  gaveUp: number;
  /** Failed connect attempts outside the restart windows (the first connect to A included), by reason. */
  failedAttemptsOutsideRestarts: Record<string, number>;
  /** Close codes of every accepted connection that closed during the run. */
  closeCodes: Record<string, number>;
  /** Live delivery latency outside and inside the restart windows (drain start → all back). */
  liveLatencyMs: { outside: LatencySummary; during: LatencySummary };
  /** Age (now − publish time) of recovered publications when their resubscribe reply arrived. */
  recoveredAgeMs: LatencySummary;
}

/** CompletenessInput is one player's account: its channel, what it received, whether it is back. */
export interface CompletenessInput {
  channel: number;
  tracker: SeqTracker;
  /** Subscribed at the end: everything owed should have arrived. */
  subscribed: boolean;
}

/** RestartAcc accumulates one restart's events. */
export interface RestartAcc {
  label: string;
  drainedUrl: string;
  startMs: number;
  /** Affected players and their subscribe count when the drain began. */
  affected: Map<number, number>;
  disconnects: number[];
  drained: number;
  reconnects: number[];
  failedAttempts: Record<string, number>;
  offline: LatencyRecorder;
  resubscribes: number;
  notRecovered: number;
  recoveredPublications: number;
  allBackAtMs: number | undefined;
  /** Affected players back when the wait for them ended. */
  back: number;
  /** How the drained process exited: "code/signal" (0/null is a clean exit). */
  exit: string;
  /** Counters of the nodes that stayed up, read when the wait ended. */
  nodeCounters: Record<string, NodeCounters>;
}

export type NodeName = 'A' | 'B' | "A'";

/** The servers of one run, stopped on every way out. */
export interface Fleet {
  nodes: Map<NodeName, RunningServer>;
  apis: Map<NodeName, ServerApi>;
}

export const NAMESPACE = 'rr';

export const channelName = (ch: number) => `${NAMESPACE}:ch${ch}`;
