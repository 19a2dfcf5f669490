/**
 * The delta scenario's table: each run's bytes and CPU per delivery, and delta against full.
 *
 * @module
 */
import { fmt, formatTable } from '../../harness/format.js';
import { type ScenarioReport } from '../../harness/report.js';
import { type DeltaOptions, type DeltaResult, type DeltaRun } from './types.js';

/** deltaTable renders the report. */
export function deltaTable(report: Pick<ScenarioReport<DeltaResult>, 'results' | 'options'>): string {
  const o = report.results.bulwark;
  if (!o || !('result' in o)) {
    return `delta: ${o && 'error' in o ? `ERROR: ${o.error}` : o && 'skipped' in o ? `skipped: ${o.skipped}` : 'not run'}`;
  }
  const { runs, comparisons } = o.result;
  const opts = report.options as DeltaOptions;
  const col = (label: string, f: (r: DeltaRun) => string): string[] => [label, ...runs.map(f)];
  const rows = [
    ['metric', ...runs.map((r) => r.label)],
    col('publication data (B)', (r) => fmt(r.dataBytes)),
    col('delivered / expected', (r) => `${fmt(r.delivered)} / ${fmt(r.expectedDeliveries)}`),
    col('as deltas', (r) => (r.deltaDeliveries < 0 ? '-' : fmt(r.deltaDeliveries))),
    col('wire bytes per delivery', (r) => fmt(r.wireBytesPerDelivery, 1)),
    col('server CPU per delivery (µs)', (r) => fmt(r.serverCpuMicrosPerDelivery, 2)),
    col('server CPU / load generator CPU', (r) => `${fmt(r.serverCpuPercent)}% / ${fmt(r.loadgenCpuPercent)}%`),
  ];
  return [
    `delta: ${fmt(opts.subscribers)} subscribers over ${opts.channels} board channels (${opts.cells} cells each), ` +
      `${fmt(opts.rate)} pub/s for ${opts.seconds} s; fresh server per run`,
    formatTable(rows),
    ...comparisons.map(
      (c) =>
        `${c.format}: delta / full — wire bytes per delivery ${fmt(c.bytesRatio, 3)}×, server CPU per delivery ${fmt(c.cpuRatio, 2)}×`,
    ),
  ].join('\n');
}
