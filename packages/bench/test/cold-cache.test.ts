/**
 * Tests of the cold-cache scenario's measurement: the origin's peak rate (any window, not
 * fixed buckets), per-key counts, the concurrency-limit arithmetic that keeps the protected
 * variants under the origin's capacity, the verdicts and each variant's config; and its
 * building blocks: the measuring origin, the RPC client and the RESP reader used for cleanup.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import {
  outcomeLabel,
  RPC_BAD_REPLY,
  RPC_CLOSED,
  RPC_TIMEOUT,
  RpcClient,
  type RpcOutcome,
} from '../src/load/rpc-client.js';
import { Arrivals, peakCount, peakRate, slidingRateSeries } from '../src/harness/arrivals.js';
import { RpcOrigin } from '../src/servers/rpc-origin.js';
import type { LatencySummary } from '../src/harness/stats.js';
import { waitFor } from '../src/harness/util.js';
import { askKey, variantConfig } from '../src/scenarios/cold-cache/run.js';
import { judgeColdCache, perKeySummary } from '../src/scenarios/cold-cache/verdict.js';
import {
  originConcurrencyFor,
  originRateBound,
  parseVariants,
  protectedMaxConcurrent,
} from '../src/scenarios/cold-cache/options.js';
import { type ColdCacheOptions, type Variant, type VariantResult } from '../src/scenarios/cold-cache/types.js';

describe('peakCount / peakRate', () => {
  it('finds a burst that straddles a second boundary (fixed 1 s buckets would see half of it in each)', () => {
    const times = [
      ...Array.from({ length: 10 }, (_, i) => 900 + i * 10),
      ...Array.from({ length: 10 }, (_, i) => 1000 + i * 10),
    ];
    assert.equal(peakCount(times, 1000), 20);
    assert.equal(peakRate(times, 1000), 20);
  });

  it('uses half-open windows [t, t + w): events exactly w apart are not in one window', () => {
    assert.equal(peakCount([0, 1000], 1000), 1);
    assert.equal(peakCount([0, 999.9], 1000), 2);
    assert.equal(peakCount([0, 0, 0], 1000), 3);
  });

  it('scales a short window to a per-second rate', () => {
    // 30 events in 100 ms, then nothing: 300/s over the best 100 ms, 30/s over the best second.
    const times = Array.from({ length: 30 }, (_, i) => 5000 + i * 3);
    assert.equal(peakRate(times, 100), 300);
    assert.equal(peakRate(times, 1000), 30);
  });

  it('is 0 without events and refuses a window that is not positive', () => {
    assert.equal(peakCount([], 1000), 0);
    assert.throws(() => peakCount([1], 0), RangeError);
  });

  it('is the maximum over every window, not only those starting at round times', () => {
    // Steady 1 event / 10 ms for 3 s, plus 5 extra events at 1,234.5 ms.
    const times = [...Array.from({ length: 300 }, (_, i) => i * 10), 1234.5, 1234.5, 1234.5, 1234.5, 1234.5].sort(
      (a, b) => a - b,
    );
    assert.equal(peakCount(times, 1000), 105);
  });
});

describe('slidingRateSeries', () => {
  it('counts the trailing window (t − w, t] at each step, x in seconds since the start', () => {
    const s = slidingRateSeries([100, 200, 1100], 'o', 0, 1200, 1000, 400);
    assert.equal(s.label, 'o');
    // t = 0: none; 400: 100 and 200; 800: the same; 1200: only 1100 is in (200, 1200].
    assert.deepEqual(s.points, [
      [0, 0],
      [0.4, 2],
      [0.8, 2],
      [1.2, 1],
    ]);
  });

  it('never shows more than the peak rate', () => {
    const times = Array.from({ length: 500 }, (_, i) => (i * 7919) % 3000).sort((a, b) => a - b);
    const series = slidingRateSeries(times, 'o', 0, 3000, 1000, 100);
    assert.ok(Math.max(...series.points.map(([, y]) => y)) <= peakRate(times, 1000));
  });
});

describe('Arrivals', () => {
  it('keeps every event past its first buffer and returns them sorted', () => {
    const a = new Arrivals();
    for (let i = 3000; i > 0; i--) a.add(i);
    assert.equal(a.count, 3000);
    const t = a.times();
    assert.equal(t.length, 3000);
    assert.equal(t[0], 1);
    assert.equal(t[2999], 3000);
    a.clear();
    assert.equal(a.count, 0);
  });
});

describe('protected concurrency arithmetic', () => {
  it('gives the documented numbers', () => {
    assert.equal(protectedMaxConcurrent(2000, 20, 3), 13);
    assert.equal(originRateBound(3, 13, 20), 1950);
    assert.equal(protectedMaxConcurrent(2000, 20, 2), 20);
    assert.equal(originRateBound(2, 20, 20), 2000);
    assert.equal(originConcurrencyFor(2000, 20), 40);
    // A service time that does not divide a second: 34 calls of 30 ms fit in [t, t + 1 s).
    assert.equal(protectedMaxConcurrent(2000, 30, 3), 19);
    assert.equal(originRateBound(3, 19, 30), 1938);
  });

  it('is the largest limit within capacity, and at least 1', () => {
    for (const [cap, ms, nodes] of [
      [2000, 20, 3],
      [1500, 7, 5],
      [10_000, 3, 5],
      [2000, 33, 50],
    ] as const) {
      const c = protectedMaxConcurrent(cap, ms, nodes);
      assert.ok(originRateBound(nodes, c, ms) <= cap, `${cap}/${ms}/${nodes}: ${c} within capacity`);
      assert.ok(originRateBound(nodes, c + 1, ms) > cap, `${cap}/${ms}/${nodes}: ${c + 1} would exceed it`);
      assert.ok(nodes * c <= originConcurrencyFor(cap, ms), 'and within the origin concurrency: no 503');
    }
    assert.equal(protectedMaxConcurrent(10, 20, 3), 1);
  });

  it('bounds the peak rate of slots whose calls arrive at least the service time apart', () => {
    // 3 nodes × 13 slots, each starting a call every 20 ms (the fastest the origin allows) from
    // its own offset, for 3 s: the busiest second reaches the bound and never exceeds it.
    const times: number[] = [];
    for (let slot = 0; slot < 39; slot++) {
      for (let t = (slot * 7) % 20; t < 3000; t += 20) times.push(t);
    }
    times.sort((a, b) => a - b);
    assert.equal(peakCount(times, 1000), originRateBound(3, 13, 20));
  });
});

describe('per-key counts, plan and variants', () => {
  it('summarises calls per key', () => {
    const m = new Map([
      ['s0', 1],
      ['s1', 3],
      ['s2', 2],
    ]);
    assert.deepEqual(perKeySummary(m), { keys: 3, calls: 6, maxPerKey: 3, keysCalledAgain: 2 });
    assert.deepEqual(perKeySummary(new Map()), { keys: 0, calls: 0, maxPerKey: 0, keysCalledAgain: 0 });
  });

  it('asks each key C times back to back', () => {
    assert.deepEqual(
      Array.from({ length: 6 }, (_, i) => askKey(i, 2)),
      [0, 0, 1, 1, 2, 2],
    );
    assert.deepEqual(
      Array.from({ length: 3 }, (_, i) => askKey(i, 1)),
      [0, 1, 2],
    );
  });

  it('parses --variants, refusing unknown names and empty lists', () => {
    assert.deepEqual(parseVariants('shared, none,shared'), ['shared', 'none']);
    assert.throws(() => parseVariants('shared,memory'), /unknown variant "memory"/);
    assert.throws(() => parseVariants(' , '), /at least one/);
  });
});

const opts: ColdCacheOptions = {
  nodes: 3,
  clients: 200,
  keys: 10_000,
  asksPerKey: 2,
  inflight: 2,
  serviceMs: 20,
  originCapacity: 2000,
  originConcurrency: 40,
  maxConcurrent: 13,
  maxQueue: 400,
  proxyTimeoutMs: 3000,
  rpcTimeoutMs: 15_000,
  maxSeconds: 90,
  slack: 0.05,
  variants: ['shared', 'local', 'none', 'naive'],
  redisUrl: 'redis://127.0.0.1:6379',
  shedding: false,
  connectConcurrency: 50,
};

const lat: LatencySummary = { count: 1, mean: 1, p50: 1, p90: 1, p99: 1, p999: 1, max: 1 };

function result(variant: Variant, calls: number, over: Partial<VariantResult> = {}): VariantResult {
  return {
    variant,
    proxy: { cache: 'none', maxConcurrent: 13, maxQueue: 400, breaker: true },
    rpcs: 60_000,
    ok: 60_000,
    wrong: 0,
    failed: {},
    latencyMs: lat,
    serveSeconds: 1,
    origin: {
      calls,
      keys: 10_000,
      maxPerKey: 1,
      keysCalledAgain: 0,
      peakPerSec: 1900,
      peak100msPerSec: 2300,
      rejected: 0,
      aborted: 0,
      maxInFlight: 39,
    },
    bulwark: { cache: {}, protections: {}, rejections: {} },
    ...over,
  };
}

describe('judgeColdCache', () => {
  const failing = (checks: ReturnType<typeof judgeColdCache>) => checks.filter((c) => !c.pass).map((c) => c.name);

  it('passes a run where the tier holds and the limit keeps the origin within capacity', () => {
    const checks = judgeColdCache(
      [result('shared', 10_020), result('local', 30_000), result('none', 60_000), result('naive', 60_000)],
      opts,
    );
    assert.deepEqual(failing(checks), []);
    assert.equal(checks.filter((c) => c.name.startsWith('naive')).length, 1, 'naive: only wrong answers judged');
  });

  it('flags a shared tier that let more than 5 % duplicate calls through, and a per-node cache over M × K', () => {
    const checks = judgeColdCache([result('shared', 10_501), result('local', 31_501)], opts);
    assert.deepEqual(failing(checks), ['shared: origin calls', 'local: origin calls']);
    assert.deepEqual(failing(judgeColdCache([result('shared', 10_500)], opts)), []);
  });

  it('flags a peak over capacity, failed RPCs and wrong answers', () => {
    const hot = result('none', 60_000);
    hot.origin.peakPerSec = 2001;
    const errs = result('local', 30_000, { failed: { '111': 3, timeout: 1 } });
    const wrong = result('naive', 60_000, { wrong: 1, failed: { '100': 500 } });
    assert.deepEqual(failing(judgeColdCache([hot, errs, wrong], opts)), [
      'none: origin peak rate (any 1 s)',
      'local: failed RPCs',
      'naive: wrong answers',
    ]);
  });
});

describe('variantConfig', () => {
  const proxyOf = (v: Variant) => variantConfig(v, opts, 'http://127.0.0.1:9', 'p').proxy as Record<string, unknown>;
  const cacheOf = (v: Variant) => proxyOf(v).cache as { rpc: unknown[]; shared: boolean };

  it('caches the method with the shared tier, per node, or not at all', () => {
    assert.equal(cacheOf('shared').rpc.length, 1);
    assert.equal(cacheOf('shared').shared, true);
    assert.equal(cacheOf('local').rpc.length, 1);
    assert.equal(cacheOf('local').shared, false);
    assert.equal(cacheOf('none').rpc.length, 0);
    assert.equal(cacheOf('naive').rpc.length, 0);
  });

  it('protects every variant but naive with the computed limit', () => {
    for (const v of ['shared', 'local', 'none'] as const) {
      assert.equal(proxyOf(v).max_concurrent, 13);
      assert.equal(proxyOf(v).breaker, undefined, `${v}: the default breaker`);
    }
    assert.ok((proxyOf('naive').max_concurrent as number) >= opts.clients * opts.inflight);
    assert.deepEqual(proxyOf('naive').breaker, { min_requests: 1_000_000_000 });
  });

  it('runs on the Redis engine under the given prefix, the RPC proxy pointed at the origin', () => {
    const c = variantConfig('shared', opts, 'http://127.0.0.1:9', 'bench-cold-x') as {
      engine: { type: string; redis: { prefix: string } };
      rpc: { proxy: { endpoint: string } };
      protection: { shedding: { enabled: boolean } };
    };
    assert.equal(c.engine.type, 'redis');
    assert.equal(c.engine.redis.prefix, 'bench-cold-x');
    assert.equal(c.rpc.proxy.endpoint, 'http://127.0.0.1:9/rpc');
    assert.equal(c.protection.shedding.enabled, false);
  });
});

describe('RpcOrigin (cold-cache: no queue, 503 over its workers)', () => {
  const post = async (url: string, body: string) => {
    const res = await fetch(`${url}/rpc`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    return { status: res.status, body: (await res.json()) as unknown };
  };

  it('answers proxy requests, counting calls per key and their arrival times', async () => {
    const origin = await RpcOrigin.start();
    try {
      const a = await post(origin.url, JSON.stringify({ client: 'c', user: 'u', method: 'm', data: { id: 's1' } }));
      await post(origin.url, JSON.stringify({ method: 'm', data: { id: 's1' } }));
      await post(origin.url, JSON.stringify({ method: 'm', data: { id: 7 } }));
      assert.deepEqual(a, { status: 200, body: { result: { data: { id: 's1' } } } });
      assert.equal(origin.perKey.get('s1'), 2);
      assert.equal(origin.perKey.get('7'), 1);
      assert.equal(origin.stats().calls, 3);
      assert.equal(origin.arrivals.count, 3);
      const bad = await post(origin.url, '[1]');
      assert.equal(bad.status, 400);
      assert.equal(origin.stats().malformed, 1);
      origin.reset();
      const { calls, throttled, abandoned, malformed } = origin.stats();
      assert.deepEqual(
        { calls, throttled, abandoned, malformed },
        { calls: 0, throttled: 0, abandoned: 0, malformed: 0 },
      );
      assert.equal(origin.arrivals.count, 0);
      assert.equal(origin.perKey.size, 0);
    } finally {
      await origin.close();
    }
  });

  it('answers 503 over its capacity, and still counts the call', async () => {
    const origin = await RpcOrigin.start({ workers: 0 });
    try {
      const r = await post(origin.url, JSON.stringify({ data: { id: 'x' } }));
      assert.equal(r.status, 503);
      assert.equal(origin.stats().throttled, 1);
      assert.equal(origin.perKey.get('x'), 1);
    } finally {
      await origin.close();
    }
  });

  it('answers no earlier than its service time, with the configured answer', async () => {
    const origin = await RpcOrigin.start({
      serviceMs: 30,
      answer: (_req, key) => ({ error: { code: 4404, message: `no ${key}` } }),
    });
    try {
      const started = performance.now();
      const r = await post(origin.url, JSON.stringify({ data: { id: 'gone' } }));
      assert.ok(performance.now() - started >= 30);
      assert.deepEqual(r.body, { error: { code: 4404, message: 'no gone' } });
    } finally {
      await origin.close();
    }
  });
  it('counts a call whose caller went away as abandoned, and the work done for it as wasted', async () => {
    const origin = await RpcOrigin.start({ serviceMs: 200 });
    try {
      const abort = new AbortController();
      const call = fetch(`${origin.url}/rpc`, {
        method: 'POST',
        body: JSON.stringify({ method: 'm', data: { id: 'k' } }),
        signal: abort.signal,
      });
      assert.ok(await waitFor(() => origin.inFlight === 1, 5000));
      abort.abort();
      await assert.rejects(call);
      assert.ok(await waitFor(() => origin.stats().wasted === 1, 5000));
      const s = origin.stats();
      assert.deepEqual(
        { calls: s.calls, served: s.served, abandoned: s.abandoned, byMethod: s.callsByMethod },
        { calls: 1, served: 0, abandoned: 1, byMethod: { m: 1 } },
      );
      assert.equal(origin.perKey.get('k'), 1);
    } finally {
      await origin.close();
    }
  });
});

describe('RpcClient', () => {
  /** A fake server: accepts connect, answers rpc `echo` with its data, `fail` with error 4404, ignores `hang`. */
  async function fakeServer(): Promise<{ url: string; close: () => Promise<void>; sockets: Set<ServerSocket> }> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const sockets = new Set<ServerSocket>();
    wss.on('connection', (ws) => {
      sockets.add(ws);
      ws.send('{}'); // a ping first
      ws.on('message', (raw: Buffer) => {
        const text = raw.toString();
        if (text === '{}') return;
        const cmd = JSON.parse(text) as { id: number; connect?: unknown; rpc?: { method: string; data: unknown } };
        if (cmd.connect) ws.send(JSON.stringify({ id: cmd.id, connect: { client: 'x' } }));
        else if (cmd.rpc?.method === 'echo') {
          // A push and the reply in one frame: the push is skipped, the reply matched by its id.
          ws.send(`{"push":{"channel":"c"}}\n${JSON.stringify({ id: cmd.id, rpc: { data: cmd.rpc.data } })}`);
        } else if (cmd.rpc?.method === 'fail')
          ws.send(JSON.stringify({ id: cmd.id, error: { code: 4404, message: 'x' } }));
        else if (cmd.rpc?.method === 'odd') ws.send(JSON.stringify({ id: cmd.id, error: { message: 'no code' } }));
      });
    });
    const { port } = wss.address() as { port: number };
    return {
      url: `ws://127.0.0.1:${port}`,
      sockets,
      close: () => new Promise((r) => wss.close(() => r())),
    };
  }

  it('matches replies to calls and reports data, error codes, timeouts and closes', async () => {
    const srv = await fakeServer();
    const c = new RpcClient(srv.url);
    try {
      await c.connect('u1', 'secret');
      const [a, b, f, odd, hung] = await Promise.all([
        c.call('echo', { id: 'a' }),
        c.call('echo', { id: 'b' }),
        c.call('fail', {}),
        c.call('odd', {}),
        c.call('hang', {}, 50),
      ]);
      assert.deepEqual(a, { outcome: 0, data: { id: 'a' } });
      assert.deepEqual(b, { outcome: 0, data: { id: 'b' } });
      assert.deepEqual(f, { outcome: 4404 });
      assert.deepEqual(odd, { outcome: RPC_BAD_REPLY });
      assert.deepEqual(hung, { outcome: RPC_TIMEOUT });
      // The callback form: latency, and the data when asked for.
      const sent = await new Promise<{ outcome: RpcOutcome; data: unknown }>((resolve) =>
        assert.ok(c.send('echo', '{"id":"s"}', (outcome, _ms, data) => resolve({ outcome, data }), true)),
      );
      assert.deepEqual(sent, { outcome: 0, data: { id: 's' } });
      const pending = c.call('hang', {});
      for (const s of srv.sockets) s.terminate();
      assert.deepEqual(await pending, { outcome: RPC_CLOSED });
      assert.deepEqual(await c.call('echo', {}), { outcome: RPC_CLOSED });
    } finally {
      c.terminate();
      await srv.close();
    }
  });

  it('labels outcomes for tallies', () => {
    assert.deepEqual(([0, 111, RPC_TIMEOUT, RPC_CLOSED, RPC_BAD_REPLY] as RpcOutcome[]).map(outcomeLabel), [
      'ok',
      '111',
      'timeout',
      'disconnect',
      'bad reply',
    ]);
  });
});
