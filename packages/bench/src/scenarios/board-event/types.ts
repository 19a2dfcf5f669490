/**
 * The board-event scenario's shapes: its modes and options, and the result of each mode.
 *
 * @module
 */
import { type CpuReading } from '../../harness/proc.js';
import { type LatencySummary, type LossSummary } from '../../harness/stats.js';
import type { Timeline } from '../../harness/timeline.js';

/** BoardMode is how players read their board. */
export type BoardMode = 'push' | 'poll' | 'poll-since' | 'shared-poll';

/** boardModes are the modes, in the order they run. */
export const boardModes: readonly BoardMode[] = ['push', 'poll', 'poll-since', 'shared-poll'];

/** BoardOptions size the scenario. */
export interface BoardOptions {
  players: number;
  teamSize: number;
  /** Teams: ceil(players / teamSize); the last may be smaller. */
  teams: number;
  /** Seconds between two posts to one team's board. */
  postIntervalS: number;
  /** Bytes of each post's JSON data. */
  postBytes: number;
  /** Seconds of posting measured (after the warm-up). */
  seconds: number;
  /**
   * Seconds of posting before the measured window, so that it sees the steady state: every
   * poller has polled since posting began, and replies carry posts as they will throughout.
   */
  warmupS: number;
  /** Seconds between two polls of one player. */
  pollIntervalS: number;
  /** Publications per poll (history limit), and posts prefilled per board. */
  page: number;
  /** Publications the board keeps (namespace history_size). */
  historySize: number;
  /** Push delivery latency p99 must stay within this. */
  p99LimitMs: number;
  /** How long deliveries and poll replies may still arrive after their window. */
  graceMs: number;
  /** CPU sampling interval of the charts. */
  sampleMs: number;
  connectConcurrency: number;
  /** Modes run, in order, each on a fresh server. */
  modes: BoardMode[];
  /** shared-poll: the namespace's refresh_interval, seconds. */
  refreshIntervalS: number;
  /** shared-poll: the namespace's refresh_batch_size. */
  refreshBatchSize: number;
  /** shared-poll: how far past the refresh interval staleness p99 may go, ms. */
  stalenessMarginMs: number;
}

/** OriginCounts are what the board's backend saw in the measured window (shared-poll). */
export interface OriginCounts {
  requests: number;
  requestsPerSecond: number;
  itemsAsked: number;
  itemsPerRequest: number;
  /** Items answered with data (posts new to Bulwark). */
  itemsAnswered: number;
  bytesAnswered: number;
  /** The most refresh cycles that can start in the window (⌊window ÷ refresh interval⌋ + 1). */
  cycles: number;
  /** Batches of one cycle over every board (boards × ⌈keys per board ÷ batch size⌉). */
  batchesPerCycle: number;
  /** requests ÷ (cycles × batchesPerCycle): 1 when the cluster asks once per batch per cycle. */
  requestsPerCycleBatch: number;
  /** Refresh requests before the window (the players' tracks fetching cold keys at connect). */
  requestsAtConnect: number;
}

/** PollCounts tallies the polls of a poll mode. */
export interface PollCounts {
  sent: number;
  ok: number;
  /** Error replies by code (111: refused, the server shedding load). */
  errors: Record<string, number>;
  /** Polls without a reply when the grace period ended. */
  timeouts: number;
  /** Polls not sent because the player's connection was closed. */
  notSent: number;
  /** Publications carried per successful reply, on average (new or not). */
  postsPerReply: number;
  /** Posts a player saw for the first time, per successful reply, on average. */
  newPostsPerReply: number;
  replyLatencyMs: LatencySummary;
}

/** ModeResult is one mode's outcome. */
export interface ModeResult {
  mode: BoardMode;
  /** Posts published (sent to the API) over all teams. */
  published: number;
  apiErrors: number;
  apiSkipped: number;
  apiLastError?: string;
  /** Post × reader pairs owed: Σ over teams of posts × members. */
  owed: number;
  /** Owed pairs that arrived (push) or were seen in a poll reply (poll). */
  seen: number;
  /** Exact misses per player (push: lost deliveries; poll: posts never in a reply). */
  missing: LossSummary;
  /** push: delivery latency; poll: staleness (first reply containing the post − send time). */
  latencyMs: LatencySummary;
  polls?: PollCounts;
  /** shared-poll: the board's backend. */
  origin?: OriginCounts;
  /** Over the measured window (the posting after the warm-up). */
  window: CpuReading & {
    seconds: number;
    /** Post × reader pairs owed for the posts published in the window. */
    owed: number;
    serverBytesWritten: number;
    clientBytesReceived: number;
  };
  /** Server CPU per post × reader owed in the window, µs. */
  serverCpuMicrosPerPostReader: number;
  /** Server bytes written per post × reader owed in the window. */
  serverBytesPerPostReader: number;
  /** Players closed by the end, by close code. */
  disconnected: Record<string, number>;
}

/** BoardResult is the whole scenario's outcome. */
export interface BoardResult {
  push: ModeResult;
  poll: ModeResult;
  pollSince?: ModeResult;
  sharedPoll?: ModeResult;
  /** Server CPU over the window, ÷ push's. */
  cpuRatio: { poll: number; pollSince?: number; sharedPoll?: number };
  /** Server bytes written over the window, ÷ push's. */
  bytesRatio: { poll: number; pollSince?: number; sharedPoll?: number };
}

/** What a mode's run leaves for the charts. */
export interface ModeTrace {
  timeline: Timeline;
  cpu: Array<[number, number]>;
}

export type Runs = Partial<Record<BoardMode, { result: ModeResult; trace: ModeTrace }>>;
