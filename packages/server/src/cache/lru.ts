/**
 * A bounded least-recently-used map, so a cache of backend answers cannot grow with the
 * number of distinct keys clients ask for (a client can invent keys; memory is not infinite).
 *
 * A JavaScript Map iterates in insertion order, so deleting and re-inserting a key on every
 * read keeps the least recently used key first: eviction takes the first key, in O(1).
 *
 * @module
 */

/** LruCache holds at most `maxEntries` entries, evicting the least recently used first. Values must not be undefined. */
export class LruCache<K, V> {
  readonly #map = new Map<K, V>();
  readonly #maxEntries: number;
  #evictions = 0;

  /** Throws a TypeError unless `maxEntries` is an integer ≥ 1. */
  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new TypeError(`lru: maxEntries must be an integer ≥ 1 (got ${maxEntries})`);
    }
    this.#maxEntries = maxEntries;
  }

  /** size is the number of entries held. */
  get size(): number {
    return this.#map.size;
  }

  /** evictions counts entries dropped to make room since creation. */
  get evictions(): number {
    return this.#evictions;
  }

  /** get returns the value of `key` and marks it most recently used. */
  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value === undefined) return undefined;
    this.#map.delete(key);
    this.#map.set(key, value);
    return value;
  }

  /** peek returns the value of `key` without changing its recency. */
  peek(key: K): V | undefined {
    return this.#map.get(key);
  }

  /** set stores `value` as the most recently used entry, evicting the least recently used one if full. */
  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#maxEntries) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) {
        this.#map.delete(oldest.value);
        this.#evictions++;
      }
    }
  }

  /** delete removes `key`; returns whether it was there. */
  delete(key: K): boolean {
    return this.#map.delete(key);
  }
}
