/**
 * IdempotentResults: the memory engine's record of recent publishes made with an idempotency
 * key, so that a repeat of the same key on the same channel is answered with the first
 * publish's position instead of being published again. Entries expire after their TTL; the
 * sweep frees them in deadline order, never by scanning the whole map.
 *
 * @module
 */
import type { StreamPosition } from '../protocol/types.js';
import { DeadlineQueue } from './deadline-queue.js';

/** An entry: the first result, and the key it is filed under (for the sweep). */
interface Entry {
  readonly key: string;
  readonly position: StreamPosition;
  readonly expireAt: number;
}

/** IdempotentResults maps (channel, idempotency key) to the position its first publish got. */
export class IdempotentResults {
  readonly #entries = new Map<string, Entry>();
  readonly #expiry = new DeadlineQueue<Entry>();

  /** size is the number of remembered results (expired ones not yet swept included). */
  get size(): number {
    return this.#entries.size;
  }

  /** get returns the remembered position of `key` on `channel`, unless it expired by `now`. */
  get(channel: string, key: string, now: number): StreamPosition | undefined {
    const entry = this.#entries.get(entryKey(channel, key));
    return entry !== undefined && entry.expireAt > now ? entry.position : undefined;
  }

  /** remember files the position of a publish until `now + ttlMs`. */
  remember(channel: string, key: string, position: StreamPosition, now: number, ttlMs: number): void {
    const k = entryKey(channel, key);
    const entry: Entry = {
      key: k,
      position: { offset: position.offset, epoch: position.epoch },
      expireAt: now + ttlMs,
    };
    // A key seen again after its expiry replaces the old entry; the old queue entry, when it
    // pops, finds a different object in the map and leaves it alone.
    this.#entries.set(k, entry);
    this.#expiry.push(entry.expireAt, entry);
  }

  /** sweep forgets the entries that expired by `now`. */
  sweep(now: number): void {
    for (let due = this.#expiry.popDue(now); due !== undefined; due = this.#expiry.popDue(now)) {
      if (this.#entries.get(due.item.key) === due.item) this.#entries.delete(due.item.key);
    }
  }

  /** clear forgets everything. */
  clear(): void {
    this.#entries.clear();
    this.#expiry.clear();
  }
}

/**
 * entryKey joins channel and key with a NUL, which neither can be confused around: a channel
 * containing NUL would make "a\0b" + "c" equal "a" + "b\0c", so channels are length-prefixed.
 */
function entryKey(channel: string, key: string): string {
  return `${channel.length}:${channel}\u0000${key}`;
}
