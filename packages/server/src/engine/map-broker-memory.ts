/**
 * The memory map broker: map channels (state, change stream, position) inside one process. It
 * is the map engine of a single-node Bulwark and the reference behaviour the Redis and
 * PostgreSQL map brokers must match (all run `test/conformance/map.case.ts`).
 *
 * Every write is synchronous from the conditions to the delivery: the checks (idempotency,
 * expected position, key mode, version, key limit), the state change, the stream append and
 * the delivery to this node's subscribers happen in one call, so concurrent writes are
 * applied, numbered and delivered in one order, and of two `if_new` writes of a key exactly
 * one wins.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import type { Publication, RawJSON } from '../protocol/types.js';
import { DEFAULT_IDEMPOTENT_RESULT_TTL_MS, type BrokerEventHandler } from './broker.js';
import { DeadlineQueue } from './deadline-queue.js';
import { IdempotentResults } from './idempotent-results.js';
import {
  MapLimitError,
  type MapBroker,
  type MapPublishOptions,
  type MapRemoveOptions,
  type MapRetention,
  type MapStatePage,
  type MapStateQuery,
  type MapStreamPage,
  type MapStreamQuery,
  type MapUpdateResult,
} from './map-broker.js';
import { MapChannel, type MapEntry } from './map-channel.js';

/** MemoryMapBrokerOptions tunes a {@link MemoryMapBroker}; every field is optional. */
export interface MemoryMapBrokerOptions {
  /** Clock in ms (monotonic by default); tests inject a manual one. */
  now?: () => number;
  /** How often expired keys and channels are swept (ms); default 1000; 0 disables the timer (call `sweep()`). */
  sweepIntervalMs?: number;
  /** Receives an exception thrown by the event handler (a write never fails for it). */
  onHandlerError?: (err: unknown) => void;
}

/** MemoryMapBroker implements {@link MapBroker} in process memory. */
export class MemoryMapBroker implements MapBroker {
  readonly #channels = new Map<string, MapChannel>();
  readonly #subscribed = new Set<string>();
  readonly #keyExpiry = new DeadlineQueue<MapEntry>();
  readonly #channelExpiry = new DeadlineQueue<MapChannel>();
  readonly #idempotent = new IdempotentResults();
  readonly #now: () => number;
  readonly #onHandlerError: (err: unknown) => void;
  readonly #sweepIntervalMs: number;
  #handler: BrokerEventHandler | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: MemoryMapBrokerOptions = {}) {
    this.#now = opts.now ?? (() => performance.now());
    this.#onHandlerError = opts.onHandlerError ?? ((err) => console.error(err));
    this.#sweepIntervalMs = opts.sweepIntervalMs ?? 1000;
  }

  start(handler: BrokerEventHandler): Promise<void> {
    this.#handler = handler;
    if (this.#sweepIntervalMs > 0) {
      this.#timer = setInterval(() => this.sweep(), this.#sweepIntervalMs);
      this.#timer.unref();
    }
    return Promise.resolve();
  }

  subscribe(channel: string): Promise<void> {
    this.#subscribed.add(channel);
    return Promise.resolve();
  }

  unsubscribe(channel: string): Promise<void> {
    this.#subscribed.delete(channel);
    return Promise.resolve();
  }

  publish(channel: string, key: string, o: MapPublishOptions): Promise<MapUpdateResult> {
    try {
      return Promise.resolve(this.#publish(channel, key, o));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  remove(channel: string, key: string, o: MapRemoveOptions): Promise<MapUpdateResult> {
    try {
      return Promise.resolve(this.#remove(channel, key, o));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  readState(channel: string, q: MapStateQuery): Promise<MapStatePage> {
    const ch = this.#read(channel, q.metaTtlMs);
    return Promise.resolve(ch.statePage(q.cursor, Math.max(1, q.limit), q.key));
  }

  readStream(channel: string, q: MapStreamQuery): Promise<MapStreamPage> {
    const ch = this.#read(channel, q.metaTtlMs);
    try {
      if (ch.retention !== undefined) ch.trim(this.#now(), ch.retention.streamSize, ch.retention.streamTtlMs);
      return Promise.resolve(ch.streamPage(q));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  stats(channel: string): Promise<{ numKeys: number }> {
    return Promise.resolve({ numKeys: this.#live(channel)?.entries.size ?? 0 });
  }

  clear(channel: string): Promise<void> {
    const ch = this.#channels.get(channel);
    if (ch !== undefined) this.#forget(ch);
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#channels.clear();
    this.#subscribed.clear();
    this.#keyExpiry.clear();
    this.#channelExpiry.clear();
    this.#idempotent.clear();
    return Promise.resolve();
  }

  /** sweep removes the keys whose TTL passed (subscribers get the removals) and forgets expired empty channels. */
  sweep(): void {
    const now = this.#now();
    for (let due = this.#keyExpiry.popDue(now); due !== undefined; due = this.#keyExpiry.popDue(now)) {
      const e = due.item;
      e.queued = undefined;
      const ch = e.channel;
      if (ch.entries.get(e.key) !== e || this.#channels.get(ch.name) !== ch) continue;
      this.#removeEntry(ch, e, ch.retention as MapRetention, now, undefined);
    }
    for (let due = this.#channelExpiry.popDue(now); due !== undefined; due = this.#channelExpiry.popDue(now)) {
      const ch = due.item;
      ch.queued = undefined;
      if (this.#channels.get(ch.name) !== ch) continue;
      if (ch.entries.size > 0 || ch.metaExpireAt > now) {
        ch.queued = this.#channelExpiry.push(Math.max(ch.metaExpireAt, now + 1), ch);
        continue;
      }
      this.#forget(ch);
    }
    this.#idempotent.sweep(now);
  }

  /** #live returns the channel, forgetting it first when it is empty and past its meta TTL. */
  #live(channel: string): MapChannel | undefined {
    const ch = this.#channels.get(channel);
    if (ch !== undefined && ch.entries.size === 0 && ch.metaExpireAt <= this.#now()) {
      this.#forget(ch);
      return undefined;
    }
    return ch;
  }

  /**
   * #read returns the channel for a read, creating its position when missing, as a stream's
   * history read does: a subscriber that goes live on a channel nobody wrote yet holds the
   * epoch the first write will carry, instead of losing its place to it.
   */
  #read(channel: string, metaTtlMs: number): MapChannel {
    const ch = this.#channel(channel);
    const until = this.#now() + metaTtlMs;
    if (until > ch.metaExpireAt) ch.metaExpireAt = until;
    if (ch.queued === undefined) ch.queued = this.#channelExpiry.push(ch.metaExpireAt, ch);
    return ch;
  }

  #channel(channel: string): MapChannel {
    let ch = this.#live(channel);
    if (ch === undefined) {
      ch = new MapChannel(channel, randomBytes(6).toString('base64url'));
      this.#channels.set(channel, ch);
    }
    return ch;
  }

  #forget(ch: MapChannel): void {
    this.#channels.delete(ch.name);
    for (const e of ch.entries.values()) if (e.queued) this.#keyExpiry.remove(e.queued);
    if (ch.queued) this.#channelExpiry.remove(ch.queued);
    ch.entries.clear();
    ch.clearStream();
  }

  /** #preconditions answers a write that must not apply (idempotency repeat, expected position missed). */
  #preconditions(ch: MapChannel, o: MapPublishOptions | MapRemoveOptions, now: number): MapUpdateResult | undefined {
    if (o.idempotencyKey !== undefined) {
      const first = this.#idempotent.get(ch.name, o.idempotencyKey, now);
      if (first !== undefined) return { ...first, suppressed: 'idempotency' };
    }
    const exp = o.expectedPosition;
    if (exp !== undefined) {
      if (o.streamSize === 0) {
        throw new ProtocolError(
          ErrorCode.BadRequest,
          'expected_position needs a map with a stream (durable or persistent)',
        );
      }
      if (exp.epoch !== ch.epoch || exp.offset !== ch.top) return { ...ch.position(), suppressed: 'position_mismatch' };
    }
    return undefined;
  }

  #publish(channel: string, key: string, o: MapPublishOptions): MapUpdateResult {
    const now = this.#now();
    const ch = this.#channel(channel);
    const refused = this.#preconditions(ch, o, now);
    if (refused !== undefined) return refused;
    const existing = ch.entries.get(key);
    if (o.keyMode === 'if_new' && existing !== undefined) {
      if (o.refreshTtlOnSuppress === true && o.keyTtlMs > 0) {
        existing.expireAt = now + o.keyTtlMs;
        this.#scheduleKey(existing);
      }
      return { ...ch.position(), suppressed: 'key_exists' };
    }
    if (o.keyMode === 'if_exists' && existing === undefined) return { ...ch.position(), suppressed: 'key_not_found' };
    if (o.ownerUser !== undefined && existing !== undefined && existing.pub.info?.user !== o.ownerUser) {
      return { ...ch.position(), suppressed: 'not_owner' };
    }
    const version = o.version ?? 0;
    const versionEpoch = o.versionEpoch ?? '';
    if (
      version > 0 &&
      existing !== undefined &&
      existing.versionEpoch === versionEpoch &&
      version <= existing.version
    ) {
      return { ...ch.position(), suppressed: 'version' };
    }
    if (existing === undefined && ch.entries.size >= o.maxKeys) throw new MapLimitError(channel, o.maxKeys);
    const pub: Publication = { offset: this.#nextOffset(ch, o), data: o.data, key };
    if (o.info !== undefined) pub.info = { ...o.info };
    if (o.tags !== undefined) pub.tags = { ...o.tags };
    if (o.score !== undefined && o.score !== 0) pub.score = o.score;
    const expireAt = o.keyTtlMs > 0 ? now + o.keyTtlMs : Infinity;
    let e = existing;
    if (e === undefined) {
      e = { channel: ch, key, pub, version, versionEpoch, expireAt, queued: undefined };
      ch.entries.set(key, e);
      ch.keysChanged();
    } else {
      e.pub = pub;
      e.version = version > 0 ? version : e.version;
      e.versionEpoch = version > 0 ? versionEpoch : e.versionEpoch;
      e.expireAt = expireAt;
    }
    this.#scheduleKey(e);
    return this.#changed(ch, pub, o, now);
  }

  #remove(channel: string, key: string, o: MapRemoveOptions): MapUpdateResult {
    const now = this.#now();
    const ch = this.#channel(channel);
    const refused = this.#preconditions(ch, o, now);
    if (refused !== undefined) return refused;
    const e = ch.entries.get(key);
    if (e === undefined) return { ...ch.position(), suppressed: 'key_not_found' };
    if (o.ownerUser !== undefined && e.pub.info?.user !== o.ownerUser)
      return { ...ch.position(), suppressed: 'not_owner' };
    return this.#removeEntry(ch, e, o, now, o);
  }

  #removeEntry(
    ch: MapChannel,
    e: MapEntry,
    retention: MapRetention,
    now: number,
    o: MapRemoveOptions | undefined,
  ): MapUpdateResult {
    ch.entries.delete(e.key);
    ch.keysChanged();
    if (e.queued) this.#keyExpiry.remove(e.queued);
    e.queued = undefined;
    const pub: Publication = {
      offset: this.#nextOffset(ch, retention),
      data: '' as RawJSON,
      key: e.key,
      removed: true,
    };
    if (o?.info !== undefined) pub.info = { ...o.info };
    // The removal carries the entry's tags when it names none, so tags filters let it through.
    const tags = o?.tags ?? e.pub.tags;
    if (tags !== undefined) pub.tags = { ...tags };
    return this.#changed(ch, pub, o ?? retention, now);
  }

  #nextOffset(ch: MapChannel, r: MapRetention): number {
    return r.streamSize > 0 ? ++ch.top : 0;
  }

  /** #changed records a change (stream, position expiry, idempotency) and delivers it. */
  #changed(
    ch: MapChannel,
    pub: Publication,
    o: MapRetention & { idempotencyKey?: string | undefined; idempotentResultTtlMs?: number | undefined },
    now: number,
  ): MapUpdateResult {
    ch.retention = retentionOf(o);
    const size = o.streamSize;
    if (size > 0) ch.append(pub, now, size, o.streamTtlMs);
    ch.metaExpireAt = Math.max(ch.metaExpireAt, now + Math.max(o.metaTtlMs, o.streamTtlMs, o.keyTtlMs));
    if (ch.queued === undefined) ch.queued = this.#channelExpiry.push(ch.metaExpireAt, ch);
    const result = ch.position();
    if (o.idempotencyKey !== undefined) {
      const ttl = o.idempotentResultTtlMs ?? DEFAULT_IDEMPOTENT_RESULT_TTL_MS;
      this.#idempotent.remember(ch.name, o.idempotencyKey, result, now, ttl);
    }
    if (this.#handler !== undefined && this.#subscribed.has(ch.name)) {
      try {
        this.#handler.onPublication(ch.name, pub, ch.epoch);
      } catch (err) {
        this.#onHandlerError(err);
      }
    }
    return result;
  }

  #scheduleKey(e: MapEntry): void {
    if (e.expireAt === Infinity) {
      if (e.queued) this.#keyExpiry.remove(e.queued);
      e.queued = undefined;
    } else if (e.queued) {
      this.#keyExpiry.reschedule(e.queued, e.expireAt);
    } else {
      e.queued = this.#keyExpiry.push(e.expireAt, e);
    }
  }
}

/** retentionOf copies only the retention fields (the channel keeps them for expiry's removals). */
function retentionOf(r: MapRetention): MapRetention {
  return {
    keyTtlMs: r.keyTtlMs,
    streamSize: r.streamSize,
    streamTtlMs: r.streamTtlMs,
    metaTtlMs: r.metaTtlMs,
    maxKeys: r.maxKeys,
  };
}
