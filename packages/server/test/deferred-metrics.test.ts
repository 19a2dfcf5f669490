/**
 * The deferred metrics (util/deferred-metrics.ts) against prom-client's own: the same events,
 * counted through cheap children and direct calls mixed, must expose the same series with the
 * same values as plain Counter and Histogram metrics given the same events, at every read (the
 * series may come in another order, and a sum may differ in its last digits: it is added up in
 * another order). This is also the guard on the histogram's use of prom-client's per-label-set
 * entries: a prom-client that keeps them otherwise fails here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { DeferredCounter, DeferredHistogram } from '../src/util/deferred-metrics.js';
import { mulberry32 } from './helpers/prng.js';

/** samples reads an exposition into series → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** assertSameSamples checks two expositions hold the same series and values (sums to 1e-12). */
function assertSameSamples(actual: string, expected: string, what: string): void {
  const [a, e] = [samples(actual), samples(expected)];
  assert.deepEqual([...a.keys()].sort(), [...e.keys()].sort(), what);
  for (const [series, value] of e) {
    const got = a.get(series) as number;
    if (series.includes('_sum')) assert.ok(Math.abs(got - value) <= 1e-12 * Math.abs(value), `${what}: ${series}`);
    else assert.equal(got, value, `${what}: ${series}`);
  }
}

const buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

function pair(): {
  plain: Registry;
  deferred: Registry;
  counters: [Counter<'method' | 'result'>, DeferredCounter<'method' | 'result'>];
  histograms: [Histogram<'method'>, DeferredHistogram<'method'>];
} {
  const plain = new Registry();
  const deferred = new Registry();
  const counter = { name: 'c_total', help: 'c', labelNames: ['method', 'result'] as const };
  const histogram = { name: 'h_seconds', help: 'h', labelNames: ['method'] as const, buckets };
  return {
    plain,
    deferred,
    counters: [
      new Counter({ ...counter, labelNames: [...counter.labelNames], registers: [plain] }),
      new DeferredCounter({ ...counter, labelNames: [...counter.labelNames], registers: [deferred] }),
    ],
    histograms: [
      new Histogram({ ...histogram, labelNames: [...histogram.labelNames], registers: [plain] }),
      new DeferredHistogram({ ...histogram, labelNames: [...histogram.labelNames], registers: [deferred] }),
    ],
  };
}

describe('deferred metrics', () => {
  it('expose what prom-client exposes for the same events, children and direct calls mixed', async () => {
    const { plain, deferred, counters, histograms } = pair();
    const [c, dc] = counters;
    const [h, dh] = histograms;
    const methods = ['publish', 'history', 'info'];
    const results = ['ok', 'error'];
    const countChildren = new Map(
      methods.flatMap((method) => results.map((result) => [`${method}/${result}`, dc.child({ method, result })])),
    );
    const timeChildren = new Map(methods.map((method) => [method, dh.child({ method })]));
    const random = mulberry32(7);
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 2000; i++) {
        const method = methods[Math.floor(random() * methods.length)] as string;
        const result = results[Math.floor(random() * results.length)] as string;
        // Durations over every bucket, on the bounds too, and past the last one.
        const r = random();
        const seconds = r < 0.1 ? (buckets[Math.floor(random() * buckets.length)] as number) : r * r * 8;
        c.inc({ method, result });
        h.observe({ method }, seconds);
        if (random() < 0.9) {
          countChildren.get(`${method}/${result}`)?.inc();
          timeChildren.get(method)?.observe(seconds);
        } else {
          dc.inc({ method, result });
          dh.observe({ method }, seconds);
        }
      }
      assertSameSamples(await deferred.metrics(), await plain.metrics(), `round ${round}`);
      // Read twice: nothing is folded in twice.
      assertSameSamples(await deferred.metrics(), await plain.metrics(), `round ${round}, again`);
    }
  });

  it('a child of a label set never seen directly makes its entry; reset drops what children counted', async () => {
    const { plain, deferred, counters, histograms } = pair();
    const [, dc] = counters;
    const [, dh] = histograms;
    const count = dc.child({ method: 'drain', result: 'ok' });
    const time = dh.child({ method: 'drain' });
    count.inc();
    time.observe(0.003);
    const text = await deferred.metrics();
    assert.match(text, /^c_total\{method="drain",result="ok"\} 1$/m);
    assert.match(text, /^h_seconds_bucket\{le="0.005",method="drain"\} 1$/m);
    assert.match(text, /^h_seconds_sum\{method="drain"\} 0.003$/m);
    count.inc();
    time.observe(0.2);
    deferred.resetMetrics();
    plain.resetMetrics();
    assertSameSamples(await deferred.metrics(), await plain.metrics(), 'after reset');
    assert.throws(() => time.observe(Number.NaN), TypeError);
  });
});
