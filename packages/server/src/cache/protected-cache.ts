/**
 * The protected cache in front of the game's backend (incident 2: after a deploy, 50 servers
 * each missing on 3k stickers would have sent 150k queries to a database tuned for 2k/s).
 * Every way a cache in front of an origin turns a burst of traffic into a burst of origin
 * calls is closed here:
 *
 * - **single flight**: concurrent misses for one key make one load; the others wait for it
 *   and share its answer (counted as `coalesced`);
 * - **TTL jitter**: each expiry is moved by up to ± `jitter` × TTL, so keys loaded together
 *   (a cold start) do not all expire, and reload, together;
 * - **negative caching**: "not found" and "denied" are answers too, cached with their own TTL,
 *   so a client asking again and again for something that does not exist does not reach the
 *   origin every time;
 * - **stale-while-revalidate**: just after expiry, the old answer is served at once while one
 *   background load refreshes it, so a hot key never makes its callers wait;
 * - **stale-if-error**: when a load fails and the old answer expired not too long ago, it is
 *   served instead of the error (an origin outage degrades freshness, not availability);
 * - **bounded size**: an LRU of `maxEntries`;
 * - an optional **shared tier** ({@link SharedTier}, e.g. redis-tier.ts) consulted on a local
 *   miss, so a cold cluster of M nodes loads each key about once, not M times.
 *
 * The windows apply alike to values and negative answers. Errors are never cached: a failed
 * load is retried by the next miss (the circuit breaker of the load's ProtectedTarget is what
 * keeps a failing origin from being hammered).
 *
 * @module
 */
import { setMaxListeners } from 'node:events';
import { LruCache } from './lru.js';

/** NegativeReason says why there is no value: the origin has none, or refuses it to this caller. */
export type NegativeReason = 'not_found' | 'denied';

/** CacheAnswer is an origin's answer: a value, or a negative answer. */
export type CacheAnswer<V> =
  { readonly kind: 'value'; readonly value: V } | { readonly kind: 'negative'; readonly reason: NegativeReason };

/** LoadResult is what a load returns: an answer, optionally with its own TTL (ms) instead of the default. */
export type LoadResult<V> = CacheAnswer<V> & { readonly ttlMs?: number };

/** Loader loads the answer for `key` from the origin; `signal` aborts when the cache is closed. */
export type Loader<V> = (key: string, signal?: AbortSignal) => Promise<LoadResult<V>>;

/** found builds a value result, with an optional TTL (ms) in place of the cache's `ttlMs`. */
export function found<V>(value: V, ttlMs?: number): LoadResult<V> {
  return ttlMs === undefined ? { kind: 'value', value } : { kind: 'value', value, ttlMs };
}

/** negative builds a negative result, with an optional TTL (ms) in place of the cache's `negativeTtlMs`. */
export function negative(reason: NegativeReason, ttlMs?: number): LoadResult<never> {
  return ttlMs === undefined ? { kind: 'negative', reason } : { kind: 'negative', reason, ttlMs };
}

/**
 * StoredAnswer is an answer with its absolute expiry (ms since the epoch), as kept locally,
 * shared, and given to callers (for whom an expiry in the past means a stale answer).
 */
export type StoredAnswer<V> = CacheAnswer<V> & { readonly expiresAt: number };

/**
 * SharedTier is a cache shared by the nodes of a cluster, consulted on a local miss.
 *
 * Contract: `fetch` resolves with the key's answer from the shared tier if it holds one that
 * has not expired; otherwise it calls `load` (which calls the origin and stamps the expiry),
 * stores the result for the other nodes and resolves with it. Across the cluster, it should
 * let only one node load a key at a time while the others wait for its answer. It rejects
 * only when `load` does, or when `signal` aborts: a failure of the tier itself falls back to
 * `load`, because a shared cache being down must not take the origin's answers down with it.
 */
export interface SharedTier<V> {
  fetch(key: string, load: () => Promise<StoredAnswer<V>>, signal: AbortSignal): Promise<StoredAnswer<V>>;
  /** Monotonic counters for metrics (numbers by name), when the tier keeps any. */
  stats?(): object;
}

/** ProtectedCacheOptions tunes a {@link ProtectedCache}. */
export interface ProtectedCacheOptions<V> {
  /** TTL of a value when its load gives none (ms). Default: 60000. */
  ttlMs?: number;
  /** TTL of a negative answer when its load gives none (ms). Default: 10000. */
  negativeTtlMs?: number;
  /** Each TTL is multiplied by a random factor in [1 − jitter, 1 + jitter); in [0, 1). Default: 0.1. */
  jitter?: number;
  /** How long after expiry a stale answer is served while one background load refreshes it (ms); 0 turns it off. Default: 10000. */
  staleWhileRevalidateMs?: number;
  /** How long after expiry a stale answer is served when a load fails (ms); 0 turns it off. Default: 300000. */
  staleIfErrorMs?: number;
  /** Most keys held in memory; the least recently used go first. Default: 10000. */
  maxEntries?: number;
  /** Shared tier consulted on a local miss. Default: none (each node loads on its own). */
  shared?: SharedTier<V>;
  /** Wall clock in ms since the epoch (expiries are shared between nodes); injectable for tests. Default: Date.now. */
  now?: () => number;
  /** Random numbers in [0, 1), for the jitter; injectable for tests. Default: Math.random. */
  random?: () => number;
}

/** protectedCacheDefaults are the defaults of {@link ProtectedCacheOptions}. */
export const protectedCacheDefaults = {
  ttlMs: 60_000,
  negativeTtlMs: 10_000,
  jitter: 0.1,
  staleWhileRevalidateMs: 10_000,
  staleIfErrorMs: 300_000,
  maxEntries: 10_000,
} as const;

/** ProtectedCacheStats are monotonic counters (except `size`) for metrics. */
export interface ProtectedCacheStats {
  /** Gets answered from memory with a fresh answer (negative ones included). */
  readonly hits: number;
  /** The part of `hits` that were negative answers. */
  readonly negativeHits: number;
  /** Gets that found no usable answer in memory and waited for a load (coalesced ones included). */
  readonly misses: number;
  /** The part of `misses` that joined a load already running instead of starting one. */
  readonly coalesced: number;
  /** Gets answered with an expired answer: within the SWR window, or after a failed load. */
  readonly staleServes: number;
  /** Calls of the loader, i.e. origin calls made by this node. */
  readonly originCalls: number;
  /** Calls of the loader that failed. */
  readonly originErrors: number;
  /** Entries dropped to stay within `maxEntries`. */
  readonly evictions: number;
  /** Entries held now. */
  readonly size: number;
  /** Loads running now (foreground and background). */
  readonly loading: number;
}

type Counter = Exclude<keyof ProtectedCacheStats, 'evictions' | 'size' | 'loading'>;

/** ProtectedCache is a read-through cache of origin answers; one per kind of answer (RPC method, permission check). */
export class ProtectedCache<V> {
  readonly #ttlMs: number;
  readonly #negativeTtlMs: number;
  readonly #jitter: number;
  readonly #swrMs: number;
  readonly #sieMs: number;
  readonly #shared: SharedTier<V> | undefined;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #lru: LruCache<string, StoredAnswer<V>>;
  /** Loads running now, by key: the single flight. A key is in here for as long as its load runs. */
  readonly #inflight = new Map<string, Promise<StoredAnswer<V>>>();
  /** Aborts every running load on close. */
  readonly #closing = new AbortController();
  readonly #counts: Record<Counter, number> = {
    hits: 0,
    negativeHits: 0,
    misses: 0,
    coalesced: 0,
    staleServes: 0,
    originCalls: 0,
    originErrors: 0,
  };

  /** Throws a TypeError naming a bad option. */
  constructor(options: ProtectedCacheOptions<V> = {}) {
    const d = protectedCacheDefaults;
    this.#ttlMs = nonNegative('ttlMs', options.ttlMs ?? d.ttlMs);
    this.#negativeTtlMs = nonNegative('negativeTtlMs', options.negativeTtlMs ?? d.negativeTtlMs);
    this.#jitter = options.jitter ?? d.jitter;
    if (!(this.#jitter >= 0 && this.#jitter < 1)) {
      throw new TypeError(`protected cache: jitter must be in [0, 1) (got ${this.#jitter})`);
    }
    this.#swrMs = nonNegative('staleWhileRevalidateMs', options.staleWhileRevalidateMs ?? d.staleWhileRevalidateMs);
    this.#sieMs = nonNegative('staleIfErrorMs', options.staleIfErrorMs ?? d.staleIfErrorMs);
    this.#lru = new LruCache(options.maxEntries ?? d.maxEntries);
    this.#shared = options.shared;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    // Every running load listens on this one signal (its fetch does): many listeners is normal here.
    setMaxListeners(0, this.#closing.signal);
  }

  /**
   * get resolves with the answer for `key`: from memory when fresh; stale at once (with a
   * background refresh) within the SWR window; otherwise from a load, shared with every
   * concurrent get of the key. When the load fails, it resolves with the stale answer if that
   * expired within the SIE window, else rejects with the load's error.
   *
   * `load` is called only when needed and at most once at a time per key; it should be
   * bounded in time (make it a ProtectedTarget call): its waiters wait for it. Values must
   * survive JSON when a shared tier is used.
   */
  async get(key: string, load: Loader<V>): Promise<StoredAnswer<V>> {
    const now = this.#now();
    const entry = this.#lru.get(key);
    if (entry !== undefined) {
      if (now < entry.expiresAt) {
        this.#counts.hits++;
        if (entry.kind === 'negative') this.#counts.negativeHits++;
        return entry;
      }
      if (now < entry.expiresAt + this.#swrMs) {
        this.#counts.staleServes++;
        this.#refresh(key, load);
        return entry;
      }
      if (now >= entry.expiresAt + this.#sieMs) this.#lru.delete(key); // too old to serve for any reason
    }
    this.#counts.misses++;
    const running = this.#inflight.get(key);
    if (running !== undefined) this.#counts.coalesced++;
    try {
      return await (running ?? this.#start(key, load));
    } catch (err) {
      const stale = this.#lru.peek(key);
      if (stale !== undefined && this.#now() < stale.expiresAt + this.#sieMs) {
        this.#counts.staleServes++;
        return stale;
      }
      throw err;
    }
  }

  /** stats returns the counters, for metrics. */
  stats(): ProtectedCacheStats {
    return { ...this.#counts, evictions: this.#lru.evictions, size: this.#lru.size, loading: this.#inflight.size };
  }

  /**
   * close aborts every running load (their signals abort, so their HTTP requests are
   * cancelled); gets waiting for them reject, or get a stale answer. Use at shutdown.
   */
  close(): void {
    this.#closing.abort(new Error('protected cache closed'));
  }

  /** refresh starts a background load of `key` unless one is running; its failure leaves the stale entry. */
  #refresh(key: string, load: Loader<V>): void {
    if (this.#inflight.has(key)) return;
    this.#start(key, load).catch(() => {}); // counted in originErrors; the stale entry stays until its windows end
  }

  /** start runs the one load of `key`, registered in the single flight until it settles. */
  #start(key: string, load: Loader<V>): Promise<StoredAnswer<V>> {
    const signal = this.#closing.signal;
    const origin = async (): Promise<StoredAnswer<V>> => {
      this.#counts.originCalls++;
      try {
        return this.#stamp(await load(key, signal));
      } catch (err) {
        this.#counts.originErrors++;
        throw err;
      }
    };
    const flight = (this.#shared === undefined ? origin() : this.#shared.fetch(key, origin, signal))
      .then((stored) => {
        this.#lru.set(key, stored);
        return stored;
      })
      .finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, flight);
    return flight;
  }

  /** stamp turns a load result into a stored answer expiring after its jittered TTL. */
  #stamp(result: LoadResult<V>): StoredAnswer<V> {
    const ttl = result.ttlMs ?? (result.kind === 'value' ? this.#ttlMs : this.#negativeTtlMs);
    const expiresAt = this.#now() + ttl * (1 + this.#jitter * (2 * this.#random() - 1));
    return result.kind === 'value'
      ? { kind: 'value', value: result.value, expiresAt }
      : { kind: 'negative', reason: result.reason, expiresAt };
  }
}

function nonNegative(option: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new TypeError(`protected cache: ${option} must be a non-negative number (got ${value})`);
  }
  return value;
}
