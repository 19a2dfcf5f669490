/**
 * Tests of the adaptive concurrency limit (issue 12, item 11) on a simulated backend of fixed
 * capacity, deterministic on an injected clock: `workers` calls worked on at once for
 * `serviceMs` each, a FIFO queue of `queue` calls, and past it a 503 answered at once — the
 * shape of the retry-storm scenario's origin (16 × 20 ms = 800 calls/s, 40 queued). Demand
 * always exceeds what the limit lets through, so the limit alone decides what the backend gets.
 * Shown: it converges between the backend's workers and what it holds without a 503, from
 * below and from a ceiling above what it holds; it falls when capacity falls and climbs back
 * when it returns; it follows a backend that became slower at any load; a quiet target does
 * not grow it; a drop cuts it at once. Then the ConcurrencyLimiter that applies it, and its
 * fair queue (the caller with the least recent usage is served first).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdaptiveLimit, type AdaptiveLimitOptions } from '../src/proxy/adaptive-limit.js';
import { CallerUsage, USAGE_HALF_LIFE_MS } from '../src/proxy/caller-usage.js';
import { ConcurrencyLimiter, type Release } from '../src/proxy/concurrency-limiter.js';

/** Backend is the simulated backend's shape; fields may change during a run. */
interface Backend {
  workers: number;
  serviceMs: number;
  queue: number;
}

/** SecondStats is what one simulated second saw. */
interface SecondStats {
  served: number;
  throttled: number;
  /** Highest limit and calls at the backend during the second. */
  maxLimit: number;
  maxAtBackend: number;
  limitAtEnd: number;
}

/**
 * simulate runs `seconds` of saturated demand through an AdaptiveLimit against `backend`, in
 * 1 ms steps; `change(second)` may change the backend at the start of a second; `demand` caps
 * the calls in flight the callers want (default: unlimited).
 */
function simulate(
  backend: Backend,
  seconds: number,
  options: AdaptiveLimitOptions & { max?: number; demand?: number; change?: (s: number) => void },
): SecondStats[] {
  let t = 0;
  const limit = new AdaptiveLimit(options.max ?? 64, { ...options, now: () => t });
  /** Calls at the backend: when each finishes, and whether it was throttled. */
  const working: { done: number; sent: number; inFlight: number }[] = [];
  const waiting: { sent: number; inFlight: number }[] = [];
  const throttledCalls: { done: number; sent: number; inFlight: number }[] = [];
  let inFlight = 0;
  const out: SecondStats[] = [];
  for (let s = 0; s < seconds; s++) {
    options.change?.(s);
    const st: SecondStats = { served: 0, throttled: 0, maxLimit: 0, maxAtBackend: 0, limitAtEnd: 0 };
    for (let ms = 0; ms < 1000; ms++, t++) {
      // Calls that finish now: served ones free a worker for the next queued call.
      for (let i = working.length - 1; i >= 0; i--) {
        const c = working[i]!;
        if (c.done > t) continue;
        working.splice(i, 1);
        inFlight--;
        st.served++;
        limit.record('answer', t - c.sent, c.inFlight);
      }
      for (let i = throttledCalls.length - 1; i >= 0; i--) {
        const c = throttledCalls[i]!;
        if (c.done > t) continue;
        throttledCalls.splice(i, 1);
        inFlight--;
        limit.record('drop', t - c.sent, c.inFlight);
      }
      // Freed workers take the next queued calls (a backend that lost workers takes fewer).
      while (waiting.length > 0 && working.length < backend.workers) {
        working.push({ ...waiting.shift()!, done: t + backend.serviceMs });
      }
      // Send as many calls as the limit allows (and the callers want).
      while (inFlight < limit.limit && inFlight < (options.demand ?? Infinity)) {
        inFlight++;
        const call = { sent: t, inFlight };
        if (working.length < backend.workers) working.push({ ...call, done: t + backend.serviceMs + 1 });
        else if (waiting.length < backend.queue) waiting.push(call);
        else {
          st.throttled++;
          throttledCalls.push({ ...call, done: t + 1 });
        }
      }
      st.maxLimit = Math.max(st.maxLimit, limit.limit);
      st.maxAtBackend = Math.max(st.maxAtBackend, working.length + waiting.length);
    }
    st.limitAtEnd = limit.limit;
    out.push(st);
  }
  return out;
}

const sum = (xs: SecondStats[], f: (s: SecondStats) => number) => xs.reduce((a, s) => a + f(s), 0);

describe('AdaptiveLimit on a simulated backend of fixed capacity', () => {
  const storm = (): Backend => ({ workers: 16, serviceMs: 20, queue: 40 });

  it('converges between the workers and what the backend holds, at ≥ 90 % of capacity, without a 503', () => {
    const run = simulate(storm(), 20, {});
    const settled = run.slice(5);
    assert.equal(
      sum(run, (s) => s.throttled),
      0,
      'never over what the backend holds',
    );
    for (const s of settled) {
      assert.ok(s.limitAtEnd >= 16 && s.limitAtEnd < 56, `limit ${s.limitAtEnd}: between 16 workers and 56 held`);
      assert.ok(s.served >= 720, `${s.served} calls/s served of 800`);
    }
    const limits = settled.map((s) => s.limitAtEnd);
    assert.ok(Math.max(...limits) - Math.min(...limits) <= 6, `steady, not oscillating: ${limits.join(' ')}`);
  });

  it('starting from a ceiling above what the backend holds, stops the 503s within a second', () => {
    const run = simulate(storm(), 10, { initialLimit: 64, max: 64 });
    assert.ok(run[0]!.throttled > 0, 'the 64 first calls overrun 16 workers + 40 queued');
    assert.equal(
      sum(run.slice(1), (s) => s.throttled),
      0,
      `503s per second: ${run.map((s) => s.throttled).join(' ')}`,
    );
    assert.ok(run[9]!.served >= 720, `${run[9]!.served} calls/s served`);
  });

  it('falls when the backend loses capacity and climbs back when it returns', () => {
    const b = storm();
    const run = simulate(b, 30, {
      change: (s) => {
        if (s === 10) b.workers = 4; // 200 calls/s
        if (s === 20) b.workers = 16;
      },
    });
    const low = run.slice(12, 20);
    for (const s of low) assert.ok(s.limitAtEnd <= 12, `limit ${s.limitAtEnd} with 4 workers`);
    assert.ok(sum(low, (s) => s.served) >= 8 * 180, 'still uses the capacity left');
    assert.equal(
      sum(run.slice(11), (s) => s.throttled),
      0,
      'no 503 once it has adapted',
    );
    const back = run.slice(25);
    for (const s of back) {
      assert.ok(s.limitAtEnd >= 16, `limit ${s.limitAtEnd} after capacity returned`);
      assert.ok(s.served >= 720, `${s.served} calls/s served after capacity returned`);
    }
  });

  it('follows a backend that became slower at any load (its no-load round trip rose)', () => {
    const b: Backend = { workers: 1000, serviceMs: 20, queue: 0 };
    const run = simulate(b, 30, { max: 200, change: (s) => s === 5 && (b.serviceMs = 80) });
    // Bulwark's load is not what made it slower: the limit must not stay at its minimum.
    assert.ok(run[29]!.limitAtEnd >= 40, `limit ${run[29]!.limitAtEnd} 25 s after the backend slowed`);
  });

  it('does not grow the limit of a target that never uses half of it', () => {
    const run = simulate(storm(), 10, { demand: 5 });
    assert.equal(run[9]!.maxLimit, 20, 'stays at its initial limit');
  });

  it('cuts the limit at once on a drop that latency had warned of', () => {
    let t = 0;
    const changes: number[] = [];
    const l = new AdaptiveLimit(64, { initialLimit: 40, now: () => t, onChange: (v) => changes.push(v) });
    for (let i = 0; i < 10; i++) l.record('answer', 20, 3); // an unloaded window: baseline 20 ms
    t += 100;
    l.record('answer', 20, 3);
    assert.equal(l.baselineMs, 20);
    for (let i = 0; i < 10; i++) l.record('answer', 40, 40); // twice the baseline: over tolerance
    l.record('drop', 5, 40);
    assert.equal(l.limit, 40, 'the window is not over yet');
    t += 100;
    l.record('ignore', 0, 40);
    assert.equal(l.limit, 36, '40 × 0.9, without smoothing');
    assert.deepEqual(changes, [36]);
  });

  it('probes the baseline at minLimit after a drop latency gave no warning of, then resumes', () => {
    let t = 0;
    const l = new AdaptiveLimit(64, { initialLimit: 50, now: () => t });
    // Started in a storm: every answer queued (60 ms), then the backend throttles.
    for (let i = 0; i < 10; i++) l.record('answer', 60, 50);
    t += 100;
    l.record('answer', 60, 50);
    assert.equal(l.baselineMs, 60, 'learned under load');
    l.record('drop', 1, 50);
    t += 100;
    l.record('ignore', 0, 50);
    assert.equal(l.limit, 4, 'probing at minLimit');
    // Answers of calls sent before the probe do not count; those sent at ≤ 4 in flight do.
    for (let i = 0; i < 20; i++) l.record('answer', 60, 40);
    t += 100;
    for (let i = 0; i < 10; i++) l.record('answer', 21, 4);
    assert.equal(l.baselineMs, 21, 'the no-load round trip');
    assert.equal(l.limit, 46, 'resumes where the drop cut it (51.4 × 0.9; the first window grew it)');
    // The next drop latency warned of (60 ms > 1.5 × 21) cuts without a probe.
    for (let i = 0; i < 10; i++) l.record('answer', 60, 45);
    l.record('drop', 1, 45);
    t += 100;
    l.record('ignore', 0, 45);
    assert.equal(l.limit, 41, '46.3 × 0.9');
  });

  it('rejects invalid options, naming them', () => {
    assert.throws(() => new AdaptiveLimit(0), /maxLimit/);
    assert.throws(() => new AdaptiveLimit(10, { backoff: 1 }), /backoff/);
    assert.throws(() => new AdaptiveLimit(10, { tolerance: 0.5 }), /tolerance/);
    assert.equal(new AdaptiveLimit(3).limit, 3, 'initial and minimum are capped by the ceiling');
  });
});

describe('ConcurrencyLimiter with an adaptive limit', () => {
  it('grants queued callers when the limit grows and holds them back when it falls', async () => {
    let t = 0;
    const l = new ConcurrencyLimiter('t', {
      maxConcurrent: 64,
      maxQueue: 100,
      adaptive: { initialLimit: 4, minLimit: 2, windowMs: 10, minSamples: 1, now: () => t },
    });
    assert.equal(l.limit, 4);
    const held: Release[] = [];
    for (let i = 0; i < 40; i++) void l.acquire().then((r) => held.push(r));
    await new Promise((r) => setImmediate(r));
    assert.equal(held.length, 4);
    assert.equal(l.queued, 36);
    // Fast answers, one per window: the limit grows, and a freed slot lets more than one waiter in.
    for (let i = 0; i < 5; i++) {
      t += 10;
      held.shift()!('answer');
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setImmediate(r));
    assert.ok(l.limit > 4, `limit ${l.limit}`);
    assert.equal(l.inFlight, l.limit, 'every slot of the new limit is handed out');
    assert.equal(held.length, l.limit);
    // A drop lowers the limit: the slot freed above it is not handed on.
    t += 10;
    const before = l.inFlight;
    held.shift()!('drop');
    assert.ok(l.limit < before, `limit ${l.limit} after a drop`);
    assert.equal(l.inFlight, before - 1, 'the freed slot was not handed on');
    while (held.length > 0 || l.queued > 0) {
      for (const r of held.splice(0)) r();
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(l.inFlight, 0);
  });
});

describe('fair queue', () => {
  it('serves the waiting call of the caller with the least recent usage first; equals in arrival order', async () => {
    const l = new ConcurrencyLimiter('t', { maxConcurrent: 1, maxQueue: 10, fair: true });
    const order: string[] = [];
    const held: Release[] = [];
    const take = (caller: string) =>
      l.acquire(undefined, caller).then((r) => {
        order.push(caller);
        held.push(r);
      });
    const settle = () => new Promise((r) => setImmediate(r));
    // The heavy caller had 5 slots lately; the light callers none.
    for (let i = 0; i < 5; i++) {
      await take('heavy');
      held.pop()!();
    }
    order.length = 0;
    await take('heavy');
    const waiting = [take('heavy'), take('light-1'), take('heavy'), take('light-2')];
    while (held.length > 0) {
      held.pop()!();
      await settle();
    }
    await Promise.all(waiting);
    assert.deepEqual(order, ['heavy', 'light-1', 'light-2', 'heavy', 'heavy']);
  });

  it('forgets callers: usage halves every half-life and idle callers leave the map', () => {
    let t = 0;
    const u = new CallerUsage(() => t);
    u.charge('a');
    u.charge('a');
    t += USAGE_HALF_LIFE_MS;
    assert.equal(u.score('a'), 1);
    for (let i = 0; i < 5000; i++) u.charge(`player-${i}`);
    t += 20 * USAGE_HALF_LIFE_MS;
    for (let i = 0; i < 5000; i++) u.charge('b');
    assert.ok(u.size <= 2, `${u.size} callers remembered after they went quiet`);
  });
});
