/**
 * The lobby scenario's shapes: its options, and what a run measured (joins, conflicts, latency,
 * snapshot sizes, exactness).
 *
 * @module
 */
import type { LatencySummary } from '../../harness/stats.js';

/** SlotPick is how a player chooses among the free slots its mirror shows. */
export type SlotPick = 'lowest' | 'random';

/** LobbyOptions size the scenario (see the flags for defaults). */
export interface LobbyOptions {
  /** M: Bulwark processes (M > 1: on one Redis). */
  nodes: number;
  /** Players, one connection each, spread round-robin over the nodes. */
  players: number;
  /** K: lobbies, channels `lobby:0` … `lobby:K-1`. */
  lobbies: number;
  /** S: slots per lobby, keys `slot-1` … `slot-S` (the namespace's map.max_keys). */
  slots: number;
  /** Seconds players join and leave lobbies. */
  durationSeconds: number;
  /** Seconds over which the players' first joins are spread. */
  rampSeconds: number;
  /** A player stays in a lobby for a time uniform in [holdMin, holdMax] seconds. */
  holdMinSeconds: number;
  holdMaxSeconds: number;
  /** Longest pause between leaving one lobby (or finding it full) and joining the next (s). */
  pauseSeconds: number;
  /** Percentage of players who, having left a lobby, join another (the rest leave the game). */
  rejoinPercent: number;
  /** Entries per state page of a subscribe (and of the server read at the end). */
  pageSize: number;
  pick: SlotPick;
  /** Bound on the settle at the end (mirrors catching up), and on the extra time a player who lost every race keeps trying. */
  settleSeconds: number;
  /** Own write → delivery p99 must stay within this (ms). */
  p99LimitMs: number;
  redisUrl: string;
  connectConcurrency: number;
}

/** A distribution of sizes (entries, bytes): the summary's fields, without units. */
export type SizeSummary = LatencySummary;

/** ExactnessResult is the end state compared: every player's mirror against the server's map. */
export interface ExactnessResult {
  /** Players subscribed to a lobby at the end (each holds a mirror). */
  mirrors: number;
  /** Mirrors whose entries equal the server's state of their lobby. */
  equal: number;
  /** Mirrors at the server's stream position (offset and epoch) of their lobby. */
  atPosition: number;
  /** A few differing mirrors, described, for the report. */
  examples: string[];
  /** Slots the server lists at the end, over every lobby. */
  slotsHeld: number;
  /** Players the server lists in more than one slot (in any lobbies). */
  doubleHeld: number;
  /** Slots the server gives to a player who does not believe it holds that slot. */
  strangers: number;
  /** Players who believe they hold a slot the server does not give them. */
  phantoms: number;
  /** Entries that are not a slot key with a player's value. */
  malformed: number;
}

/** LobbyResult is what one run measured. */
export interface LobbyResult {
  /** Engine: memory (1 node) or redis (M nodes). */
  engine: 'memory' | 'redis';
  /** Seconds from the first join to the last player's last step. */
  seconds: number;
  joins: {
    /** Lobby subscribes started. */
    attempts: number;
    /** Subscribes that went live. */
    subscribed: number;
    /** Slots taken (a write answered 0). */
    succeeded: number;
    /** Attempts that found no free slot in the mirror. */
    fullOnArrival: number;
    /** Attempts that found free slots and lost the race for every one (113 each time). */
    fullAfterConflict: number;
    subscribeErrors: Record<string, number>;
    /** Slot writes answered with an error other than 113, by code. */
    writeErrors: Record<string, number>;
  };
  conflicts: {
    /** Slot writes answered 113. */
    total: number;
    /** Of them, races for the lobby's last free slot (as the loser's mirror showed it). */
    lastSlot: number;
    perSlotTaken: number;
  };
  leaves: { ok: number; errors: Record<string, number> };
  players: {
    /** Players who held a slot at least once. */
    gotSlot: number;
    /** Players who saw a free slot at least once. */
    sawFree: number;
    /** Players whose last attempt found a free slot and lost every race (the run ended on them). */
    starved: number;
    /** Players who left the game (did not rejoin). */
    gone: number;
  };
  latencyMs: {
    /** Own slot write (take or leave) → the push carrying it to the writer. */
    own: LatencySummary;
    /** Slot write → the push carrying it to each other member of the lobby. */
    others: LatencySummary;
    /** Slot write → its reply. */
    writeReply: LatencySummary;
    /** First state request → live. */
    subscribe: LatencySummary;
  };
  /** Own successful takes, and those whose push reached the writer. */
  ownTakes: { ok: number; delivered: number };
  snapshot: { entries: SizeSummary; bytes: SizeSummary; requests: SizeSummary; restarts: number };
  /** Anomalies every mirror saw live (see MapMirror). */
  stream: { gaps: number; stale: number; overwrites: number };
  exactness: ExactnessResult;
  /** Milliseconds the settle took until every mirror matched (or its bound). */
  settleMs: number;
  /**
   * Over the active window, per node: server CPU (% of one core), and the time it waited for a
   * CPU (% of the window: on a shared machine, latency the server did not cause); the load
   * generator's CPU, its own wait for a CPU, and its event-loop delay (a late timestamp of arrival).
   */
  cpu: {
    serverPercent: number[];
    serverWaitPercent: number[];
    loadgenPercent: number;
    loadgenWaitPercent: number;
    loadgenLoopDelayMs: { p99: number; max: number };
  };
  /**
   * Bulwark's own counts (/metrics, summed over the nodes; undefined when unread): client map
   * writes applied by operation, writes suppressed by reason (`key_exists`: the 113s), and map
   * subscribes dropped for not going live in time.
   */
  bulwark?: { writes: Record<string, number>; suppressed: Record<string, number>; catchUpTimeouts: number };
  /** Own writes let go unseen: a leave's removal whose push had not come when the player unsubscribed. */
  ownDropped: number;
  /** Players closed before the end, by close code. */
  disconnected: Record<string, number>;
  serverUnsubscribes: number;
  bytesReceived: number;
}

/** RefusedResult is a run the server refused at config load (map namespaces on the Redis engine). */
export interface RefusedResult {
  refused: string;
}
