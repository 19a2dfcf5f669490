/**
 * Tests of protected backend calls (incident 4): the circuit breaker and the concurrency
 * limiter on their own (injected clock, no I/O), then ProtectedTarget against a real HTTP
 * origin on loopback with real fetch: deadline with the request really cancelled, overflow
 * refused fast, breaker opening, failing fast, probing and recovering, error classification
 * and the kill-switch hook.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CircuitBreaker } from '../src/proxy/circuit-breaker.js';
import type { BreakerState } from '../src/proxy/circuit-breaker.js';
import { ConcurrencyLimiter } from '../src/proxy/concurrency-limiter.js';
import {
  CircuitOpenError,
  OriginError,
  ProxyError,
  ProxyKilledError,
  ProxyOverloadedError,
  ProxyTimeoutError,
} from '../src/proxy/errors.js';
import { ProtectedTarget } from '../src/proxy/protected-call.js';
import type { CallOutcome } from '../src/proxy/protected-call.js';
import { waitFor } from './conformance/broker.case.js';
import { OriginServer } from './helpers/origin.js';

/** A clock the test moves by hand. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('CircuitBreaker', () => {
  it('opens once the window holds minRequests calls and the failure rate reaches the threshold', () => {
    const clock = manualClock();
    const b = new CircuitBreaker('t', { minRequests: 4, failureRateThreshold: 0.5, now: clock.now });
    b.acquire().done('failure');
    b.acquire().done('failure');
    assert.equal(b.state, 'closed', '2 failures of 2 calls: too few calls to judge');
    b.acquire().done('success');
    assert.equal(b.state, 'closed', 'a success is never what opens it');
    b.acquire().done('failure');
    assert.equal(b.state, 'open', '3 failures of 4 calls');
    assert.throws(() => b.acquire(), CircuitOpenError);
  });

  it('forgets calls that slid out of the rolling window', () => {
    const clock = manualClock();
    const b = new CircuitBreaker('t', { minRequests: 3, windowMs: 1000, windowBuckets: 10, now: clock.now });
    b.acquire().done('failure');
    b.acquire().done('failure');
    clock.advance(1000);
    b.acquire().done('failure');
    assert.equal(b.state, 'closed', 'the first two failures are out of the window: 1 call in it');
    b.acquire().done('failure');
    b.acquire().done('failure');
    assert.equal(b.state, 'open');
  });

  it('ignores results of calls permitted before the last state change', () => {
    const clock = manualClock();
    const b = new CircuitBreaker('t', { minRequests: 1, openMs: 100, now: clock.now });
    const slow = b.acquire();
    b.acquire().done('failure');
    assert.equal(b.state, 'open');
    clock.advance(100);
    assert.equal(b.state, 'half_open');
    slow.done('failure');
    assert.equal(b.state, 'half_open', 'a failure from before it opened does not reopen it');
    const probe = b.acquire();
    probe.done('success');
    probe.done('failure');
    assert.equal(b.state, 'closed', 'only the first report of a permit counts');
  });

  it('is off with a failure rate threshold of 0: every call passes, however many fail', () => {
    const b = new CircuitBreaker('t', { failureRateThreshold: 0, minRequests: 1 });
    for (let i = 0; i < 100; i++) b.acquire().done('failure');
    assert.equal(b.state, 'closed');
  });

  it('rejects invalid options, naming them', () => {
    assert.throws(() => new CircuitBreaker('t', { failureRateThreshold: -0.1 }), /failureRateThreshold/);
    assert.throws(() => new CircuitBreaker('t', { failureRateThreshold: 1.5 }), /failureRateThreshold/);
    assert.throws(() => new CircuitBreaker('t', { halfOpenProbes: 0.5 }), /halfOpenProbes/);
  });
});

describe('ConcurrencyLimiter', () => {
  it('grants slots in arrival order and refuses at once when the queue is full', async () => {
    const limiter = new ConcurrencyLimiter('t', { maxConcurrent: 1, maxQueue: 2 });
    const order: number[] = [];
    const first = await limiter.acquire();
    const waiting = [1, 2].map((i) => limiter.acquire().then((release) => (order.push(i), release)));
    await assert.rejects(limiter.acquire(), ProxyOverloadedError);
    assert.deepEqual([limiter.inFlight, limiter.queued], [1, 2]);
    first();
    first(); // a second release gives nothing back
    const second = await waiting[0]!;
    assert.deepEqual([limiter.inFlight, limiter.queued], [1, 1]);
    second();
    (await waiting[1]!)();
    assert.deepEqual(order, [1, 2]);
    assert.deepEqual([limiter.inFlight, limiter.queued], [0, 0]);
  });

  it('removes a caller whose signal aborts while it waits', async () => {
    const limiter = new ConcurrencyLimiter('t', { maxConcurrent: 1, maxQueue: 1 });
    const release = await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal);
    controller.abort(new Error('gave up'));
    await assert.rejects(waiting, /gave up/);
    assert.equal(limiter.queued, 0);
    release();
    assert.equal(limiter.inFlight, 0, 'the slot went back, not to the caller that left');
  });

  it('rejects invalid options, naming them', () => {
    assert.throws(() => new ConcurrencyLimiter('t', { maxConcurrent: 0 }), /maxConcurrent/);
    assert.throws(() => new ConcurrencyLimiter('t', { maxQueue: -1 }), /maxQueue/);
  });
});

describe('ProtectedTarget against a real origin', () => {
  let origin: OriginServer;

  before(async () => {
    origin = await OriginServer.start();
  });
  after(() => origin.close());
  beforeEach(() => {
    origin.delayMs = 0;
    origin.failure = undefined;
    origin.capacity = undefined;
    origin.resetCounters();
  });

  /** getJson is the call a proxy makes: fetch with the signal, non-2xx classified by status. */
  function getJson(target: ProtectedTarget, path: string): (signal: AbortSignal) => Promise<unknown> {
    return async (signal) => {
      const res = await fetch(`${origin.url}${path}`, { signal });
      const text = await res.text();
      if (!res.ok) throw OriginError.fromStatus(target.name, res.status);
      return JSON.parse(text) as unknown;
    };
  }

  it('passes the answer through and counts it', async () => {
    const target = new ProtectedTarget('origin');
    assert.deepEqual(await target.call(getJson(target, '/a')), { path: '/a', call: 1 });
    const stats = target.stats();
    assert.equal(stats.outcomes.ok, 1);
    assert.deepEqual([stats.inFlight, stats.queued, stats.breaker], [0, 0, 'closed']);
  });

  it('lets the concurrency limit keep a capacity-limited origin within its capacity', async () => {
    origin.capacity = 2;
    origin.delayMs = 100;
    const loose = new ProtectedTarget('loose', { maxConcurrent: 10 });
    const results = await Promise.allSettled([1, 2, 3, 4].map((i) => loose.call(getJson(loose, `/c/${i}`))));
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
    assert.equal(refused.length, 2);
    for (const err of refused) assert.ok(err instanceof OriginError && err.status === 503 && err.temporary);
    assert.equal(origin.rejected, 2);

    const tight = new ProtectedTarget('tight', { maxConcurrent: 2 });
    await Promise.all([1, 2, 3, 4].map((i) => tight.call(getJson(tight, `/c/${i}`))));
    assert.equal(origin.rejected, 2, 'no more 503s: the extra calls waited for a slot instead');
  });

  it('sends what the caller sends: the origin records the request and may answer from it', async () => {
    origin.route('/rpc/add', (req) => {
      const { a, b } = req.body as { a: number; b: number };
      return { body: { result: a + b } };
    });
    const target = new ProtectedTarget('rpc');
    const reply = await target.call(async (signal) => {
      const res = await fetch(`${origin.url}/rpc/add`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ a: 2, b: 3 }),
        signal,
      });
      return res.json();
    });
    assert.deepEqual(reply, { result: 5 });
    const seen = origin.lastRequest('/rpc/add');
    assert.deepEqual(
      [seen?.method, seen?.headers['content-type'], seen?.body],
      ['POST', 'application/json', { a: 2, b: 3 }],
    );
  });

  it('times out with a temporary error, and the origin sees the request aborted', async () => {
    origin.delayMs = 5000;
    const target = new ProtectedTarget('slow', { timeoutMs: 100 });
    await assert.rejects(target.call(getJson(target, '/slow')), (err: unknown) => {
      assert.ok(err instanceof ProxyTimeoutError);
      assert.deepEqual([err.code, err.temporary, err.queued, err.target], ['timeout', true, false, 'slow']);
      return true;
    });
    await waitFor(() => origin.aborted === 1);
    assert.equal(origin.inFlight, 0, 'the origin is no longer working on it');
    assert.equal(target.stats().outcomes.timeout, 1);
    assert.equal(target.stats().inFlight, 0);
  });

  it('answers a call over the limit with a full queue at once (< 50 ms) while the origin is slow', async () => {
    origin.delayMs = 300;
    const target = new ProtectedTarget('limited', { maxConcurrent: 2, maxQueue: 2, timeoutMs: 5000 });
    const admitted = [1, 2, 3, 4].map((i) => target.call(getJson(target, `/k/${i}`)));
    await waitFor(() => origin.inFlight === 2 && target.stats().queued === 2);

    const started = performance.now();
    await assert.rejects(target.call(getJson(target, '/k/5')), (err: unknown) => {
      assert.ok(err instanceof ProxyOverloadedError);
      assert.deepEqual([err.code, err.temporary], ['overloaded', true]);
      return true;
    });
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 50, `overflow answered in ${elapsed.toFixed(1)} ms`);

    assert.equal((await Promise.all(admitted)).length, 4, 'the queued calls ran once slots freed');
    assert.equal(origin.callsTo('/k/5'), 0, 'the refused call never reached the origin');
    assert.equal(origin.maxInFlight, 2);
    assert.deepEqual([target.stats().outcomes.ok, target.stats().outcomes.overloaded], [4, 1]);
  });

  it('times out a call still queued for a slot without counting it against the breaker', async () => {
    const target = new ProtectedTarget('queued', { maxConcurrent: 1, timeoutMs: 150, breaker: { minRequests: 2 } });
    let finish: () => void = () => {};
    const ignoresSignal = new Promise<void>((resolve) => (finish = resolve));
    const first = target.call(() => ignoresSignal);
    const second = target.call(getJson(target, '/second'));
    await assert.rejects(first, (err: unknown) => err instanceof ProxyTimeoutError && !err.queued);
    await assert.rejects(second, (err: unknown) => err instanceof ProxyTimeoutError && err.queued);
    assert.equal(origin.callsTo('/second'), 0);
    // The first timeout is a failure (1 of 1 call); had the queued one counted too, 2 of 2 would open it.
    assert.equal(target.stats().breaker, 'closed', 'a call that never reached the origin says nothing of its health');
    assert.equal(target.stats().inFlight, 1, 'a call that ignores its signal keeps its slot until it settles');
    finish();
    await waitFor(() => target.stats().inFlight === 0);
    assert.equal(target.stats().outcomes.timeout, 2);
  });

  it('does not count against the breaker a call whose deadline went on waiting for a slot', async () => {
    // Each call's deadline is 400 ms; the first holds the only slot 250 ms, so the second gets it
    // with ~150 ms left and times out in flight: Bulwark's queue spent its deadline, not the backend.
    origin.delayMs = 250;
    const target = new ProtectedTarget('waited', { maxConcurrent: 1, timeoutMs: 400, breaker: { minRequests: 1 } });
    const first = target.call(getJson(target, '/first'));
    const second = target.call(getJson(target, '/second'));
    assert.ok(await first);
    await assert.rejects(second, (err: unknown) => err instanceof ProxyTimeoutError && !err.queued);
    assert.equal(origin.callsTo('/second'), 1, 'it did reach the origin');
    assert.equal(target.stats().breaker, 'closed', '1 failure of 2 calls with minRequests 1 would open it');
  });

  it('opens the breaker on failures, fails fast while open, probes, reopens, then recovers', async () => {
    const clock = manualClock();
    const transitions: string[] = [];
    const target = new ProtectedTarget('flaky', {
      breaker: {
        minRequests: 4,
        failureRateThreshold: 0.5,
        openMs: 1000,
        now: clock.now,
        onStateChange: (from: BreakerState, to: BreakerState) => transitions.push(`${from}>${to}`),
      },
    });
    const call = (): Promise<unknown> => target.call(getJson(target, '/flaky'));

    origin.failure = { status: 500 };
    for (let i = 0; i < 4; i++) {
      await assert.rejects(call(), (err: unknown) => {
        assert.ok(err instanceof OriginError);
        assert.deepEqual([err.code, err.temporary, err.status], ['origin_error', true, 500]);
        return true;
      });
    }
    assert.equal(target.stats().breaker, 'open');

    for (let i = 0; i < 10; i++) await assert.rejects(call(), CircuitOpenError);
    assert.equal(origin.calls, 4, 'while open, calls never reach the origin');

    clock.advance(1000);
    assert.equal(target.stats().breaker, 'half_open');
    await assert.rejects(call(), OriginError);
    assert.equal(target.stats().breaker, 'open', 'a failed probe reopens it');
    assert.equal(origin.calls, 5);

    clock.advance(1000);
    origin.failure = undefined;
    origin.delayMs = 100;
    const probe = call();
    await waitFor(() => origin.inFlight === 1);
    await assert.rejects(call(), CircuitOpenError, 'one probe at a time while half-open');
    await probe;
    assert.equal(target.stats().breaker, 'closed');
    origin.delayMs = 0;
    await call();
    assert.deepEqual(transitions, [
      'closed>open',
      'open>half_open',
      'half_open>open',
      'open>half_open',
      'half_open>closed',
    ]);
    const { outcomes } = target.stats();
    assert.deepEqual([outcomes.ok, outcomes.origin_error, outcomes.circuit_open], [2, 5, 11]);
  });

  it('classifies a reset connection as temporary and a 404 as final (not a breaker failure)', async () => {
    const target = new ProtectedTarget('classify', { breaker: { minRequests: 2 } });
    origin.notFound('/missing');
    for (let i = 0; i < 3; i++) {
      await assert.rejects(target.call(getJson(target, '/missing')), (err: unknown) => {
        assert.ok(err instanceof OriginError);
        assert.deepEqual([err.temporary, err.status], [false, 404]);
        return true;
      });
    }
    assert.equal(target.stats().breaker, 'closed', 'the origin answered: it is healthy');

    origin.failure = 'reset';
    await assert.rejects(target.call(getJson(target, '/reset')), (err: unknown) => {
      assert.ok(err instanceof OriginError);
      assert.deepEqual([err.temporary, err.status], [true, undefined]);
      return true;
    });
    await assert.rejects(target.call(getJson(target, '/reset')), OriginError);
    assert.equal(target.stats().breaker, 'open', 'connection failures are breaker failures');
  });

  it('refuses with the kill switch reason, final, before calling the origin; a call may bring its own switch', async () => {
    let reason: string | undefined = 'inventory is being migrated';
    const outcomes: CallOutcome[] = [];
    const target = new ProtectedTarget('rpc', { killSwitch: () => reason, onOutcome: (o) => outcomes.push(o) });
    await assert.rejects(target.call(getJson(target, '/rpc')), (err: unknown) => {
      assert.ok(err instanceof ProxyKilledError && err instanceof ProxyError);
      assert.deepEqual([err.code, err.temporary, err.reason], ['killed', false, 'inventory is being migrated']);
      return true;
    });
    assert.equal(origin.calls, 0);
    await target.call(getJson(target, '/rpc'), { killSwitch: () => undefined });
    reason = undefined;
    await assert.rejects(target.call(getJson(target, '/rpc'), { killSwitch: () => 'method off' }), /method off/);
    await target.call(getJson(target, '/rpc'));
    assert.deepEqual(outcomes, ['killed', 'ok', 'killed', 'ok']);
    assert.equal(origin.calls, 2);
  });

  it('rejects invalid options, naming them', () => {
    assert.throws(() => new ProtectedTarget('t', { timeoutMs: 0 }), /timeoutMs/);
    assert.throws(() => new ProtectedTarget('t', { maxConcurrent: 0 }), /maxConcurrent/);
  });
});
