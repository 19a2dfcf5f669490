/**
 * The neighbour report: both variants side by side, the verdict and what the lag-only variant
 * showed, and the charts over each variant's window.
 *
 * @module
 */
import { fmt, fmtCounts, formatTable, p50p99 } from '../../harness/format.js';
import { type ScenarioReport } from '../../harness/report.js';
import { type Chart, type Series } from '../../harness/scenario.js';
import { type VariantTrace } from './run.js';
import { type NeighbourOptions, type NeighbourResult, type NeighbourVariant } from './types.js';

/** neighbourTable renders the neighbour report. */
export function neighbourTable(report: Pick<ScenarioReport<NeighbourResult>, 'results' | 'options'>): string {
  const o = report.results.bulwark;
  if (!o || !('result' in o)) {
    return `neighbour: ${o && 'error' in o ? `ERROR: ${o.error}` : o && 'skipped' in o ? `skipped: ${o.skipped}` : 'not run'}`;
  }
  const { variants, verdict: v } = o.result;
  const opts = report.options as NeighbourOptions;
  const col = (label: string, f: (r: NeighbourVariant) => string): string[] => [label, ...variants.map(f)];
  const rows = [
    ['metric', ...variants.map((r) => r.label)],
    col('protection.shedding', (r) => JSON.stringify(r.shedding)),
    col('probes / completed', (r) => `${fmt(r.attempts)} / ${fmt(r.completed)}`),
    col(
      'upgrades refused',
      (r) => `${fmt(r.refusedUpgrades)}${r.refusedUpgrades ? ` (${fmtCounts(r.refusedByStatus)})` : ''}`,
    ),
    col('history reads refused (111)', (r) => fmt(r.refusedReads)),
    col('failed otherwise', (r) => (r.failed ? `${fmt(r.failed)} (${fmtCounts(r.failedByKind)})` : '0')),
    col('handshake p50 / p99 (ms)', (r) => p50p99(r.handshakeMs)),
    col('history p50 / p99 (ms)', (r) => p50p99(r.historyMs)),
    col('shedding turned on (/metrics)', (r) => fmtCounts(r.sheddingStarted).replace(/^-$/, '0')),
    col('shedding on at (server log: level lag, utilization)', (r) =>
      r.sheddingLog.length
        ? r.sheddingLog.map((l) => `${l.level} ${fmt(l.lagMs)} ms, ${fmt(l.utilization, 2)}`).join('; ')
        : '-',
    ),
    col('overload rejections (/metrics)', (r) => fmtCounts(r.overloadRejections).replace(/^-$/, '0')),
    col(
      'server lag p99 per 1 s: median / max (ms)',
      (r) => `${fmt(r.serverLagP99Ms.median, 1)} / ${fmt(r.serverLagP99Ms.max, 1)}`,
    ),
    col('server CPU / load generator CPU', (r) => `${fmt(r.serverCpuPercent, 1)}% / ${fmt(r.loadgenCpuPercent, 1)}%`),
    col('hogs running / their CPU (all)', (r) => `${fmt(r.hogsRunning)} / ${fmt(r.hogsCpuPercent)}%`),
  ];
  const where = opts.hogsCpu === null ? 'unpinned' : `pinned to the server's CPU ${opts.hogsCpu}`;
  return [
    `neighbour: ${opts.hogs} CPU hogs (${where}) beside an idle Bulwark; ${fmt(opts.rate, 1)} probes/s ` +
      `(upgrade, connect, subscribe, history of ${opts.historySize}) for ${opts.seconds} s per variant; ` +
      `thresholds connect_lag ${opts.connectLag}, read_lag ${opts.readLag}; fresh server per variant`,
    formatTable(rows),
    `verdict (default variant refuses no one): ${v.pass ? 'PASS' : `FAIL (${v.reasons.join('; ')})`}`,
    `lag-only variant (reported, not judged): ${v.lagOnlyNote}`,
  ].join('\n');
}

/** neighbourCharts draws each variant's window (x: seconds since its window opened). */
export function neighbourCharts(traces: readonly VariantTrace[], o: NeighbourOptions): Chart[] {
  const end = Math.max(o.seconds, ...traces.flatMap((t) => t.lagMs.map(([x]) => x)));
  const line = (label: string, y: number): Series => ({
    label,
    points: [
      [0, y],
      [end, y],
    ],
  });
  return [
    {
      title: 'Server event-loop lag p99 (per 1 s scrape) and the shedding thresholds',
      xLabel: 's',
      yLabel: 'ms',
      series: [
        ...traces.map((t) => ({ label: `${t.label}: lag p99`, points: t.lagMs })),
        line(`connect_lag ${o.connectLag}`, o.connectLagMs),
        line(`read_lag ${o.readLag}`, o.readLagMs),
      ],
    },
    {
      title: 'Probes and refusals per second',
      xLabel: 's',
      yLabel: 'per second',
      series: traces.flatMap((t) => [
        t.prober.tl.rate('attempt', `${t.label}: probes/s`),
        t.prober.tl.rate('refused-upgrade', `${t.label}: upgrades refused/s`),
        t.prober.tl.rate('refused-read', `${t.label}: reads refused/s (111)`),
      ]),
    },
    {
      title: 'Handshake (probe start → subscribed) and history read p99',
      xLabel: 's',
      yLabel: 'ms',
      series: traces.flatMap((t) => [
        t.prober.tl.quantile('handshake', 99, `${t.label}: handshake p99`),
        t.prober.tl.quantile('history', 99, `${t.label}: history p99`),
      ]),
    },
    {
      title: 'Server CPU',
      xLabel: 's',
      yLabel: '% of a core',
      series: traces.map((t) => ({ label: t.label, points: t.cpuPercent })),
    },
  ];
}
