/**
 * Tests of the protected cache (incident 2) against a real HTTP origin on loopback: single
 * flight under 1,000 concurrent gets, negative caching, TTL jitter, stale-while-revalidate,
 * stale-if-error, the LRU bound, and the shared Redis tier: a cold "cluster" of three caches
 * sharing one Redis loads each key about once, where caches alone load it three times.
 *
 * The clock and the random source of the cache are injected where time matters, so those
 * tests are exact and take no time. The Redis suite needs Redis at BULWARK_TEST_REDIS_URL
 * (skipped without it, unless BULWARK_REQUIRE_SERVICES=1).
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, beforeEach, describe, it } from 'node:test';
import { found, negative, ProtectedCache } from '../src/cache/protected-cache.js';
import type { Loader, LoadResult, ProtectedCacheOptions } from '../src/cache/protected-cache.js';
import { LruCache } from '../src/cache/lru.js';
import { RedisTier } from '../src/cache/redis-tier.js';
import { closeClient, connectClient, createClient } from '../src/engine/redis/connection.js';
import type { RedisClient } from '../src/engine/redis/connection.js';
import { resolveRedisOptions } from '../src/config/redis-options.js';
import { OriginError } from '../src/proxy/errors.js';
import { ProtectedTarget } from '../src/proxy/protected-call.js';
import { waitFor } from './conformance/broker.case.js';
import { OriginServer } from './helpers/origin.js';
import { describeRedis, freePort, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';

/** Echo is what the origin answers for a path without a route: which path, and which call of it. */
interface Echo {
  path: string;
  call: number;
}

let origin: OriginServer;

before(async () => {
  origin = await OriginServer.start();
});
after(() => origin.close());
beforeEach(() => {
  origin.delayMs = 0;
  origin.failure = undefined;
  origin.resetCounters();
});

/**
 * load asks the origin for `/k/<key>`: 404 is a cached "not found", 403 a cached "denied",
 * another failure an error. Through `target` when given, as the proxy does.
 */
function loader(target?: ProtectedTarget): Loader<Echo> {
  const fetchKey = async (key: string, signal?: AbortSignal): Promise<LoadResult<Echo>> => {
    const res = await fetch(`${origin.url}/k/${key}`, { signal });
    const text = await res.text();
    if (res.status === 404) return negative('not_found');
    if (res.status === 403) return negative('denied');
    if (!res.ok) throw OriginError.fromStatus('origin', res.status);
    return found(JSON.parse(text) as Echo);
  };
  if (target === undefined) return fetchKey;
  return (key, signal) =>
    target.call((callSignal) => fetchKey(key, signal ? AbortSignal.any([signal, callSignal]) : callSignal));
}

/** A clock the test moves by hand. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_700_000_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

/** exact is a cache with a hand-moved clock and no jitter, so expiries fall where the test says. */
function exact(clock: { now: () => number }, over: ProtectedCacheOptions<Echo> = {}): ProtectedCache<Echo> {
  return new ProtectedCache<Echo>({ jitter: 0, staleWhileRevalidateMs: 0, staleIfErrorMs: 0, now: clock.now, ...over });
}

describe('ProtectedCache', () => {
  it('single flight: 1,000 concurrent gets of one key make exactly one origin call', async () => {
    origin.delayMs = 20;
    const cache = new ProtectedCache<Echo>();
    const load = loader();
    const answers = await Promise.all(Array.from({ length: 1000 }, () => cache.get('hot', load)));
    assert.equal(origin.callsTo('/k/hot'), 1);
    assert.equal(origin.calls, 1);
    for (const a of answers) assert.deepEqual(a, answers[0]);
    assert.deepEqual(answers[0], {
      kind: 'value',
      value: { path: '/k/hot', call: 1 },
      expiresAt: answers[0]!.expiresAt,
    });
    await cache.get('hot', load);
    const stats = cache.stats();
    assert.deepEqual(
      [stats.misses, stats.coalesced, stats.originCalls, stats.hits],
      [1000, 999, 1, 1],
      'misses include the coalesced waits; the next get is a hit',
    );
  });

  it('caches "not found" for its own TTL, then asks the origin again', async () => {
    const clock = manualClock();
    const cache = exact(clock, { ttlMs: 60_000, negativeTtlMs: 1000 });
    const load = loader();
    origin.notFound('/k/ghost');
    assert.deepEqual(await cache.get('ghost', load), {
      kind: 'negative',
      reason: 'not_found',
      expiresAt: clock.now() + 1000,
    });
    clock.advance(999);
    for (let i = 0; i < 10; i++) assert.equal((await cache.get('ghost', load)).kind, 'negative');
    assert.equal(origin.callsTo('/k/ghost'), 1, 'a repeated lookup of something missing stays off the origin');
    assert.equal(cache.stats().negativeHits, 10);
    clock.advance(1);
    await cache.get('ghost', load);
    assert.equal(origin.callsTo('/k/ghost'), 2, 'the negative TTL (1 s), not the value TTL (60 s), applies');

    origin.route('/k/secret', { status: 403 });
    assert.deepEqual(await cache.get('secret', load), {
      kind: 'negative',
      reason: 'denied',
      expiresAt: clock.now() + 1000,
    });
    await cache.get('secret', load);
    assert.equal(origin.callsTo('/k/secret'), 1);
  });

  it('a load may give its own TTL', async () => {
    const clock = manualClock();
    const cache = exact(clock, { ttlMs: 60_000 });
    const answer = await cache.get('short', async () => found({ path: 'x', call: 0 }, 250));
    assert.equal(answer.expiresAt, clock.now() + 250);
  });

  it('jitters TTLs so keys loaded together expire at different times', async () => {
    const clock = manualClock();
    let draws = 0;
    // Key i (the i-th load) draws i/100: its TTL is 1000 × (1 + 0.2 × (2i/100 − 1)) = 800 + 4i ms.
    const cache = exact(clock, { ttlMs: 1000, jitter: 0.2, random: () => (draws++ % 100) / 100 });
    const load = loader();
    const keys = Array.from({ length: 100 }, (_, i) => `j${i}`);
    for (const k of keys) await cache.get(k, load);
    assert.equal(origin.calls, 100);

    clock.advance(799);
    await Promise.all(keys.map((k) => cache.get(k, load)));
    assert.equal(origin.calls, 100, 'no TTL is shorter than 800 ms');
    clock.advance(101);
    await Promise.all(keys.map((k) => cache.get(k, load)));
    assert.equal(origin.calls - 100, 26, 'at 900 ms only keys 0–25 (800 + 4i ≤ 900) expired: a spread, not a cliff');
  });

  it('stale-if-error: serves the expired answer while the origin is down, within the window', async () => {
    const clock = manualClock();
    const cache = exact(clock, { ttlMs: 1000, staleIfErrorMs: 5000 });
    const load = loader(new ProtectedTarget('origin'));
    await cache.get('a', load);
    clock.advance(1500);
    origin.failure = 'reset';
    for (let i = 0; i < 3; i++) {
      const answer = await cache.get('a', load);
      assert.deepEqual(answer.kind === 'value' && answer.value, { path: '/k/a', call: 1 });
    }
    const stats = cache.stats();
    assert.deepEqual([stats.staleServes, stats.originErrors], [3, 3], 'each get tried the origin, then served stale');

    clock.advance(4500); // 6 s after the load: 5 s past expiry, the end of the window
    await assert.rejects(cache.get('a', load), (err: unknown) => err instanceof OriginError && err.temporary);
    await assert.rejects(cache.get('never-loaded', load), OriginError, 'nothing stale to serve');
  });

  it('stale-while-revalidate: serves stale at once and refreshes once in the background', async () => {
    const clock = manualClock();
    const cache = exact(clock, { ttlMs: 1000, staleWhileRevalidateMs: 5000 });
    const load = loader();
    await cache.get('b', load);
    clock.advance(1500);
    origin.delayMs = 50;
    const answers = await Promise.all(Array.from({ length: 100 }, () => cache.get('b', load)));
    for (const a of answers) assert.deepEqual(a.kind === 'value' && a.value, { path: '/k/b', call: 1 });
    assert.equal(cache.stats().staleServes, 100);
    await waitFor(() => cache.stats().loading === 0);
    const fresh = await cache.get('b', load);
    assert.deepEqual(fresh.kind === 'value' && fresh.value, { path: '/k/b', call: 2 });
    assert.equal(origin.callsTo('/k/b'), 2, 'one background refresh for 100 stale gets');
    assert.equal(cache.stats().hits, 1);
  });

  it('holds at most maxEntries keys, evicting the least recently used', async () => {
    const cache = new ProtectedCache<Echo>({ maxEntries: 10 });
    const load = loader();
    for (let i = 0; i < 10; i++) await cache.get(`l${i}`, load);
    await cache.get('l0', load); // l0 is now the most recently used; l1 the least
    await cache.get('l10', load);
    assert.deepEqual([cache.stats().size, cache.stats().evictions], [10, 1]);
    await cache.get('l0', load);
    assert.equal(origin.callsTo('/k/l0'), 1, 'l0 was kept');
    await cache.get('l1', load);
    assert.equal(origin.callsTo('/k/l1'), 2, 'l1 was evicted and loaded again');
  });

  it('close aborts running loads: the origin sees the request cancelled', async () => {
    origin.delayMs = 5000;
    const cache = new ProtectedCache<Echo>();
    const pending = cache.get('slow', loader());
    await waitFor(() => origin.inFlight === 1);
    cache.close();
    await assert.rejects(pending);
    await waitFor(() => origin.aborted === 1);
  });

  it('rejects invalid options, naming them', () => {
    assert.throws(() => new ProtectedCache({ jitter: 1 }), /jitter/);
    assert.throws(() => new ProtectedCache({ ttlMs: -1 }), /ttlMs/);
    assert.throws(() => new ProtectedCache({ maxEntries: 0 }), /maxEntries/);
  });
});

describe('LruCache', () => {
  it('get refreshes recency, peek does not', () => {
    const lru = new LruCache<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    lru.peek('a');
    lru.set('c', 3);
    assert.equal(lru.get('a'), undefined, 'peek left a the least recently used');
    lru.get('b');
    lru.set('d', 4);
    assert.deepEqual([lru.get('b'), lru.get('c'), lru.size, lru.evictions], [2, undefined, 2, 2]);
  });
});

describe('RedisTier with Redis unreachable', () => {
  it('never fails a get: every key is loaded from the origin, and the fallbacks are counted', async () => {
    const client = createClient(
      resolveRedisOptions({ addresses: [`redis://127.0.0.1:${await freePort()}`] }),
      'command',
    );
    client.on('error', () => {});
    try {
      const tier = new RedisTier<Echo>({ client });
      const cache = new ProtectedCache<Echo>({ shared: tier });
      const load = loader();
      const answers = await Promise.all(['x', 'y', 'z'].map((k) => cache.get(k, load)));
      assert.deepEqual(
        answers.map((a) => a.kind === 'value' && a.value.path),
        ['/k/x', '/k/y', '/k/z'],
      );
      assert.equal(origin.calls, 3);
      assert.equal(tier.stats().fallbacks, 3);
      assert.ok(tier.stats().redisErrors >= 3);
    } finally {
      client.disconnect();
    }
  });
});

await describeRedis('RedisTier on a real Redis', () => {
  const prefix = uniquePrefix();
  const redisOptions = resolveRedisOptions({ addresses: [redisUrl] });
  const clients: RedisClient[] = [];

  /**
   * node makes one "node": its own Redis connection, tier and cache, sharing `prefix`.
   * `commandTimeoutMs` is both the connection's and the tier's command timeout.
   */
  async function node(
    over: { waitTimeoutMs?: number; commandTimeoutMs?: number } = {},
  ): Promise<{ cache: ProtectedCache<Echo>; tier: RedisTier<Echo> }> {
    const options =
      over.commandTimeoutMs === undefined
        ? redisOptions
        : resolveRedisOptions({ addresses: [redisUrl], commandTimeoutMs: over.commandTimeoutMs });
    const client = createClient(options, 'command');
    clients.push(client);
    await connectClient(client, options);
    const tier = new RedisTier<Echo>({ client, prefix: `${prefix}.cache`, lockTtlMs: 60_000, ...over });
    return { cache: new ProtectedCache<Echo>({ shared: tier }), tier };
  }

  after(async () => {
    await Promise.all(clients.map((c) => closeClient(c, redisOptions)));
    await removeKeys(prefix);
  });

  it('a node is served what another node loaded, values and negative answers alike', async () => {
    const [a, b] = [await node(), await node()];
    origin.notFound('/k/s-missing');
    const load = loader();
    const first = await a.cache.get('s-1', load);
    await a.cache.get('s-missing', load);
    const second = await b.cache.get('s-1', load);
    assert.deepEqual(second, first, 'same value and same expiry on both nodes');
    assert.equal((await b.cache.get('s-missing', load)).kind, 'negative');
    assert.equal(origin.calls, 2);
    assert.equal(b.tier.stats().sharedHits, 2);
  });

  it('when the lock holder fails to load, a waiting node takes over at once (no wait timeout)', async () => {
    const nodes = [await node(), await node(), await node()];
    origin.failure = { status: 500 };
    const results = await Promise.allSettled(nodes.map((n) => n.cache.get('s-failing', loader())));
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected'],
    );
    assert.equal(origin.callsTo('/k/s-failing'), 3, 'each node tried once, one after the other');
    assert.equal(
      nodes.reduce((sum, n) => sum + n.tier.stats().waitTimeouts, 0),
      0,
    );
  });

  it('a cold start of 3 nodes × 1,000 keys makes about 1,000 origin calls, not 3,000', async () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `cold-${i}`);
    /**
     * coldStart has every node get every key, all at once (for each key, the three nodes in
     * turn), checks every answer, and returns how many origin calls that took.
     */
    const coldStart = async (caches: ProtectedCache<Echo>[], label: string): Promise<number> => {
      // Each node's calls go through its own ProtectedTarget, as the proxy's do.
      const loads = caches.map((_, n) =>
        loader(new ProtectedTarget(`node${n}`, { maxQueue: 1000, timeoutMs: 30_000 })),
      );
      origin.resetCounters();
      const started = performance.now();
      const answers = await Promise.all(keys.flatMap((k) => caches.map((cache, n) => cache.get(k, loads[n]!))));
      for (const [i, a] of answers.entries()) {
        assert.equal(a.kind === 'value' && a.value.path, `/k/${keys[Math.floor(i / caches.length)]}`);
      }
      assert.equal(
        caches.reduce((sum, c) => sum + c.stats().originCalls, 0),
        origin.calls,
        "the caches' originCalls count what the origin saw",
      );
      console.log(`${label}: ${origin.calls} origin calls in ${Math.round(performance.now() - started)} ms`);
      return origin.calls;
    };

    // Waits, locks and Redis command timeouts far longer than this test can take: on a slow,
    // shared CI machine a waiter must not give up and load by itself, nor a node whose 3,000
    // commands queue behind each other for over a second fall back to the origin (it did, 536
    // times per node, beside other test files), which is the protocol working as designed (a
    // bounded wait) but not what this test measures.
    const shared = [0, 1, 2].map(() => node({ waitTimeoutMs: 30_000, commandTimeoutMs: 30_000 }));
    const nodes = await Promise.all(shared);
    const withTier = await coldStart(
      nodes.map((n) => n.cache),
      'cold start, 3 nodes × 1000 keys, shared Redis tier',
    );
    console.log(`tier stats: ${JSON.stringify(nodes.map((n) => n.tier.stats()))}`);
    // Bound ≤ 1,050: a key's answer is read and its lock taken in one atomic script, so exactly
    // one node loads each key while the others wait for its answer: the expected count is
    // exactly 1,000. An extra call needs a wait to run out (30 s here) or a lock to expire
    // (60 s) before the holder writes the answer; ≤ 5 % extra leaves room for that on a
    // badly stalled machine, while per-node loading (the 3,000 of the control) fails it.
    assert.ok(withTier >= 1000 && withTier <= 1050, `with the Redis tier: ${withTier} origin calls`);

    // Control: the same cold start with per-node caches only. Each node single-flights its own
    // misses, so it loads every key once: 3 × 1,000.
    const alone = [0, 1, 2].map(() => new ProtectedCache<Echo>());
    const without = await coldStart(alone, 'cold start, 3 nodes × 1000 keys, per-node caches alone');
    assert.ok(without >= 2900, `without the tier: ${without} origin calls`);
  });
});
