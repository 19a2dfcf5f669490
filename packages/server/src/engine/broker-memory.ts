/**
 * The embedded memory broker: channel streams, history and delivery inside one process. It is
 * the engine of a single-node Bulwark, and the reference behaviour the Redis engine must match
 * (both run the same conformance suite, `test/conformance/broker.case.ts`).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { clearInterval, setInterval } from 'node:timers';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import type { ClientInfo, Publication, RawJSON } from '../protocol/types.js';
import {
  DEFAULT_IDEMPOTENT_RESULT_TTL_MS,
  type Broker,
  type BrokerEventHandler,
  type HistoryQuery,
  type HistoryResult,
  type PublishOptions,
  type PublishResult,
} from './broker.js';
import { DeadlineQueue, type QueueEntry } from './deadline-queue.js';
import { IdempotentResults } from './idempotent-results.js';

/** MemoryBrokerOptions tunes a {@link MemoryBroker}; every field is optional. */
export interface MemoryBrokerOptions {
  /**
   * Clock for expiry, in milliseconds. Defaults to a monotonic clock (`performance.now()`), so
   * wall-clock jumps neither expire positions early nor keep them forever. Tests inject a
   * manual clock here.
   */
  now?: () => number;
  /** Makes a new stream epoch. Defaults to 8 random base64url characters (48 bits). */
  epochFactory?: () => string;
  /** How often expired streams are freed (ms). Defaults to 1000; 0 disables the timer (call `sweep()`). */
  sweepIntervalMs?: number;
  /** Meta TTL used when a publish or history read passes 0 or less (ms). Defaults to 30 days. */
  defaultMetaTtlMs?: number;
  /**
   * Receives an exception thrown by the event handler. Delivery errors never fail a publish:
   * by then the publication is already in history, and a retry would duplicate it. Defaults
   * to `console.error`.
   */
  onHandlerError?: (err: unknown) => void;
}

/** Default meta TTL, as Centrifugo's `channel.history_meta_ttl` (720h). */
const DEFAULT_META_TTL_MS = 720 * 60 * 60 * 1000;

/**
 * Stream is one channel's history stream. Publications hold consecutive offsets
 * `items[head].offset … top`: offsets are assigned as top+1 and only the oldest are dropped,
 * so an offset maps to an index by subtraction, without search.
 */
interface Stream {
  readonly channel: string;
  readonly epoch: string;
  /** Offset of the last publication ever appended in this epoch (0: none yet). */
  top: number;
  /**
   * Retained publications start at `head`. Trimming moves `head` forward instead of shifting
   * the array (O(1) per publish); `compact` reclaims the dead prefix once it is at least half
   * the array, so the cost stays amortised O(1) and memory within ~2× historySize.
   */
  items: Publication[];
  head: number;
  /** When the publications expire (meaningful only while some are retained). */
  historyExpireAt: number;
  /** When the whole stream, position included, expires. Never earlier than historyExpireAt. */
  metaExpireAt: number;
  /** Version of the last publication that carried one (0: none), and its version epoch. */
  version: number;
  versionEpoch: string;
  /**
   * This stream's entry in the expiry queue (undefined: none), moved earlier when a deadline
   * comes sooner (a publish starts the history TTL under a meta TTL of 30 days) and taken out
   * when the stream is dropped; see {@link MemoryBroker.sweep}.
   */
  queued: QueueEntry<Stream> | undefined;
}

/**
 * MemoryBroker implements {@link Broker} in process memory, for a single node.
 *
 * Contract, beyond the Broker interface:
 * - `publish` with historySize > 0 and historyTtlMs > 0 creates the stream if missing (new
 *   random epoch), appends at offset top+1, trims to the newest historySize publications,
 *   sets the publications' expiry to now + historyTtlMs and the position's expiry to
 *   now + historyMetaTtlMs. Otherwise it stores nothing and returns `{offset: 0, epoch: ''}`.
 *   With `delta`, the publication before it (offset top − 1) goes to `onPublication` as `prev`
 *   while history still holds it.
 *   Then, if this node subscribed to the channel, it calls `onPublication` synchronously
 *   inside the call: offset assignment, append and delivery are one step, so concurrent
 *   publishes are delivered in offset order. The promise resolves after delivery.
 * - History TTL: after it passes, the publications are gone but the position (top offset,
 *   epoch) stays until the meta TTL passes; then the stream is gone and the next publish or
 *   history read starts a new epoch at offset 0. An expiry time is never shortened by a later
 *   call with a smaller TTL, and the meta expiry never precedes the history expiry (so
 *   publications never outlive their position). A TTL of 0 or less for meta means
 *   `defaultMetaTtlMs`.
 * - `history` semantics (after centrifuge's memory engine, with an explicit `since` check):
 *   limit 0 returns no publications, only the position; limit < 0 means no limit. Forward
 *   returns, oldest first, the first `limit` retained publications with offset > since.offset
 *   (from the oldest retained one without `since`). Reverse returns, newest first, the
 *   `limit` newest retained publications with offset < since.offset (all retained ones
 *   without `since`). A `since` whose epoch is not '' and differs from the stream's throws
 *   ProtocolError 112 (UnrecoverablePosition); an epoch of '' skips the check.
 * - Idempotency keys are remembered per channel for `idempotentResultTtlMs` (default 5 min)
 *   from the first publish; versions live in the stream's position, so they expire with it.
 * - `removeHistory` drops the publications but keeps the position, as Centrifugo's
 *   `history_remove` does: offsets continue from the same top in the same epoch.
 * - subscribe/unsubscribe are idempotent (a set, not a reference count: the caller counts
 *   its subscribers). Join/leave are delivered synchronously to a subscribed node; control
 *   messages are delivered to this node on a later microtask, before the promise resolves.
 * - Publications handed out (delivered or read) are shared, and the engine never mutates
 *   them afterwards; callers must treat them as read-only. `info` and `tags` are copied at
 *   publish time, so the publisher may reuse its objects.
 * - `close` stops the sweep timer and forgets all state and subscriptions.
 */
export class MemoryBroker implements Broker {
  private readonly now: () => number;
  private readonly newEpoch: () => string;
  private readonly defaultMetaTtlMs: number;
  private readonly onHandlerError: (err: unknown) => void;
  private readonly streams = new Map<string, Stream>();
  private readonly subscribed = new Set<string>();
  private readonly expiry = new DeadlineQueue<Stream>();
  private readonly results = new IdempotentResults();
  private handler: BrokerEventHandler | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: MemoryBrokerOptions = {}) {
    this.now = options.now ?? (() => performance.now());
    this.newEpoch = options.epochFactory ?? (() => randomBytes(6).toString('base64url'));
    this.defaultMetaTtlMs = options.defaultMetaTtlMs ?? DEFAULT_META_TTL_MS;
    this.onHandlerError = options.onHandlerError ?? ((err) => console.error('bulwark: broker event handler', err));
    const interval = options.sweepIntervalMs ?? 1000;
    if (interval > 0) {
      this.timer = setInterval(() => this.sweep(), interval);
      this.timer.unref();
    }
  }

  /** size is the number of channel streams held (positions included), for metrics and tests. */
  get size(): number {
    return this.streams.size;
  }

  /** queuedDeadlines is the number of entries in the expiry queue (≤ size; for tests). */
  get queuedDeadlines(): number {
    return this.expiry.size;
  }

  /** start makes the broker deliver to `handler` from now on. */
  async start(handler: BrokerEventHandler): Promise<void> {
    this.handler = handler;
  }

  /** subscribe makes this node receive the channel's publications and join/leave events. */
  async subscribe(channel: string): Promise<void> {
    this.subscribed.add(channel);
  }

  /** unsubscribe stops delivery of the channel to this node. */
  async unsubscribe(channel: string): Promise<void> {
    this.subscribed.delete(channel);
  }

  /** publish stores (when history is on) and delivers one publication; see the class contract. */
  async publish(channel: string, data: RawJSON, opts: PublishOptions): Promise<PublishResult> {
    return this.publishNow(channel, data, opts);
  }

  /** publishNow is publish, done within the call (it never waits for anything). */
  publishNow(channel: string, data: RawJSON, opts: PublishOptions): PublishResult {
    const key = opts.idempotencyKey;
    if (key !== undefined && key !== '') {
      const first = this.results.get(channel, key, this.now());
      if (first !== undefined) return { offset: first.offset, epoch: first.epoch, suppressed: 'idempotency' };
    }
    const pub: Publication = { offset: 0, data };
    if (opts.info !== undefined) pub.info = { ...opts.info };
    if (opts.tags !== undefined) pub.tags = { ...opts.tags };
    if (opts.time !== undefined) pub.time = opts.time;
    if (opts.variants !== undefined && opts.variants.length > 0) pub.variants = opts.variants.slice();

    let epoch = '';
    let prev: Publication | undefined;
    const now = this.now();
    if (opts.historySize > 0 && opts.historyTtlMs > 0) {
      const stream = this.live(channel, now) ?? this.create(channel, now);
      const version = opts.version ?? 0;
      if (version > 0) {
        const versionEpoch = opts.versionEpoch ?? '';
        const sameEpoch = versionEpoch === '' || versionEpoch === stream.versionEpoch;
        if (stream.version > 0 && sameEpoch && stream.version >= version) {
          return { offset: stream.top, epoch: stream.epoch, suppressed: 'version' };
        }
        stream.version = version;
        stream.versionEpoch = versionEpoch;
      }
      // live() dropped expired history: what is left is still held, and its last is the top.
      if (opts.delta && stream.items.length > stream.head) prev = stream.items[stream.items.length - 1];
      pub.offset = ++stream.top;
      stream.items.push(pub);
      const excess = stream.items.length - stream.head - opts.historySize;
      if (excess > 0) {
        stream.head += excess;
        compact(stream);
      }
      stream.historyExpireAt = Math.max(stream.historyExpireAt, now + opts.historyTtlMs);
      stream.metaExpireAt = Math.max(
        stream.metaExpireAt,
        now + this.metaTtl(opts.historyMetaTtlMs),
        stream.historyExpireAt,
      );
      this.schedule(stream);
      epoch = stream.epoch;
    }
    // Remembered before delivery: a handler that throws must not let a retry publish again.
    if (key !== undefined && key !== '') {
      const ttl = opts.idempotentResultTtlMs ?? DEFAULT_IDEMPOTENT_RESULT_TTL_MS;
      this.results.remember(channel, key, { offset: pub.offset, epoch }, now, ttl);
    }

    if (this.handler !== undefined && this.subscribed.has(channel)) {
      try {
        this.handler.onPublication(channel, pub, epoch, prev);
      } catch (err) {
        this.onHandlerError(err);
      }
    }
    return { offset: pub.offset, epoch };
  }

  /** publishJoin delivers a join event to this node if it subscribed to the channel. */
  async publishJoin(channel: string, info: ClientInfo): Promise<void> {
    if (this.handler === undefined || !this.subscribed.has(channel)) return;
    try {
      this.handler.onJoin(channel, info);
    } catch (err) {
      this.onHandlerError(err);
    }
  }

  /** publishLeave delivers a leave event to this node if it subscribed to the channel. */
  async publishLeave(channel: string, info: ClientInfo): Promise<void> {
    if (this.handler === undefined || !this.subscribed.has(channel)) return;
    try {
      this.handler.onLeave(channel, info);
    } catch (err) {
      this.onHandlerError(err);
    }
  }

  /** publishControl delivers a control message to this node (the only node) on a later microtask. */
  async publishControl(data: RawJSON): Promise<void> {
    // Why a microtask: a control message usually acts on this node's own state (disconnect a
    // user, unsubscribe a channel), and must not run re-entrantly inside the caller's stack.
    await Promise.resolve();
    if (this.handler === undefined) return;
    try {
      this.handler.onControl(data);
    } catch (err) {
      this.onHandlerError(err);
    }
  }

  /** history reads a channel stream, creating its position if missing; see the class contract. */
  async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    const now = this.now();
    const stream = this.live(channel, now) ?? this.create(channel, now);
    stream.metaExpireAt = Math.max(stream.metaExpireAt, now + this.metaTtl(query.metaTtlMs));
    this.schedule(stream);

    const since = query.since;
    if (since !== undefined && since.epoch !== '' && since.epoch !== stream.epoch) {
      throw new ProtocolError(ErrorCode.UnrecoverablePosition);
    }
    return { publications: select(stream, query), offset: stream.top, epoch: stream.epoch };
  }

  /** removeHistory drops a channel's publications and keeps its position (top offset, epoch). */
  async removeHistory(channel: string): Promise<void> {
    const stream = this.live(channel, this.now());
    if (stream === undefined) return;
    stream.items = [];
    stream.head = 0;
  }

  /** close stops the sweep timer and forgets every stream, subscription and the handler. */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.handler = undefined;
    this.subscribed.clear();
    this.streams.clear();
    this.expiry.clear();
    this.results.clear();
  }

  /**
   * sweep frees what has expired: streams past their meta TTL are deleted, and publications
   * past their history TTL are dropped. The timer calls it; tests with an injected clock call
   * it directly. Cost is O(log n) per due stream, never a scan of all streams.
   */
  sweep(): void {
    const now = this.now();
    this.results.sweep(now);
    for (let due = this.expiry.popDue(now); due !== undefined; due = this.expiry.popDue(now)) {
      const stream = due.item;
      stream.queued = undefined;
      if (this.live(stream.channel, now) === stream) this.schedule(stream);
    }
  }

  /** live returns the channel's stream after applying lazy expiry, or undefined if none. */
  private live(channel: string, now: number): Stream | undefined {
    const stream = this.streams.get(channel);
    if (stream === undefined) return undefined;
    if (now > stream.metaExpireAt) {
      this.streams.delete(channel);
      if (stream.queued !== undefined) this.expiry.remove(stream.queued);
      stream.queued = undefined;
      return undefined;
    }
    if (stream.head < stream.items.length && now > stream.historyExpireAt) {
      stream.items = [];
      stream.head = 0;
    }
    return stream;
  }

  private create(channel: string, now: number): Stream {
    const stream: Stream = {
      channel,
      epoch: this.newEpoch(),
      top: 0,
      items: [],
      head: 0,
      historyExpireAt: now,
      metaExpireAt: now,
      version: 0,
      versionEpoch: '',
      queued: undefined,
    };
    this.streams.set(channel, stream);
    return stream;
  }

  /**
   * schedule makes sure the expiry queue will look at the stream by its next deadline, with
   * one entry per stream. Later deadlines leave the entry: it pops early, finds nothing
   * expired, and is queued again (at most once per TTL period), which keeps the publish path
   * free of heap work.
   */
  private schedule(stream: Stream): void {
    const deadline = stream.head < stream.items.length ? stream.historyExpireAt : stream.metaExpireAt;
    if (stream.queued === undefined) stream.queued = this.expiry.push(deadline, stream);
    else if (deadline < stream.queued.at) this.expiry.reschedule(stream.queued, deadline);
  }

  private metaTtl(ttlMs: number): number {
    return ttlMs > 0 ? ttlMs : this.defaultMetaTtlMs;
  }
}

/** compact drops the trimmed prefix once it is at least half the array (amortised O(1)). */
function compact(stream: Stream): void {
  const { items, head } = stream;
  if (head >= 32 && head * 2 >= items.length) {
    items.copyWithin(0, head);
    items.length -= head;
    stream.head = 0;
  }
}

/** select returns the publications a history query asks for, as a new array. */
function select(stream: Stream, query: HistoryQuery): Publication[] {
  const { items, head } = stream;
  const retained = items.length - head;
  if (query.limit === 0 || retained === 0) return [];
  const limit = query.limit < 0 ? Infinity : query.limit;
  // Offsets are consecutive, so offset o sits at index head + (o - first).
  const first = items[head]!.offset;
  const since = query.since === undefined ? undefined : Math.floor(query.since.offset);

  if (!query.reverse) {
    const from = head + Math.max(0, since === undefined ? 0 : since + 1 - first);
    return items.slice(from, Math.min(items.length, from + limit));
  }
  // Reverse: newest first, offsets below since (exclusive).
  const to = since === undefined ? items.length : head + Math.min(retained, Math.max(0, since - first));
  const out: Publication[] = [];
  for (let i = to - 1; i >= head && out.length < limit; i--) out.push(items[i]!);
  return out;
}
