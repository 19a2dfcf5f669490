/**
 * The shared tier of the protected cache in Redis (incident 2: 50 servers, each cold after a
 * deploy, would each have loaded the same 3k stickers). With it, a cold cluster of M nodes
 * makes about one origin call per key instead of M:
 *
 * 1. on a local miss, a node runs one script that reads the key and, when it is absent, takes
 *    a short lock in the same step (`SET <key>:lock <token> NX PX lockTtlMs`). Reading and
 *    locking atomically means no node can lock a key whose answer was just written, so a key
 *    is loaded once per expiry however the nodes interleave;
 * 2. the node that got the lock loads from the origin, then writes the answer with its TTL
 *    and deletes the lock (only if still its own) in one more script;
 * 3. the other nodes run the same script again with a doubling delay: they get the answer
 *    once it is written; if the lock disappears without an answer (the load failed), the
 *    next one to ask takes the lock and loads; after `waitTimeoutMs` a node stops waiting
 *    and loads by itself, so a crashed lock holder costs a bounded delay, never a hang.
 *
 * Polling rather than pub/sub: it needs no subscriber connection, works the same on a Redis
 * Cluster, and the wait is short (one origin call) and bounded.
 *
 * Redis failing never fails a get: any Redis error (down, timeout) makes the node load from
 * the origin itself, counted in `fallbacks`. A value that does not decode (written by
 * something else) is loaded again and overwritten.
 *
 * Stored format (JSON): `{"e": expiresAt, "v": value}` or `{"e": expiresAt, "n": reason}`
 * for a negative answer, at `<prefix>.{<key>}` with a Redis TTL ending at `expiresAt`; the
 * lock is `<prefix>.{<key>}:lock`. The braces are a hash tag: on a Redis Cluster a key and
 * its lock live in the same slot, as the scripts touching both require.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { evalScript, lua, withDeadline } from '../engine/redis/connection.js';
import type { RedisClient } from '../engine/redis/connection.js';
import type { NegativeReason, SharedTier, StoredAnswer } from './protected-cache.js';

/** RedisTierOptions configures a {@link RedisTier}. */
export interface RedisTierOptions {
  /**
   * The command connection, connected by the caller: e.g. `createRedisClients(opts).command`
   * (engine/redis/connection.ts), whose commands fail fast while Redis is down. Not closed by the tier.
   */
  client: RedisClient;
  /** Prefix of every key, without "{" or "}"; keys are `<prefix>.{<cache key>}`. Default: "bulwark.cache". */
  prefix?: string;
  /** Lifetime of a load lock (ms): how long other nodes defer to a holder that may have crashed. Default: 5000. */
  lockTtlMs?: number;
  /**
   * How long a node waits for another node's load before it loads by itself (ms). Set it above
   * the origin call's timeout, or slow loads are duplicated. Default: 2000.
   */
  waitTimeoutMs?: number;
  /** First delay between polls while waiting (ms); it doubles up to `pollMaxMs`. Default: 5. */
  pollMinMs?: number;
  /** Longest delay between polls while waiting (ms). Default: 250. */
  pollMaxMs?: number;
  /** Bound on one Redis command (ms), also in cluster mode where the client retries redirections. Default: 1000. */
  commandTimeoutMs?: number;
  /** Wall clock in ms since the epoch, the one the cache stamps expiries with. Default: Date.now. */
  now?: () => number;
}

/** redisTierDefaults are the defaults of {@link RedisTierOptions}. */
export const redisTierDefaults = {
  prefix: 'bulwark.cache',
  lockTtlMs: 5000,
  waitTimeoutMs: 2000,
  pollMinMs: 5,
  pollMaxMs: 250,
  commandTimeoutMs: 1000,
} as const;

/** RedisTierStats are monotonic counters for metrics. */
export interface RedisTierStats {
  /** Fetches answered from Redis, at once or after waiting for another node's load. */
  readonly sharedHits: number;
  /** Fetches that found nothing in Redis at first. */
  readonly sharedMisses: number;
  /** Fetches that waited for another node's load. */
  readonly lockWaits: number;
  /** Waits that ran out (`waitTimeoutMs`), after which the node loaded by itself. */
  readonly waitTimeouts: number;
  /** Redis commands that failed or timed out, and values that did not decode. */
  readonly redisErrors: number;
  /** Origin loads made because Redis failed. */
  readonly fallbacks: number;
}

/**
 * getOrLock: KEYS = value, lock; ARGV = token, lock TTL (ms). Returns `[1, value]` when the
 * key holds an answer, `[2]` when this caller now holds the lock, `[0]` when another does.
 */
const getOrLockScript = lua(`
local v = redis.call('get', KEYS[1])
if v then return {1, v} end
if redis.call('set', KEYS[2], ARGV[1], 'PX', ARGV[2], 'NX') then return {2} end
return {0}`);

/**
 * storeAndUnlock: KEYS = value, lock; ARGV = encoded answer, TTL (ms), token. Writes the
 * answer, then deletes the lock only if it still holds `token`: a lock that expired during a
 * slow load may be another node's by now.
 */
const storeAndUnlockScript = lua(`
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('get', KEYS[2]) == ARGV[3] then redis.call('del', KEYS[2]) end
return 1`);

/** unlock: KEYS = lock; ARGV = token. Deletes the lock if it still holds `token` (after a failed load). */
const unlockScript = lua(
  `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`,
);

/** RedisFailure marks an error of Redis itself, as opposed to one of the origin load. */
class RedisFailure extends Error {}

const negativeReasons: ReadonlySet<string> = new Set<NegativeReason>(['not_found', 'denied']);

/** RedisTier is a {@link SharedTier} in Redis; one per cache (give each its own prefix). */
export class RedisTier<V> implements SharedTier<V> {
  readonly #client: RedisClient;
  readonly #prefix: string;
  readonly #lockTtlMs: number;
  readonly #waitTimeoutMs: number;
  readonly #pollMinMs: number;
  readonly #pollMaxMs: number;
  readonly #commandTimeoutMs: number;
  readonly #now: () => number;
  readonly #counts = { sharedHits: 0, sharedMisses: 0, lockWaits: 0, waitTimeouts: 0, redisErrors: 0, fallbacks: 0 };

  /** Throws a TypeError naming a bad option. */
  constructor(options: RedisTierOptions) {
    const d = redisTierDefaults;
    this.#client = options.client;
    this.#prefix = options.prefix ?? d.prefix;
    if (this.#prefix === '' || /[{}]/.test(this.#prefix)) {
      throw new TypeError('redis tier: prefix must be non-empty without "{" or "}"');
    }
    this.#lockTtlMs = positive('lockTtlMs', options.lockTtlMs ?? d.lockTtlMs);
    this.#waitTimeoutMs = positive('waitTimeoutMs', options.waitTimeoutMs ?? d.waitTimeoutMs);
    this.#pollMinMs = positive('pollMinMs', options.pollMinMs ?? d.pollMinMs);
    this.#pollMaxMs = positive('pollMaxMs', options.pollMaxMs ?? d.pollMaxMs);
    this.#commandTimeoutMs = positive('commandTimeoutMs', options.commandTimeoutMs ?? d.commandTimeoutMs);
    this.#now = options.now ?? Date.now;
  }

  /** stats returns the counters, for metrics. */
  stats(): RedisTierStats {
    return { ...this.#counts };
  }

  /** fetch implements {@link SharedTier.fetch}: see the module comment for the protocol. */
  async fetch(key: string, load: () => Promise<StoredAnswer<V>>, signal: AbortSignal): Promise<StoredAnswer<V>> {
    const keys = { value: `${this.#prefix}.{${key}}`, lock: `${this.#prefix}.{${key}}:lock` };
    try {
      return await this.#fetch(keys, load, signal);
    } catch (err) {
      if (!(err instanceof RedisFailure)) throw err;
      this.#counts.fallbacks++;
      return load();
    }
  }

  async #fetch(keys: Keys, load: () => Promise<StoredAnswer<V>>, signal: AbortSignal): Promise<StoredAnswer<V>> {
    const token = randomBytes(9).toString('base64url');
    const deadline = this.#now() + this.#waitTimeoutMs;
    let delay = this.#pollMinMs;
    for (let attempt = 0; ; attempt++) {
      const reply = (await this.#redis(
        evalScript(this.#client, getOrLockScript, [keys.value, keys.lock], [token, this.#lockTtlMs]),
      )) as [0 | 2] | [1, string];
      if (reply[0] === 1) {
        const stored = decode<V>(reply[1]);
        if (stored !== undefined) {
          this.#counts.sharedHits++;
          return stored;
        }
        this.#counts.redisErrors++; // not in our format: load, and overwrite it
        return this.#loadAndStore(keys, '', load);
      }
      if (attempt === 0) this.#counts.sharedMisses++;
      if (reply[0] === 2) return this.#loadAndStore(keys, token, load);
      if (attempt === 0) this.#counts.lockWaits++;
      const left = deadline - this.#now();
      if (left <= 0) {
        this.#counts.waitTimeouts++;
        return this.#loadAndStore(keys, '', load);
      }
      await sleep(Math.min(delay, left), undefined, { signal });
      delay = Math.min(delay * 2, this.#pollMaxMs);
    }
  }

  /**
   * loadAndStore loads from the origin and shares the answer; with the lock's `token` it also
   * unlocks ('' when this node does not hold the lock). Failures to write are counted and
   * otherwise ignored: the answer is good without being shared.
   */
  async #loadAndStore(keys: Keys, token: string, load: () => Promise<StoredAnswer<V>>): Promise<StoredAnswer<V>> {
    let stored: StoredAnswer<V>;
    try {
      stored = await load();
    } catch (err) {
      await this.#unlock(keys, token); // let the next node in at once rather than after the lock's TTL
      throw err;
    }
    const ttl = Math.ceil(stored.expiresAt - this.#now());
    if (ttl <= 0) {
      await this.#unlock(keys, token); // an answer already expired is not shared
      return stored;
    }
    const body =
      stored.kind === 'value' ? { e: stored.expiresAt, v: stored.value } : { e: stored.expiresAt, n: stored.reason };
    const args = [JSON.stringify(body), ttl, token];
    await this.#redis(evalScript(this.#client, storeAndUnlockScript, [keys.value, keys.lock], args)).catch(() => {});
    return stored;
  }

  /** unlock releases the lock if this node holds it (`token` not ''); best effort, it expires anyway. */
  async #unlock(keys: Keys, token: string): Promise<void> {
    if (token === '') return;
    await this.#redis(evalScript(this.#client, unlockScript, [keys.lock], [token])).catch(() => {});
  }

  /** redis bounds a command in time and turns its failure into a counted {@link RedisFailure}. */
  async #redis<T>(command: Promise<T>): Promise<T> {
    try {
      return await withDeadline(command, this.#commandTimeoutMs);
    } catch (err) {
      this.#counts.redisErrors++;
      throw new RedisFailure('redis cache tier command failed', { cause: err });
    }
  }
}

/** Keys are the Redis keys of one cache key: its answer and its load lock. */
interface Keys {
  readonly value: string;
  readonly lock: string;
}

/** decode parses a stored answer; undefined when it is not in the format this file writes. */
function decode<V>(raw: string): StoredAnswer<V> | undefined {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null) return undefined;
  const { e, v, n } = body as { e?: unknown; v?: unknown; n?: unknown };
  if (typeof e !== 'number') return undefined;
  if (typeof n === 'string' && negativeReasons.has(n)) {
    return { kind: 'negative', reason: n as NegativeReason, expiresAt: e };
  }
  return 'v' in body ? { kind: 'value', value: v as V, expiresAt: e } : undefined;
}

function positive(option: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new TypeError(`redis tier: ${option} must be a positive number (got ${value})`);
  }
  return value;
}
