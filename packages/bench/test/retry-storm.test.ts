/**
 * Tests of the retry-storm scenario's pure parts (retry policy and its accounting, the load
 * model, windows, summaries and verdicts) and of its two helpers against servers of known
 * behaviour: the capacity-limited origin, and the RPC client against a scripted WebSocket
 * server.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { RpcClient, type RpcOutcome } from '../src/load/rpc-client.js';
import {
  attemptsPerCall,
  outcomeKey,
  reconnectDelayMs,
  shouldRetry,
  type CallOutcome,
} from '../src/load/retry-policy.js';
import {
  emptyOriginStats,
  methodOf,
  originCapacity,
  originFate,
  parseProxyRequest,
  RpcOrigin,
} from '../src/servers/rpc-origin.js';
import { waitFor } from '../src/harness/util.js';
import {
  addOutcome,
  buggyCount,
  callsOfWork,
  defaultOriginWorkers,
  demandOf,
  isBuggy,
  newTally,
  newWindowTally,
  originQueueOf,
  summarizeWindow,
  windowIndex,
  windowsOf,
} from '../src/scenarios/retry-storm/plan.js';
import { retryStormChecks } from '../src/scenarios/retry-storm/verdict.js';
import { sizedProxy } from '../src/scenarios/retry-storm/options.js';
import { variantConfig } from '../src/scenarios/retry-storm/run.js';
import { type RetryStormOptions, type VariantResult, type WindowResult } from '../src/scenarios/retry-storm/types.js';

describe('shouldRetry (the buggy build)', () => {
  const policy = { retries: 3 };

  it('retries every failure until the retries are used up', () => {
    for (const outcome of [100, 111, 108, 'timeout', 'disconnect'] as CallOutcome[]) {
      assert.equal(shouldRetry(outcome, 0, policy), true, String(outcome));
      assert.equal(shouldRetry(outcome, 2, policy), true, String(outcome));
      assert.equal(shouldRetry(outcome, 3, policy), false, String(outcome));
    }
  });

  it('never retries a success, nor a call that was never sent', () => {
    assert.equal(shouldRetry(0, 0, policy), false);
    assert.equal(shouldRetry('offline', 0, policy), false);
  });

  it('never retries with no retries', () => {
    assert.equal(shouldRetry(111, 0, { retries: 0 }), false);
  });
});

describe('attemptsPerCall', () => {
  it('is 1 when nothing fails and 1 + retries when everything fails', () => {
    assert.equal(attemptsPerCall(0, { retries: 3 }), 1);
    assert.equal(attemptsPerCall(1, { retries: 3 }), 4);
  });

  it('sums the geometric series in between, and clamps the probability', () => {
    assert.equal(attemptsPerCall(0.5, { retries: 3 }), 1.875);
    assert.equal(attemptsPerCall(2, { retries: 2 }), 3);
    assert.equal(attemptsPerCall(-1, { retries: 2 }), 1);
  });
});

describe('reconnectDelayMs (centrifuge-js backoff)', () => {
  it('starts between 0.5 and 1 s and doubles its spread', () => {
    assert.equal(reconnectDelayMs(0, 0), 500);
    assert.equal(reconnectDelayMs(0, 0.5), 750);
    assert.equal(reconnectDelayMs(1, 0.5), 1000);
    assert.equal(reconnectDelayMs(5, 1), 16_500);
  });

  it('is capped at 20 s', () => {
    assert.equal(reconnectDelayMs(10, 0.99), 20_000);
  });
});

describe('outcome tallies', () => {
  it('keys success as ok and everything else by code or kind', () => {
    assert.equal(outcomeKey(0), 'ok');
    assert.equal(outcomeKey(111), '111');
    assert.equal(outcomeKey('offline'), 'offline');
    const t = newTally();
    for (const o of [0, 0, 111, 'timeout'] as CallOutcome[]) addOutcome(t, o);
    assert.deepEqual(t, { attempts: 4, outcomes: { ok: 2, '111': 1, timeout: 1 } });
  });
});

describe('the load model', () => {
  const o = { clients: 1000, buggyPercent: 10, intervalMs: 2000, buggyFactor: 10, retries: 3 };

  it('computes normal, storm and worst-case demand', () => {
    assert.deepEqual(demandOf(o), {
      buggyClients: 100,
      normalPerSec: 500,
      featurePerSec: 500,
      stormPerSec: 1000,
      worstPerSec: 2500,
    });
  });

  it('counts buggy players, at least one for a positive share', () => {
    assert.equal(buggyCount(200, 10), 20);
    assert.equal(buggyCount(5, 1), 1);
    assert.equal(buggyCount(5, 0), 0);
    assert.equal(buggyCount(5, 100), 5);
  });

  it('marks exactly the buggy count, spread over the population', () => {
    for (const [clients, buggy] of [
      [1000, 100],
      [200, 20],
      [7, 3],
      [10, 0],
      [10, 10],
    ] as const) {
      const marked = Array.from({ length: clients }, (_, i) => i).filter((i) => isBuggy(i, clients, buggy));
      assert.equal(marked.length, buggy, `${clients}/${buggy}`);
    }
    // 10 %: one in every ten, never two neighbours.
    const marked = Array.from({ length: 100 }, (_, i) => isBuggy(i, 100, 10));
    assert.ok(marked.every((b, i) => !(b && marked[i + 1])));
  });

  it('sizes the origin at 1.6× the normal load', () => {
    assert.equal(defaultOriginWorkers(500, 20), 16);
    assert.equal(defaultOriginWorkers(100, 20), 3);
    assert.equal(defaultOriginWorkers(1, 20), 1);
    assert.equal(originCapacity(20, 20), 1000);
  });

  it('sizes queues by the work they hold', () => {
    assert.equal(callsOfWork(200, 50), 10);
    assert.equal(callsOfWork(200, 1), 1);
    const sized = { originWorkers: 4, originServiceMs: 20, originQueueMs: 50, proxyQueueMs: 250 };
    assert.equal(originQueueOf(sized), 10);
    assert.equal(originQueueOf({ ...sized, originQueueMs: 0 }), 0);
    assert.deepEqual(sizedProxy(sized), { max_concurrent: 8, max_queue: 50 });
    // Never more in flight than the origin holds without throttling.
    assert.deepEqual(sizedProxy({ ...sized, originQueueMs: 5 }), { max_concurrent: 5, max_queue: 50 });
  });
});

describe('windows', () => {
  const o = { warmupSeconds: 1, seconds: 6, switchAfterSeconds: 3, settleSeconds: 1 };

  it('split a run into warm-up and storm', () => {
    assert.deepEqual(windowsOf(o, false), [
      { name: 'warmup', fromMs: 0, toMs: 1000 },
      { name: 'storm', fromMs: 1000, toMs: 7000 },
    ]);
  });

  it('split the storm around the kill switch', () => {
    assert.deepEqual(windowsOf(o, true), [
      { name: 'warmup', fromMs: 0, toMs: 1000 },
      { name: 'before', fromMs: 1000, toMs: 4000 },
      { name: 'settle', fromMs: 4000, toMs: 5000 },
      { name: 'after', fromMs: 5000, toMs: 7000 },
    ]);
  });

  it('refuse a switch that leaves no after window', () => {
    assert.throws(() => windowsOf({ ...o, switchAfterSeconds: 5 }, true), /switch-after/);
    assert.throws(() => windowsOf({ ...o, switchAfterSeconds: 0 }, true), /switch-after/);
  });

  it('find the window of a time, start inclusive, end exclusive', () => {
    const w = windowsOf(o, true);
    assert.equal(windowIndex(0, w), 0);
    assert.equal(windowIndex(999.9, w), 0);
    assert.equal(windowIndex(1000, w), 1);
    assert.equal(windowIndex(5000, w), 3);
    assert.equal(windowIndex(7000, w), -1);
    assert.equal(windowIndex(-1, w), -1);
  });
});

describe('summarizeWindow', () => {
  it('turns tallies into success, goodput, latency and origin load', () => {
    const t = newWindowTally();
    for (const o of [0, 0, 0, 111] as CallOutcome[]) addOutcome(t.good, o);
    for (const ms of [10, 20, 30]) t.goodLatency.add(ms);
    addOutcome(t.buggyGame, 0);
    addOutcome(t.buggyGame, 100);
    t.featureCalls = 2;
    for (const o of [111, 111, 111, 111, 0] as CallOutcome[]) addOutcome(t.feature, o);
    t.originByMethod = { 'match.state': 150, 'inbox.sync': 250 };
    t.originThrottled = 40;
    const r = summarizeWindow({ name: 'storm', fromMs: 1000, toMs: 3000 }, t, 100);
    assert.equal(r.seconds, 2);
    assert.equal(r.good.attempts, 4);
    assert.equal(r.good.ok, 3);
    assert.equal(r.good.successPercent, 75);
    assert.equal(r.good.goodputPerSec, 1.5);
    assert.deepEqual(r.good.failures, { '111': 1 });
    assert.equal(r.good.latencyMs.p50, 20);
    assert.equal(r.good.latencyMs.p99, 30);
    assert.equal(r.buggyGame.successPercent, 50);
    assert.equal(r.feature.attemptsPerCall, 2.5);
    assert.deepEqual(r.feature.outcomes, { '111': 4, ok: 1 });
    assert.equal(r.origin.arrivals, 400);
    assert.equal(r.origin.perSec, 200);
    assert.equal(r.origin.loadPercent, 200);
    assert.equal(r.origin.throttled, 40);
  });

  it('reports no success rate (not 0 %, not 100 %) without attempts', () => {
    const r = summarizeWindow({ name: 'after', fromMs: 0, toMs: 1000 }, newWindowTally(), 100);
    assert.ok(Number.isNaN(r.good.successPercent));
    assert.ok(Number.isNaN(r.feature.attemptsPerCall));
  });
});

describe('retryStormChecks', () => {
  const limits = { successPercent: 99, p99Ms: 250, capacityPerSec: 100 };

  function windowResult(name: WindowResult['window'], success: number, p99: number, perSec: number): WindowResult {
    const t = newWindowTally();
    const r = summarizeWindow({ name, fromMs: 0, toMs: 1000 }, t, 100);
    return {
      ...r,
      good: { ...r.good, successPercent: success, latencyMs: { ...r.good.latencyMs, p99 } },
      origin: { ...r.origin, perSec },
    };
  }
  function variant(v: VariantResult['variant'], windows: WindowResult[]): VariantResult {
    return {
      variant: v,
      config: {},
      windows,
      disconnects: { good: {}, buggy: {} },
      reconnects: 0,
      origin: emptyOriginStats(),
      runSeconds: 1,
      proxyLimit: [],
      lagP99Ms: { loadgen: 1, server: 1 },
    };
  }

  it('passes protected variants within the limits and a reproduced storm', () => {
    const storm = windowResult('storm', 60, 900, 300);
    storm.origin.throttled = 500;
    const after = windowResult('after', 100, 40, 80);
    const checks = retryStormChecks(
      [
        variant('unprotected', [storm]),
        variant('defaults', [windowResult('storm', 99.2, 2000, 90)]),
        variant('tuned', [windowResult('storm', 99.5, 120, 95)]),
        variant('kill-switch', [windowResult('before', 50, 900, 100), after]),
      ],
      limits,
    );
    assert.deepEqual(
      checks.map((c) => [c.name, c.pass]),
      [
        ['unprotected: storm reproduced (origin throttled, 503)', true],
        ['defaults, storm: well-behaved success', true],
        ['defaults, storm: origin calls offered', true],
        ['tuned, storm: well-behaved success', true],
        ['tuned, storm: well-behaved p99', true],
        ['tuned, storm: origin calls offered', true],
        ['kill switch, after: well-behaved success', true],
        ['kill switch, after: well-behaved p99', true],
        ['kill switch, after: origin calls offered', true],
        ['kill switch, after: inbox.sync at the origin', true],
      ],
    );
  });

  it('fails what is out of limits', () => {
    const after = windowResult('after', 98, 300, 120);
    after.origin.byMethod = { 'inbox.sync': 3 };
    const checks = retryStormChecks(
      [
        variant('unprotected', [windowResult('storm', 100, 10, 50)]),
        variant('defaults', [windowResult('storm', 62.5, 200, 171)]),
        variant('tuned', [windowResult('storm', 99, 250.1, 100)]),
        variant('kill-switch', [after]),
      ],
      limits,
    );
    const failed = checks.filter((c) => !c.pass).map((c) => c.name);
    assert.deepEqual(failed, [
      'unprotected: storm reproduced (origin throttled, 503)',
      'defaults, storm: well-behaved success',
      'defaults, storm: origin calls offered',
      'tuned, storm: well-behaved p99',
      'kill switch, after: well-behaved success',
      'kill switch, after: well-behaved p99',
      'kill switch, after: origin calls offered',
      'kill switch, after: inbox.sync at the origin',
    ]);
  });

  it('fails a success rate that could not be measured, and a variant that did not run', () => {
    const checks = retryStormChecks([variant('tuned', [windowResult('storm', Number.NaN, 10, 10)])], limits, [
      { variant: 'kill-switch', error: 'boom' },
    ]);
    assert.deepEqual(
      checks.filter((c) => !c.pass).map((c) => c.name),
      ['kill-switch: ran to its end', 'tuned, storm: well-behaved success'],
    );
  });
});

describe('variantConfig', () => {
  const o = {
    rpcRate: 1,
    rpcBurst: 2,
    originWorkers: 4,
    originServiceMs: 20,
    originQueueMs: 50,
    proxyQueueMs: 250,
  } as RetryStormOptions;

  it('turns every protection off in the unprotected variant', () => {
    const c = variantConfig('unprotected', o) as {
      protection: { rate_limit: { connection: { rpc: { rate: number } }; user: { rpc: { rate: number } } } };
      proxy: { max_concurrent: number; adaptive: { enabled: boolean }; breaker: { failure_rate: number } };
    };
    assert.equal(c.protection.rate_limit.connection.rpc.rate, 0);
    assert.equal(c.protection.rate_limit.user.rpc.rate, 0);
    assert.ok(c.proxy.max_concurrent >= 10_000);
    assert.equal(c.proxy.adaptive.enabled, false);
    assert.equal(c.proxy.breaker.failure_rate, 0, 'the breaker off');
  });

  it('leaves the defaults alone and sizes the tuned and kill-switch variants', () => {
    assert.deepEqual(variantConfig('defaults', o), {});
    assert.deepEqual(variantConfig('tuned', o), {
      protection: { rate_limit: { connection: { rpc: { rate: 1, burst: 2 } } } },
      proxy: { max_concurrent: 8, max_queue: 50 },
    });
    assert.deepEqual(variantConfig('kill-switch', o), { proxy: { max_concurrent: 8, max_queue: 50 } });
  });
});

describe('RpcOrigin (retry-storm: workers, queue, then 503)', () => {
  it('decides serve, queue, throttle from busy workers and waiting calls', () => {
    const o = { workers: 2, queueLimit: 1 };
    assert.equal(originFate(0, 0, o), 'serve');
    assert.equal(originFate(1, 0, o), 'serve');
    assert.equal(originFate(2, 0, o), 'queue');
    assert.equal(originFate(2, 1, o), 'throttle');
    assert.equal(originFate(2, 0, { ...o, queueLimit: 0 }), 'throttle');
  });

  it('reads the method of a proxy request', () => {
    const method = (body: string) => methodOf(parseProxyRequest(Buffer.from(body)));
    assert.equal(method('{"client":"c","method":"inbox.sync","data":{}}'), 'inbox.sync');
    assert.equal(method('{"client":"c"}'), '');
    assert.equal(method('not json'), '');
  });

  it('serves one call, queues one, throttles the next, and serves a call whose caller left', async () => {
    const fates: string[] = [];
    const origin = await RpcOrigin.start({
      workers: 1,
      serviceMs: 300,
      queueLimit: 1,
      answer: (req) => ({ result: { data: { method: methodOf(req), ok: true } } }),
      onArrival: ({ method, fate }) => fates.push(`${method}:${fate}`),
    });
    try {
      const post = (method: string, signal?: AbortSignal) =>
        fetch(`${origin.url}/rpc`, { method: 'POST', body: JSON.stringify({ method }), signal });
      const first = post('a');
      assert.ok(await waitFor(() => origin.inFlight === 1, 5000));
      const abort = new AbortController();
      const second = post('b', abort.signal);
      assert.ok(await waitFor(() => origin.inFlight === 2, 5000));
      const third = await post('c');
      assert.equal(third.status, 503);
      abort.abort();
      await assert.rejects(second);
      const res = await first;
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { result: { data: { method: 'a', ok: true } } });
      assert.ok(await waitFor(() => origin.stats().wasted === 1, 5000));
      const s = origin.stats();
      assert.equal(s.calls, 3);
      assert.equal(s.served, 1);
      assert.equal(s.throttled, 1);
      assert.equal(s.maxInFlight, 2);
      assert.equal(s.maxBusy, 1);
      assert.deepEqual(s.callsByMethod, { a: 1, b: 1, c: 1 });
      assert.deepEqual(fates, ['a:serve', 'b:queue', 'c:throttle']);
      assert.equal(origin.capacity, 1000 / 300);
    } finally {
      await origin.close();
    }
  });
});

describe('RpcClient', () => {
  it('reports ok, error codes, timeouts, and the calls a close cuts off with its code', async () => {
    // A scripted server: connect succeeds; rpc "ok" succeeds, "busy" gets 111, "hang" never
    // answers, "kick" closes the connection with 3013.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    wss.on('connection', (ws) => {
      ws.on('message', (data: Buffer) => {
        for (const line of data.toString().split('\n')) {
          const cmd = JSON.parse(line) as { id: number; connect?: object; rpc?: { method: string } };
          if (cmd.connect) ws.send(`{"id":${cmd.id},"connect":{"client":"x"}}`);
          else if (cmd.rpc?.method === 'ok') ws.send(`{"id":${cmd.id},"rpc":{"data":{}}}`);
          else if (cmd.rpc?.method === 'busy') ws.send(`{"id":${cmd.id},"error":{"code":111,"message":"too many"}}`);
          else if (cmd.rpc?.method === 'kick') ws.close(3013, 'too many requests');
        }
      });
    });
    const port = (wss.address() as AddressInfo).port;
    let closedWith: number | undefined;
    const client = new RpcClient(`ws://127.0.0.1:${port}`, (code) => (closedWith = code));
    try {
      await client.connect('u1', 'secret');
      const outcomes: Record<string, RpcOutcome> = {};
      const call = (method: string) => assert.ok(client.send(method, '{}', (outcome) => (outcomes[method] = outcome)));
      call('ok');
      call('busy');
      call('hang');
      assert.ok(await waitFor(() => outcomes.ok !== undefined && outcomes.busy !== undefined, 5000));
      assert.equal(outcomes.ok, 0);
      assert.equal(outcomes.busy, 111);
      assert.equal(client.pending, 1);
      client.expire(performance.now() + 10_000, 5000);
      assert.equal(outcomes.hang, 'timeout');
      call('hang2');
      call('kick');
      assert.ok(await waitFor(() => closedWith !== undefined, 5000));
      assert.equal(closedWith, 3013);
      assert.equal(outcomes.hang2, 'disconnect');
      assert.equal(outcomes.kick, 'disconnect');
      assert.equal(
        client.send('ok', '{}', () => undefined),
        false,
      );
    } finally {
      client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
  });
});
