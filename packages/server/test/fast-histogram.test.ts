/**
 * FastHistogram against prom-client's own Histogram: the same observations, the same
 * /metrics text and JSON, byte for byte (default labels too), and a reset empties both.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { FastHistogram } from '../src/util/fast-histogram.js';

const buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const help = 'Duration of things by method.';

/** twin builds a prom-client Histogram and a FastHistogram of one name, each in its own registry. */
function twin(): { stock: Registry; fast: Registry; h: Histogram<'method'>; f: FastHistogram } {
  const stock = new Registry();
  const fast = new Registry();
  stock.setDefaultLabels({ node: 'n1' });
  fast.setDefaultLabels({ node: 'n1' });
  const name = 'bulwark_test_duration_seconds';
  const h = new Histogram({ name, help, labelNames: ['method'], buckets, registers: [stock] });
  const f = new FastHistogram({ name, help, labelName: 'method', buckets, registers: [fast] });
  return { stock, fast, h, f };
}

it('exports what prom-client exports for the same observations (text and JSON)', async () => {
  const { stock, fast, h, f } = twin();
  // Every bucket, the boundaries themselves (le is inclusive), above the last one, and zero.
  const values = [0, 0.0005, 0.0007, 0.001, 0.003, 0.01, 0.2, 0.25, 1, 4.9, 5, 7, 120];
  for (const [i, v] of values.entries()) {
    const method = ['connect', 'subscribe', 'publish'][i % 3] as string;
    h.labels({ method }).observe(v);
    f.cell(method).observe(v);
  }
  assert.equal(await fast.metrics(), await stock.metrics());
  assert.deepEqual(await fast.getMetricsAsJSON(), await stock.getMetricsAsJSON());
  assert.match(await fast.metrics(), /_bucket\{le="0\.001",[^}]*method="connect"[^}]*\} 2\n/);
});

it('keeps a cell across a reset and counts into it again', async () => {
  const { stock, fast, h, f } = twin();
  const cell = f.cell('connect');
  cell.observe(0.002);
  h.labels({ method: 'connect' }).observe(0.002);
  stock.resetMetrics();
  fast.resetMetrics();
  cell.observe(0.3);
  h.labels({ method: 'connect' }).observe(0.3);
  assert.equal(await fast.metrics(), await stock.metrics());
  assert.match(await fast.metrics(), /_count\{[^}]*method="connect"[^}]*\} 1\n/);
});

it('exports no series before the first observation, as prom-client does', async () => {
  const { stock, fast } = twin();
  assert.equal(await fast.metrics(), await stock.metrics());
});
