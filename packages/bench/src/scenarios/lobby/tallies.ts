/**
 * What the players of a lobby run write to as they go: counters, latency and size recorders,
 * and the timeline of the charts. One instance per run, shared by every player.
 *
 * @module
 */
import { LatencyRecorder } from '../../harness/stats.js';
import { Timeline } from '../../harness/timeline.js';

/** LobbyTallies are a run's counters and recorders. */
export class LobbyTallies {
  readonly timeline = new Timeline(1000);
  readonly own = new LatencyRecorder();
  readonly others = new LatencyRecorder();
  readonly writeReply = new LatencyRecorder();
  readonly subscribeMs = new LatencyRecorder();
  readonly snapshotEntries = new LatencyRecorder();
  readonly snapshotBytes = new LatencyRecorder();
  readonly snapshotRequests = new LatencyRecorder();
  snapshotRestarts = 0;
  joinAttempts = 0;
  subscribed = 0;
  joined = 0;
  fullOnArrival = 0;
  fullAfterConflict = 0;
  conflicts = 0;
  lastSlotConflicts = 0;
  leaves = 0;
  ownTakesOk = 0;
  ownTakesDelivered = 0;
  readonly subscribeErrors = new Map<string, number>();
  readonly writeErrors = new Map<string, number>();
  readonly leaveErrors = new Map<string, number>();
  /**
   * When each slot's latest removal was sent, by `channel\0key`: a removal carries no data to
   * time it by, and only the slot's holder removes it, so the latest one is the one arriving.
   */
  readonly removalSentAt = new Map<string, number>();

  /** bump adds one to `label` in a tally map. */
  static bump(m: Map<string, number>, label: string | number): void {
    const k = String(label);
    m.set(k, (m.get(k) ?? 0) + 1);
  }
}
