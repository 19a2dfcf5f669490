/**
 * The observer of the recovering clients: counts reconnects, recoveries and failures per restart.
 *
 * @module
 */
import type { RecoveringClient } from '../../load/recovering-client.js';
import { type RecoveringClientEvents, type SubscribeOutcome } from '../../load/recovering-client.js';
import { LatencyRecorder, SeqTracker } from '../../harness/stats.js';
import { Timeline } from '../../harness/timeline.js';
import { nowMicros } from '../../harness/util.js';
import { channelName } from './types.js';
import { type RestartAcc } from './types.js';

/** failureKind shortens an attempt failure to a reason worth tallying. */
export function failureKind(why: string): string {
  const http = /Unexpected server response: (\d+)/.exec(why);
  if (http) return `HTTP ${http[1]}`;
  if (why.includes('ECONNREFUSED')) return 'connection refused';
  if (why.startsWith('no subscription within')) return 'timeout';
  if (why.startsWith('no address')) return 'no address';
  return why.length > 60 ? `${why.slice(0, 60)}…` : why;
}

/** Observer receives every player's events and keeps the accounts. */
export class Observer implements RecoveringClientEvents {
  readonly trackers: SeqTracker[];
  /** When each player's connection closed, until it is subscribed again (0: not offline). */
  private readonly disconnectedAt: Float64Array;
  /** Highest stream offset each player has received. */
  private readonly lastOffset: Float64Array;
  /**
   * Deliveries whose stream offset was not above the player's highest so far (duplicates
   * excluded): the server broke offset order. Sequence numbers may legitimately arrive out of
   * order (the publisher's concurrent API calls can reach Redis in another order), offsets not.
   */
  offsetRegressions = 0;
  readonly history: SubscribeOutcome[][];
  readonly timeline: Timeline;
  readonly liveOutside = new LatencyRecorder();
  readonly liveDuring = new LatencyRecorder();
  readonly recoveredAge = new LatencyRecorder();
  liveDeliveries = 0;
  recoveredDeliveries = 0;
  readonly closeCodes: Record<string, number> = {};
  /** Failed connect attempts outside the restart windows (the first connect included), by reason. */
  readonly failedOutsideRestarts: Record<string, number> = {};
  readonly notRecovered: Array<SubscribeOutcome & { client: number; channel: string }> = [];
  readonly restarts: RestartAcc[] = [];
  /** A restart is in progress (drain start until every affected player is back). */
  restarting = false;

  constructor(
    clients: number,
    private readonly channelOf: (client: number) => number,
    /** The node name of a WebSocket URL, for failure tallies. */
    private readonly nodeOf: (url: string) => string,
    bucketMs: number,
  ) {
    this.trackers = Array.from({ length: clients }, () => new SeqTracker(1));
    this.lastOffset = new Float64Array(clients);
    this.disconnectedAt = new Float64Array(clients);
    this.history = Array.from({ length: clients }, () => []);
    this.timeline = new Timeline(bucketMs);
  }

  private get cur(): RestartAcc | undefined {
    return this.restarts[this.restarts.length - 1];
  }

  publication(c: RecoveringClient, seq: number, sentAtMicros: number, offset: number, recovered: boolean): void {
    const tracker = this.trackers[c.id] as SeqTracker;
    const dups = tracker.duplicates;
    tracker.record(seq);
    if (tracker.duplicates === dups && offset > 0) {
      if (offset <= (this.lastOffset[c.id] as number)) this.offsetRegressions++;
      else this.lastOffset[c.id] = offset;
    }
    const ms = (nowMicros() - sentAtMicros) / 1000;
    if (recovered) {
      this.recoveredDeliveries++;
      this.recoveredAge.add(ms);
      this.timeline.count('recovered');
    } else {
      this.liveDeliveries++;
      (this.restarting ? this.liveDuring : this.liveOutside).add(ms);
      this.timeline.count('live');
      this.timeline.sample('live', ms);
    }
  }

  subscribed(c: RecoveringClient, o: SubscribeOutcome): void {
    (this.history[c.id] as SubscribeOutcome[]).push(o);
    if (!o.recovering) return;
    this.timeline.count('reconnect');
    const r = this.cur;
    if (!o.recovered && this.notRecovered.length < 20) {
      this.notRecovered.push({ ...o, client: c.id, channel: channelName(this.channelOf(c.id)) });
    }
    if (!r) return;
    r.reconnects.push(o.atMs);
    r.resubscribes++;
    if (!o.recovered) r.notRecovered++;
    r.recoveredPublications += o.publications;
    const gone = this.disconnectedAt[c.id] as number;
    if (gone > 0) r.offline.add(o.atMs - gone);
    this.disconnectedAt[c.id] = 0;
  }

  disconnected(c: RecoveringClient, code: number): void {
    this.closeCodes[code] = (this.closeCodes[code] ?? 0) + 1;
    this.disconnectedAt[c.id] = performance.now();
    this.timeline.count('disconnect');
    const r = this.cur;
    if (!r || !r.affected.has(c.id)) return;
    r.disconnects.push(performance.now());
    if (code === 3001) r.drained++;
  }

  attemptFailed(c: RecoveringClient, why: string): void {
    this.timeline.count('failed attempt');
    const tally = this.restarting ? this.cur?.failedAttempts : this.failedOutsideRestarts;
    if (!tally) return;
    const k = `${failureKind(why)} from ${this.nodeOf(c.url)}`;
    tally[k] = (tally[k] ?? 0) + 1;
  }

  /** beginRestart starts accounting a drain of the node at `drainedUrl`. */
  beginRestart(label: string, drainedUrl: string, clients: readonly RecoveringClient[]): RestartAcc {
    const affected = new Map<number, number>();
    for (const c of clients) if (c.url === drainedUrl && c.state === 'subscribed') affected.set(c.id, c.subscribes);
    const acc: RestartAcc = {
      label,
      drainedUrl,
      startMs: performance.now(),
      affected,
      disconnects: [],
      drained: 0,
      reconnects: [],
      failedAttempts: {},
      offline: new LatencyRecorder(),
      resubscribes: 0,
      notRecovered: 0,
      recoveredPublications: 0,
      allBackAtMs: undefined,
      back: 0,
      exit: 'running',
      nodeCounters: {},
    };
    this.restarts.push(acc);
    this.restarting = true;
    return acc;
  }

  /** backCount is how many affected players are subscribed again on another node. */
  backCount(acc: RestartAcc, clients: readonly RecoveringClient[]): number {
    let n = 0;
    for (const [id, subs] of acc.affected) {
      const c = clients[id] as RecoveringClient;
      if (c.state === 'subscribed' && c.subscribes > subs && c.url !== acc.drainedUrl) n++;
    }
    return n;
  }
}
