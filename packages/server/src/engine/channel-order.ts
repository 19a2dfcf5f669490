/**
 * Per-channel delivery order on a receiving node of a composed broker. The engine numbers a
 * channel's publications 1, 2, 3…, but they reach a node over the fan-out (NATS, Redis pub/sub) from the nodes
 * that published them, and two nodes' messages can cross: offset 6 from node B may arrive
 * before offset 5 from node A. ChannelOrder delivers in offset order anyway:
 *
 * - the next offset (last delivered + 1) is delivered at once: in the usual case order costs
 *   nothing;
 * - one that arrives early is held, at most `waitMs` (broker.nats.reorder_wait,
 *   broker.redis.reorder_wait); if the missing offsets arrive meanwhile, everything held is
 *   delivered in order;
 * - past the wait the node reads the missing offsets from the engine's history (at most
 *   `batch`) and delivers them, then what it held. Offsets history no longer has (trimmed,
 *   expired) are skipped: positioned subscribers see the gap and recover, as after any loss;
 * - an offset at or below the last delivered one (it came after its gap was filled from
 *   history) is dropped, so each offset reaches the node at most once;
 * - the position after subscribe is the stream's top, read from history when the node
 *   subscribes (`startAt`), so the first publication is delivered at once; until that read
 *   answers (or when it fails), the first publication sets the position: offset 1 at once, a
 *   later one after `waitMs`, with whatever arrived below it meanwhile;
 * - a new epoch (the engine lost the stream) starts over as after subscribe; late messages of
 *   the epochs it left are dropped.
 *
 * Publications without history (offset 0), joins and leaves are not numbered and bypass it.
 *
 * @module
 */
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import type { Publication, StreamPosition } from '../protocol/types.js';
import type { HistoryResult } from './broker.js';

/** ChannelOrderDeps are what one channel's order needs from its broker. */
export interface ChannelOrderDeps {
  /** Hands one publication to the node's handler (`prev`: its predecessor, for delta). */
  deliver(pub: Publication, epoch: string, prev: Publication | undefined): void;
  /** Reads up to `limit` publications after `since` from the engine's history. */
  read(since: StreamPosition, limit: number): Promise<HistoryResult>;
  onError(err: unknown): void;
  /** Longest wait for a missing offset before reading history (ms). */
  waitMs: number;
  /** Most publications one history read fetches. */
  batch: number;
  /** Counts what the order had to do, shared by a broker's channels (tests, docs/NATS.md). */
  stats?: OrderStats;
}

/** OrderStats count the work of keeping order. */
export interface OrderStats {
  /** Gaps waited for: a publication arrived before a lower offset. */
  waits: number;
  /** History reads after a wait ran out. */
  reads: number;
  /** Publications delivered from history (never arrived over the fan-out in time). */
  filled: number;
  /** Late or repeated publications dropped (their offset was already delivered or skipped). */
  dropped: number;
}

interface Held {
  pub: Publication;
  delta: boolean;
}

/** How many left epochs a channel remembers, to drop their late messages. */
const RETIRED_EPOCHS = 4;

/** ChannelOrder is one subscribed channel's order on one node; see the module comment. */
export class ChannelOrder {
  #epoch = '';
  /** False until the first publication (of this epoch) set the position. */
  #known = false;
  #last = 0;
  #lastPub: Publication | undefined;
  readonly #held = new Map<number, Held>();
  readonly #retired: string[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #reading = false;
  #closed = false;

  constructor(private readonly deps: ChannelOrderDeps) {}

  /** held is how many publications wait for a missing offset (for tests and metrics). */
  get held(): number {
    return this.#held.size;
  }

  /** receive takes one numbered publication from the fan-out. */
  receive(pub: Publication, epoch: string, delta: boolean): void {
    if (this.#closed) return;
    if (epoch !== this.#epoch) {
      if (this.#retired.includes(epoch)) return;
      if (this.#epoch !== '') this.#newEpoch(epoch);
      else this.#epoch = epoch;
    }
    if (this.#known && pub.offset <= this.#last) {
      if (this.deps.stats) this.deps.stats.dropped++;
      return;
    }
    this.#held.set(pub.offset, { pub, delta });
    if (!this.#known && pub.offset === 1) this.#known = true;
    if (this.#reading) return;
    this.#drain();
  }

  /**
   * startAt sets the position from the stream's top as history answered it at subscribe: what
   * is at or below it was published before this node subscribed (its subscribers read their own
   * positions from history), so the next offset is delivered at once instead of after a wait.
   * Ignored once a position is known, or for another epoch than what already arrived.
   */
  startAt(top: StreamPosition): void {
    if (this.#closed || this.#known || top.epoch === '') return;
    if (this.#epoch !== '' && this.#epoch !== top.epoch) return;
    this.#epoch = top.epoch;
    this.#known = true;
    this.#last = top.offset;
    for (const offset of [...this.#held.keys()]) if (offset <= top.offset) this.#held.delete(offset);
    if (!this.#reading) this.#drain();
  }

  /** close stops delivery and the timer (unsubscribe). */
  close(): void {
    this.#closed = true;
    this.#clearTimer();
    this.#held.clear();
  }

  /** #newEpoch delivers what the old epoch held, in order, then starts over in `epoch`. */
  #newEpoch(epoch: string): void {
    this.#clearTimer();
    for (const offset of [...this.#held.keys()].sort((a, b) => a - b)) this.#emit(this.#held.get(offset)!);
    this.#held.clear();
    this.#retired.push(this.#epoch);
    if (this.#retired.length > RETIRED_EPOCHS) this.#retired.shift();
    this.#epoch = epoch;
    this.#known = false;
    this.#last = 0;
    this.#lastPub = undefined;
  }

  /** #drain delivers the held run that continues the last offset, and waits for any gap after it. */
  #drain(): void {
    if (this.#known) {
      for (let next = this.#held.get(this.#last + 1); next !== undefined; next = this.#held.get(this.#last + 1)) {
        this.#held.delete(next.pub.offset);
        this.#emit(next);
      }
    }
    if (this.#held.size === 0) this.#clearTimer();
    else if (this.#timer === undefined) {
      if (this.deps.stats) this.deps.stats.waits++;
      this.#timer = setTimeout(() => this.#waited(), this.deps.waitMs);
      this.#timer.unref?.();
    }
  }

  /** #waited runs when a gap outlived the wait: set the position, or read the gap from history. */
  #waited(): void {
    this.#timer = undefined;
    if (this.#closed || this.#held.size === 0) return;
    if (!this.#known) {
      // What came before the first publication we saw was published before the subscription.
      this.#known = true;
      this.#last = Math.min(...this.#held.keys()) - 1;
      this.#drain();
      return;
    }
    void this.#fill();
  }

  /** #fill reads the missing offsets from history, delivers them, then what was held. */
  async #fill(): Promise<void> {
    this.#reading = true;
    if (this.deps.stats) this.deps.stats.reads++;
    const epoch = this.#epoch;
    try {
      const page = await this.deps.read({ offset: this.#last, epoch }, this.deps.batch);
      if (this.#closed || this.#epoch !== epoch) return;
      for (const pub of page.publications) {
        if (pub.offset <= this.#last) continue;
        const held = this.#held.get(pub.offset);
        this.#held.delete(pub.offset);
        if (held === undefined && this.deps.stats) this.deps.stats.filled++;
        // A publication read from history carries no delta flag: it goes without `prev`
        // (subscribers get its full data), unless it was also held.
        this.#emit(held ?? { pub, delta: false });
      }
    } catch (err) {
      if (!(err instanceof ProtocolError && err.code === ErrorCode.UnrecoverablePosition)) this.deps.onError(err);
    } finally {
      this.#reading = false;
    }
    if (this.#closed) return;
    // Whatever history could not give is gone: skip to the lowest held offset.
    if (this.#epoch === epoch && this.#held.size > 0 && !this.#held.has(this.#last + 1)) {
      this.#last = Math.min(...this.#held.keys()) - 1;
    }
    this.#drain();
  }

  #emit(held: Held): void {
    const { pub } = held;
    const prev = held.delta && this.#lastPub?.offset === pub.offset - 1 ? this.#lastPub : undefined;
    this.#last = pub.offset;
    this.#lastPub = pub;
    try {
      this.deps.deliver(pub, this.#epoch, prev);
    } catch (err) {
      this.deps.onError(err);
    }
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
