/**
 * The cold-cache report: the variants side by side.
 *
 * @module
 */
import { fmt, fmtCounts, formatTable } from '../../harness/format.js';
import { type ColdCacheResult, type ColdCacheOptions, VARIANTS } from './types.js';

/** coldCacheTable renders the per-variant table. */
export function coldCacheTable(r: ColdCacheResult, o: ColdCacheOptions): string {
  const header = [
    'variant',
    'origin calls',
    'max/key',
    'peak/s (1 s)',
    'peak/s (100 ms)',
    'origin 503',
    'RPCs ok',
    'failed',
    'wrong',
    'p50 ms',
    'p99 ms',
    'all served s',
  ];
  const rows = r.variants.map((x) => [
    x.variant,
    fmt(x.origin.calls),
    fmt(x.origin.maxPerKey),
    fmt(x.origin.peakPerSec),
    fmt(x.origin.peak100msPerSec),
    fmt(x.origin.rejected),
    `${fmt(x.ok)}/${fmt(x.rpcs)}`,
    fmtCounts(x.failed),
    fmt(x.wrong),
    fmt(x.latencyMs.p50, 1),
    fmt(x.latencyMs.p99, 1),
    fmt(x.serveSeconds, 2),
  ]);
  const lines = [
    `cold-cache: ${o.nodes} cold Bulwark processes × ${fmt(o.clients)} clients; ${fmt(o.keys)} unique keys, each asked ` +
      `${o.asksPerKey}× per process (${fmt(o.nodes * o.keys * o.asksPerKey)} RPCs); origin ${o.serviceMs} ms/call, ` +
      `capacity ${fmt(o.originCapacity)}/s (${o.originConcurrency > 0 ? `503 over ${o.originConcurrency} in flight` : 'no 503'})`,
    `protected: proxy.max_concurrent ${o.maxConcurrent}/node, max_queue ${o.maxQueue} → at most ` +
      `${fmt(r.protectedRateBound)} origin calls/s (${o.nodes} × ${o.maxConcurrent} × ⌈1000/${o.serviceMs}⌉)`,
    '',
    formatTable([header, ...rows]),
    '',
    ...r.variants.map((x) => `  ${x.variant.padEnd(6)} ${VARIANTS[x.variant]}`),
  ];
  return lines.join('\n');
}
