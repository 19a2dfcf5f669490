/**
 * Cacheable RPC through the real RPC proxy (incident 2, the cold-cache stampede): concurrent
 * calls with the same arguments make one backend call; "not found" answers are cached; stale
 * answers are served while the backend is down; and a cold cluster of 3 `bulwark start`
 * processes sharing Redis makes about one backend call per key, where per-node caches alone
 * make one per key per process.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it, type TestContext } from 'node:test';
import { signConnectionToken } from '../src/auth/token-signer.js';
import { OriginServer, type OriginRequest } from './helpers/origin.js';
import { startBulwark, writeConfigFile } from './helpers/process.js';
import { describeRedis, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';
import { rawClient, startTestServer, type RawClient, type TestServer } from './helpers/server.js';

const NOT_FOUND = 4404;

/** itemAnswer is the backend's RPC answer for `{id}`: an item, or error 4404 for "missing-…" ids. */
function itemAnswer(req: OriginRequest): { body: unknown } {
  const body = req.body as { data?: { id?: string } };
  const id = body.data?.id ?? '';
  if (id.startsWith('missing')) return { body: { error: { code: NOT_FOUND, message: 'no such item' } } };
  return { body: { result: { data: { id, name: `item ${id}` } } } };
}

async function cachingNode(origin: OriginServer, extra: Record<string, unknown> = {}): Promise<TestServer> {
  const base = {
    rpc: { proxy: { endpoint: `${origin.url}/rpc`, timeout: '2s' }, without_namespace: { proxy_enabled: true } },
    protection: { rate_limit: { connection: { rpc: { rate: 0 } }, user: { rpc: { rate: 0 } } } },
  };
  return startTestServer({ ...base, ...extra });
}

const cacheRules = (cache: Record<string, unknown> = {}) => ({
  cache: {
    rpc: [{ method: 'item.get', ttl: '60s', negative_ttl: '30s', negative_codes: [NOT_FOUND], per_user: false }],
    ...cache,
  },
});

async function clients(srv: TestServer, n: number): Promise<RawClient[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const c = await rawClient(srv.url);
      assert.ok((await c.connect(await srv.token(`p${i}`))).connect);
      return c;
    }),
  );
}

describe('cacheable RPC (one node)', () => {
  let origin: OriginServer;
  before(async () => {
    origin = await OriginServer.start();
    origin.route('/rpc', itemAnswer);
  });
  after(() => origin.close());

  it('50 concurrent calls with the same arguments make one backend call', async (t) => {
    origin.resetCounters();
    origin.delayMs = 100;
    t.after(() => (origin.delayMs = 0));
    const srv = await cachingNode(origin, { proxy: cacheRules() });
    t.after(() => srv.close());
    const cs = await clients(srv, 50);
    const replies = await Promise.all(cs.map((c) => c.call('rpc', { method: 'item.get', data: { id: 'sword' } })));
    for (const r of replies) assert.deepEqual(r.rpc, { data: { id: 'sword', name: 'item sword' } });
    assert.equal(origin.callsTo('/rpc'), 1);
    // Other arguments are another key; uncached methods always reach the backend.
    await cs[0]?.call('rpc', { method: 'item.get', data: { id: 'shield' } });
    await cs[0]?.call('rpc', { method: 'other', data: { id: 'sword' } });
    await cs[0]?.call('rpc', { method: 'other', data: { id: 'sword' } });
    assert.equal(origin.callsTo('/rpc'), 4);
  });

  it('a "not found" answer is cached: the error is answered again without a backend call', async (t) => {
    origin.resetCounters();
    const srv = await cachingNode(origin, { proxy: cacheRules() });
    t.after(() => srv.close());
    const [c] = await clients(srv, 1);
    for (let i = 0; i < 3; i++) {
      const r = await c?.call('rpc', { method: 'item.get', data: { id: 'missing-1' } });
      assert.deepEqual(r?.error, { code: NOT_FOUND, message: 'no such item' });
    }
    assert.equal(origin.callsTo('/rpc'), 1);
  });

  it('an expired answer is served while the backend is down (stale-if-error)', async (t) => {
    origin.resetCounters();
    const srv = await cachingNode(origin, {
      proxy: {
        cache: {
          rpc: [{ method: 'item.get', ttl: '100ms', per_user: false }],
          jitter: 0,
          stale_while_revalidate: '0s',
          stale_if_error: '5m',
        },
      },
    });
    t.after(() => srv.close());
    const [c] = await clients(srv, 1);
    const fresh = await c?.call('rpc', { method: 'item.get', data: { id: 'bow' } });
    assert.deepEqual(fresh?.rpc, { data: { id: 'bow', name: 'item bow' } });
    origin.failure = { status: 500 };
    t.after(() => (origin.failure = undefined));
    await new Promise((r) => setTimeout(r, 150));
    const stale = await c?.call('rpc', { method: 'item.get', data: { id: 'bow' } });
    assert.deepEqual(stale?.rpc, { data: { id: 'bow', name: 'item bow' } }, 'the stale answer, not an error');
    assert.equal(origin.callsTo('/rpc'), 2, 'the backend was asked again, failed, and the stale answer served');
    const uncached = await c?.call('rpc', { method: 'item.get', data: { id: 'axe' } });
    assert.deepEqual([uncached?.error?.code, uncached?.error?.temporary], [100, true], 'nothing stale to serve');
  });
});

await describeRedis('cacheable RPC: a cold cluster of 3 processes sharing Redis', () => {
  let origin: OriginServer;
  before(async () => {
    origin = await OriginServer.start();
    origin.route('/rpc', itemAnswer);
  });
  after(() => origin.close());

  /** coldStart starts 3 `bulwark start` processes, asks every key on each at once, and returns the backend calls. */
  async function coldStart(t: TestContext, shared: boolean): Promise<number> {
    const prefix = uniquePrefix();
    t.after(() => removeKeys(prefix).then(() => undefined));
    origin.resetCounters();
    const secret = randomBytes(24).toString('hex');
    const file = writeConfigFile({
      http_server: { address: '127.0.0.1' },
      log: { level: 'warn' },
      client: { token: { hmac_secret_key: secret } },
      http_api: { key: randomBytes(24).toString('hex') },
      engine: { type: 'redis', redis: { address: [redisUrl], prefix } },
      rpc: { proxy: { endpoint: `${origin.url}/rpc`, timeout: '2s' }, without_namespace: { proxy_enabled: true } },
      // Shedding off: on a busy machine it refuses RPCs with 111, which is not what this counts.
      protection: {
        rate_limit: { connection: { rpc: { rate: 0 } }, user: { rpc: { rate: 0 } } },
        shedding: { enabled: false },
      },
      proxy: cacheRules({ shared }),
    });
    t.after(async () => file.remove());
    const procs = await Promise.all([0, 1, 2].map(() => startBulwark(file.path, {}, t)));
    const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
    await Promise.all(
      procs.map(async (proc) => {
        const cs = await Promise.all(
          Array.from({ length: 20 }, async (_, i) => {
            const c = await rawClient(proc.url);
            t.after(async () => c.close());
            assert.ok((await c.connect(await signConnectionToken({ secret, user: `p${i}` }))).connect);
            return c;
          }),
        );
        // Each process's 20 clients share the 1,000 keys, in the same order on every process:
        // the processes miss the same keys at the same moment, the worst case for a stampede.
        await Promise.all(
          cs.map(async (c, ci) => {
            for (let k = ci; k < keys.length; k += cs.length) {
              const r = await c.call('rpc', { method: 'item.get', data: { id: keys[k] } }, 10_000);
              assert.equal((r.rpc?.data as { id?: string } | undefined)?.id, keys[k], JSON.stringify(r));
            }
          }),
        );
      }),
    );
    const calls = origin.callsTo('/rpc');
    if (shared) {
      // Every one of the 3,000 asks is either a backend call by its own node or an answer
      // another node stored in Redis: the shared tier's counters in /metrics add up to that.
      const hits = await Promise.all(procs.map((p) => sharedStat(p.port, 'sharedHits')));
      const total = hits.reduce((a, b) => a + b, 0);
      assert.equal(total + calls, 3000, `shared hits per node ${hits.join(', ')} + ${calls} backend calls`);
    }
    return calls;
  }

  /** sharedStat reads one counter of bulwark_rpc_cache_shared from a process's /metrics. */
  async function sharedStat(port: number, stat: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`bulwark_rpc_cache_shared{stat="${stat}"`));
    assert.ok(line, `bulwark_rpc_cache_shared{stat="${stat}"} is in /metrics`);
    return Number(line.split(' ').pop());
  }

  it('1,000 keys on 3 cold processes: about 1,000 backend calls with the shared tier, 3,000 without', async (t) => {
    const withTier = await coldStart(t, true);
    const without = await coldStart(t, false);
    t.diagnostic(`backend calls: ${withTier} with the shared tier, ${without} with per-node caches only`);
    // The tier lets one node load a key while the others wait for its answer: exactly one call
    // per key unless a wait outlives proxy.cache.shared_wait (5 s) — 5 % slack for that.
    assert.ok(withTier >= 1000 && withTier <= 1050, `with the tier: ${withTier} backend calls`);
    assert.ok(without >= 2900, `per-node caches only: ${without} backend calls`);
  });
});
