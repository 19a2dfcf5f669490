/**
 * MapChannel: one map channel of the memory map broker — its entries, its change stream and
 * its position — and the reads over them (a state page, a stream page). Conditions, expiry and
 * delivery are the broker's (map-broker-memory.ts); this file only keeps the data consistent.
 *
 * State pages walk the keys in UTF-8 byte order (Unicode code point order, the order of the
 * Redis map broker's ZRANGEBYLEX, so both engines page alike; JavaScript's default string order
 * compares UTF-16 code units and differs for characters above U+FFFF), the cursor being the
 * last key served: a key
 * written between two pages is served on a later page when it sorts after the cursor, and its
 * change is in the stream (or, for ephemeral maps, in the subscriber's buffer) either way, so
 * a subscriber that applies state then changes converges on the same map.
 *
 * @module
 */
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import type { Publication, StreamPosition } from '../protocol/types.js';
import type { QueueEntry } from './deadline-queue.js';
import type { MapRetention, MapStatePage, MapStreamPage, MapStreamQuery } from './map-broker.js';

/** MapEntry is one key of a map channel: its current value as a publication, and its expiry. */
export interface MapEntry {
  readonly channel: MapChannel;
  readonly key: string;
  /** The last write of the key (data, info, tags, score, offset of the change). */
  pub: Publication;
  version: number;
  versionEpoch: string;
  /** When the key expires (Infinity: never). */
  expireAt: number;
  queued: QueueEntry<MapEntry> | undefined;
}

/** StreamItem is a change in the stream, with when it was made (for stream_ttl). */
interface StreamItem {
  readonly pub: Publication;
  readonly at: number;
}

/** MapChannel is one channel's entries, stream and position. */
export class MapChannel {
  readonly entries = new Map<string, MapEntry>();
  /** Offset of the last change in this epoch (0: none, or a channel without a stream). */
  top = 0;
  /** When an empty channel is forgotten. */
  metaExpireAt = 0;
  /** The retention of the last write, which expiry uses for the removals it makes. */
  retention: MapRetention | undefined;
  queued: QueueEntry<MapChannel> | undefined;
  #stream: StreamItem[] = [];
  #head = 0;
  /** The keys sorted, for paging; undefined until a page needs them after a key came or went. */
  #sorted: string[] | undefined;

  constructor(
    readonly name: string,
    readonly epoch: string,
  ) {}

  /** position is the channel's stream position now. */
  position(): StreamPosition {
    return { offset: this.top, epoch: this.epoch };
  }

  /** keysChanged drops the sorted key cache (a key was added or removed, not just updated). */
  keysChanged(): void {
    this.#sorted = undefined;
  }

  /** append adds a change to the stream, trimming it to `size` changes and `ttlMs` of age. */
  append(pub: Publication, now: number, size: number, ttlMs: number): void {
    this.#stream.push({ pub, at: now });
    this.trim(now, size, ttlMs);
  }

  /** trim drops the changes beyond the newest `size` and those older than `ttlMs`. */
  trim(now: number, size: number, ttlMs: number): void {
    const items = this.#stream;
    while (this.#head < items.length) {
      const item = items[this.#head] as StreamItem;
      if (items.length - this.#head > size || item.at + ttlMs <= now) this.#head++;
      else break;
    }
    if (this.#head > 32 && this.#head * 2 >= items.length) {
      this.#stream = items.slice(this.#head);
      this.#head = 0;
    }
  }

  /** clearStream forgets every change (the channel is cleared). */
  clearStream(): void {
    this.#stream = [];
    this.#head = 0;
  }

  /** statePage reads up to `limit` entries after `cursor` (or the one `key`) in key order. */
  statePage(cursor: string, limit: number, key: string | undefined): MapStatePage {
    const pos = this.position();
    if (key !== undefined) {
      const e = this.entries.get(key);
      return { ...pos, entries: e === undefined ? [] : [e.pub], cursor: '' };
    }
    const sorted = (this.#sorted ??= [...this.entries.keys()].sort(compareKeys));
    let i = cursor === '' ? 0 : upperBound(sorted, cursor);
    const entries: Publication[] = [];
    for (; i < sorted.length && entries.length < limit; i++) {
      const e = this.entries.get(sorted[i] as string);
      if (e !== undefined) entries.push(e.pub);
    }
    return { ...pos, entries, cursor: i < sorted.length ? (sorted[i - 1] ?? '') : '' };
  }

  /**
   * streamPage reads changes as broker.ts's history does: forward after `since` (oldest
   * first), or reverse before it (newest first). A `since` in another epoch, or older than the
   * oldest change kept (its successor is gone), is unrecoverable (112).
   */
  streamPage(query: MapStreamQuery): MapStreamPage {
    const pos = this.position();
    if (query.limit === 0) {
      if (query.since !== undefined) this.#checkSince(query.since);
      return { ...pos, publications: [] };
    }
    const kept = this.#stream.slice(this.#head).map((i) => i.pub);
    const max = query.limit < 0 ? Infinity : query.limit;
    if (query.reverse) {
      const before =
        query.since === undefined ? kept : kept.filter((p) => p.offset < (query.since as StreamPosition).offset);
      if (query.since !== undefined && query.since.epoch !== '' && query.since.epoch !== this.epoch) unrecoverable();
      return { ...pos, publications: before.slice(Math.max(0, before.length - max)).reverse() };
    }
    if (query.since !== undefined) this.#checkSince(query.since);
    const from = query.since?.offset ?? 0;
    const after = kept.filter((p) => p.offset > from);
    return { ...pos, publications: after.slice(0, max) };
  }

  #checkSince(since: StreamPosition): void {
    if (since.epoch !== '' && since.epoch !== this.epoch) unrecoverable();
    if (since.offset > this.top) unrecoverable();
    if (since.offset === this.top) return;
    // The next change the reader needs must still be kept.
    const oldest = this.#stream[this.#head];
    if (oldest === undefined || oldest.pub.offset > since.offset + 1) unrecoverable();
  }
}

function unrecoverable(): never {
  throw new ProtocolError(ErrorCode.UnrecoverablePosition);
}

/** upperBound is the index of the first key in `sorted` greater than `key`. */
function upperBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(sorted[mid] as string, key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * compareKeys orders strings by code point (= UTF-8 byte order): UTF-16 code units compare
 * alike except surrogates (U+D800–U+DFFF, halves of characters above U+FFFF), which must sort
 * after U+E000–U+FFFF; shifting the code units ≥ U+D800 fixes that.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800) x += x >= 0xe000 ? -0x800 : 0x2000;
    if (y >= 0xd800) y += y >= 0xe000 ? -0x800 : 0x2000;
    return x - y;
  }
  return a.length - b.length;
}
