/**
 * The retry-storm report: the variants' windows side by side, and the charts.
 *
 * @module
 */
import { fmt, fmtCounts, formatTable } from '../../harness/format.js';
import { type Chart, type Series } from '../../harness/scenario.js';
import type { Timeline } from '../../harness/timeline.js';
import { sizedProxy } from './options.js';
import { demandOf, REPORTED, reportedWindow, originQueueOf } from './plan.js';
import {
  type VariantName,
  type RetryStormOptions,
  FEATURE_METHOD,
  type WindowResult,
  type VariantResult,
  type VariantError,
  GAME_METHOD,
} from './types.js';

export const describeVariant = (v: VariantName, o: RetryStormOptions): string => {
  const p = sizedProxy(o);
  switch (v) {
    case 'unprotected':
      return 'rpc rate limits, shedding, proxy concurrency limit and breaker off';
    case 'defaults':
      return 'Bulwark as shipped: rpc 50/s per connection (burst 100), proxy adaptive limit (from 20, ceiling 64) + queue 256, breaker';
    case 'tuned':
      return `rpc ${fmt(o.rpcRate, 1)}/s per connection (burst ${o.rpcBurst}); proxy adaptive limit, ceiling ${p.max_concurrent}, + queue ${p.max_queue}; breaker`;
    case 'kill-switch':
      return `proxy adaptive limit, ceiling ${p.max_concurrent}, + queue ${p.max_queue}, default rate limits; kill_switch_set rpc ${FEATURE_METHOD} ${fmt(o.switchAfterSeconds, 1)} s into the storm`;
  }
};

export function featureCell(w: WindowResult): string {
  const o = w.feature.outcomes;
  if (w.feature.attempts === 0) return '-';
  const known = ['ok', '111', '100', '108'];
  const other = Object.entries(o)
    .filter(([k]) => !known.includes(k))
    .reduce((a, [, n]) => a + n, 0);
  return `${fmt(o.ok ?? 0)} / ${fmt(o['111'] ?? 0)} / ${fmt(o['100'] ?? 0)} / ${fmt(o['108'] ?? 0)} / ${fmt(other)}`;
}

export const failureCell = (f: Record<string, number>): string => fmtCounts(f);

export const nonZero = (counts: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0));

/** retryStormTable renders the results. */
export function retryStormTable(
  o: RetryStormOptions,
  capacity: number,
  variants: readonly VariantResult[],
  errors: readonly VariantError[] = [],
): string {
  const d = demandOf(o);
  const header = [
    'variant / window',
    'good ok/s',
    'good ok %',
    'good p50 / p99 ms',
    'good failures',
    'buggy calls → attempts (×)',
    'inbox.sync ok / 111 / 100 / 108 / other',
    'buggy match.state ok %',
    'origin calls/s (% cap)',
    'origin 503',
  ];
  const rows: string[][] = [header];
  for (const v of variants) {
    for (const name of REPORTED) {
      const w = reportedWindow(v, name);
      if (!w) continue;
      rows.push([
        name === 'storm' ? v.variant : `${v.variant}: ${name}`,
        fmt(w.good.goodputPerSec, 1),
        fmt(w.good.successPercent, 2),
        `${fmt(w.good.latencyMs.p50, 1)} / ${fmt(w.good.latencyMs.p99, 1)}`,
        failureCell(w.good.failures),
        `${fmt(w.feature.calls)} → ${fmt(w.feature.attempts)} (${fmt(w.feature.attemptsPerCall, 2)})`,
        featureCell(w),
        fmt(w.buggyGame.successPercent, 1),
        `${fmt(w.origin.perSec)} (${fmt(w.origin.loadPercent)}%)`,
        fmt(w.origin.throttled),
      ]);
    }
  }
  const detail: string[][] = [
    [
      'variant',
      'run s',
      'origin max in flight / wait ms',
      'origin service ms',
      'origin wasted',
      'proxy limit min / median / max',
      'proxy protections',
      'server refusals',
      'disconnects buggy; good',
      'reconnects',
      'lag p99 ms loadgen / server',
    ],
    ...variants.map((v) => [
      v.variant,
      fmt(v.runSeconds, 1),
      `${fmt(v.origin.maxInFlight)} / ${fmt(v.origin.maxWaitMs)}`,
      fmt(v.origin.meanServiceMs, 1),
      fmt(v.origin.wasted),
      limitCell(v),
      v.server ? fmtCounts(nonZero(v.server.protectedCalls)) : '-',
      v.server ? fmtCounts(nonZero(v.server.rejections)) : '-',
      `${fmtCounts(v.disconnects.buggy)}; ${fmtCounts(v.disconnects.good)}`,
      fmt(v.reconnects),
      `${fmt(v.lagP99Ms.loadgen)} / ${fmt(v.lagP99Ms.server)}`,
    ]),
  ];
  return [
    `retry-storm: ${fmt(o.clients)} players, ${fmt(d.buggyClients)} on the buggy build (${FEATURE_METHOD} at ${o.buggyFactor}× ` +
      `= ${fmt((o.buggyFactor * 1000) / o.intervalMs, 1)}/s each, ${o.retries} immediate retries per failure); everyone calls ` +
      `${GAME_METHOD} every ${fmt(o.intervalMs / 1000, 1)} s ±50 %; ${o.warmupSeconds} s warm-up, ${o.seconds} s storm per variant`,
    `origin: ${o.originWorkers} workers × ${o.originServiceMs} ms = ${fmt(capacity)} calls/s, queue ${originQueueOf(o)} (${o.originQueueMs} ms), then 503; ` +
      `demand: normal ${fmt(d.normalPerSec)}/s (${fmt((d.normalPerSec / capacity) * 100)}% of capacity), storm ${fmt(d.stormPerSec)}/s ` +
      `first attempts (${fmt((d.stormPerSec / capacity) * 100)}%), up to ${fmt(d.worstPerSec)}/s with retries (${fmt((d.worstPerSec / capacity) * 100)}%)`,
    ...variants.map((v) => `  ${v.variant}: ${describeVariant(v.variant, o)}`),
    '',
    formatTable(rows),
    '  good = well-behaved players (match.state, no retries); latency of successful calls; failures by outcome',
    '  (100 temporary, 111 too many requests, offline = due while disconnected); origin calls/s = offered (served, queued or throttled)',
    '',
    formatTable(detail),
    ...errors.map((e) => `  ${e.variant}: ERROR: ${e.error}`),
  ].join('\n');
}

/** limitCell summarises the proxy's concurrency limit over the storm (min / median / max). */
export function limitCell(v: VariantResult, fromSeconds = 0): string {
  const xs = v.proxyLimit
    .filter(([t]) => t >= fromSeconds)
    .map(([, l]) => l)
    .sort((a, b) => a - b);
  if (xs.length === 0) return '-';
  return `${fmt(xs[0] as number)} / ${fmt(xs[xs.length >> 1] as number)} / ${fmt(xs[xs.length - 1] as number)}`;
}

export function charts(
  o: RetryStormOptions,
  variants: readonly VariantResult[],
  timelines: readonly Timeline[],
  capacity: number,
): Chart[] {
  // Buckets after the end hold only the replies of the last calls: left out, they would draw a fall.
  const end = o.warmupSeconds + o.seconds;
  const per = (f: (t: Timeline, v: VariantResult) => Series): Series[] =>
    variants.map((v, i) => {
      const s = f(timelines[i] as Timeline, v);
      return { label: s.label, points: s.points.filter(([x]) => x < end) };
    });
  const origin = per((t, v) => t.rate('origin.arrival', v.variant));
  const switched = variants.find((v) => v.switchAtSeconds !== undefined)?.switchAtSeconds;
  const when = `storm from ${fmt(o.warmupSeconds)} s${switched !== undefined ? `, kill switch at ${fmt(switched, 1)} s` : ''}`;
  return [
    {
      title: `Well-behaved players: successful RPCs per second (${when})`,
      xLabel: 's',
      yLabel: 'ok calls/s',
      series: per((t, v) => t.rate('good.ok', v.variant)),
    },
    {
      title: `Well-behaved players: p99 latency of successful RPCs (${when})`,
      xLabel: 's',
      yLabel: 'ms',
      series: per((t, v) => t.quantile('good.latency', 99, v.variant)),
    },
    {
      title: 'Origin: calls offered per second, against its capacity',
      xLabel: 's',
      yLabel: 'calls/s',
      series: [
        ...origin,
        {
          label: 'capacity',
          points: [
            [0, capacity],
            [end, capacity],
          ],
        },
      ],
    },
    {
      title: `Bulwark: the proxy's concurrency limit to the origin (bulwark_proxy_concurrency_limit; ${when})`,
      xLabel: 's',
      yLabel: 'calls in flight',
      series: [
        // The unprotected variant's fixed 100,000 would flatten every other line.
        ...variants
          .filter((v) => v.variant !== 'unprotected')
          .map((v) => ({ label: v.variant, points: v.proxyLimit.filter(([x]) => x < end) })),
        {
          label: 'origin workers',
          points: [
            [0, o.originWorkers],
            [end, o.originWorkers],
          ],
        },
        {
          label: 'origin holds (workers + queue), then 503',
          points: [
            [0, o.originWorkers + originQueueOf(o)],
            [end, o.originWorkers + originQueueOf(o)],
          ],
        },
      ],
    },
    {
      title: `Buggy build: ${FEATURE_METHOD} attempts per second (retries included)`,
      xLabel: 's',
      yLabel: 'attempts/s',
      series: per((t, v) => t.rate('feature.attempt', v.variant)),
    },
  ];
}
