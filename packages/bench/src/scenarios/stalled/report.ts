/**
 * The stalled-clients report: the three runs side by side, and the verdict's numbers.
 *
 * @module
 */
import { fmt, fmtCounts, formatTable } from '../../harness/format.js';
import { type ScenarioReport } from '../../harness/report.js';
import { type StalledResult, type StalledOptions, type StalledRun } from './types.js';
import { stalledCount } from './run.js';
import { P99_FACTOR, RSS_SHARE } from './verdict.js';

/** stalledTable renders the stalled-clients report. */
export function stalledTable(report: Pick<ScenarioReport<StalledResult>, 'results' | 'options'>): string {
  const o = report.results.bulwark;
  if (!o || !('result' in o)) {
    return `stalled: ${o && 'error' in o ? `ERROR: ${o.error}` : o && 'skipped' in o ? `skipped: ${o.skipped}` : 'not run'}`;
  }
  const { runs, verdict: v } = o.result;
  const opts = report.options as StalledOptions;
  const stalled = stalledCount(opts.subscribers, opts.stalledPercent);
  const col = (label: string, f: (r: StalledRun) => string): string[] => [label, ...runs.map(f)];
  const rows = [
    ['metric', ...runs.map((r) => r.label)],
    col(
      'server RSS baseline → peak → final (MiB)',
      (r) => `${fmt(r.rssMiB.baseline, 1)} → ${fmt(r.rssMiB.peak, 1)} → ${fmt(r.rssMiB.final, 1)}`,
    ),
    col('slow disconnects (metric)', (r) => {
      const t = r.slowDisconnectsBySecond;
      return t.first === null ? fmt(r.slowDisconnects) : `${fmt(r.slowDisconnects)} (by ${t.first}–${t.last} s)`;
    }),
    col('server disconnects by code (metric)', (r) => fmtCounts(r.disconnectsByCode)),
    col('stalled clients saw close code', (r) => (r.stalledClients ? fmtCounts(r.stalledCloseCodes) : '-')),
    col('stalled clients still open', (r) => (r.stalledClients ? fmt(r.stalledStillOpen) : '-')),
    col('healthy delivery p50 / p99 / max (ms)', (r) => {
      const l = r.healthy.latencyMs;
      return `${fmt(l.p50, 1)} / ${fmt(l.p99, 1)} / ${fmt(l.max, 0)}`;
    }),
    col('healthy loss', (r) => `${fmt(r.healthy.loss.missing)} of ${fmt(r.healthy.loss.expected)}`),
    col('publications sent / API errors', (r) => `${fmt(r.healthy.published)} / ${fmt(r.healthy.apiErrors)}`),
    col('server CPU / load generator CPU', (r) => `${fmt(r.serverCpuPercent)}% / ${fmt(r.loadgenCpuPercent)}%`),
  ];
  return [
    `stalled: ${fmt(opts.subscribers - stalled)} healthy subscribers over ${opts.channels} channels + ${stalled} stalled ` +
      `(${opts.stalledPercent}%, subscribed to every channel); ${fmt(opts.publishRate)} API pub/s of ~${fmt(opts.padBytes + 40)} B ` +
      `for ${opts.seconds} s; fresh server per run`,
    formatTable(rows),
    `verdict: healthy p99 in (b) ${fmt(v.p99, 1)} ms ≤ ${fmt(v.p99Ceiling, 1)} ms (${P99_FACTOR}× (a)) and memory the ` +
      `stalled clients add (RSS growth beyond (a)'s) in (b) ${fmt(v.addedRssMiB, 1)} MiB ≤ ${fmt(v.addedRssCeilingMiB, 1)} MiB ` +
      `(${RSS_SHARE * 100}% of (c)'s): ` +
      (v.pass ? 'PASS' : `FAIL (${v.reasons.join('; ')})`),
  ].join('\n');
}
