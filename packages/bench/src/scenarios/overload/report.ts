/**
 * The overload report: the table of every run (offered, goodput, shed, latencies, feed) and the
 * goodput-by-offered-load chart.
 *
 * @module
 */
import { fmt, fmtCounts, formatTable } from '../../harness/format.js';
import { type ScenarioReport } from '../../harness/report.js';
import { type Outcomes, resultsOf } from '../../harness/comparison.js';
import { type Chart } from '../../harness/scenario.js';
import { type OverloadResult, type OverloadOptions } from './types.js';
import { HISTORY_CHANNEL, LIVE_CHANNEL } from './run.js';
import { GOODPUT_FLOOR, P99_FACTOR } from './verdict.js';

/** overloadTable renders the overload report. */
export function overloadTable(report: Pick<ScenarioReport<OverloadResult>, 'results' | 'options'>): string {
  const o = report.results.bulwark;
  if (!o || !('result' in o)) {
    return `overload: ${o && 'error' in o ? `ERROR: ${o.error}` : o && 'skipped' in o ? `skipped: ${o.skipped}` : 'not run'}`;
  }
  const r = o.result;
  const c = r.capacity;
  const opts = report.options as OverloadOptions;
  const rows: string[][] = [
    [
      'run',
      'offered/s',
      'goodput/s',
      'shed/s',
      'other err',
      'timeouts',
      'ok p50 / p99 (ms)',
      'shed p99 (ms)',
      'server shed',
      'server lag p99 (ms)',
      'feed p99 (ms) / undelivered',
      'server CPU',
      'pollers closed',
    ],
    ...r.runs.map((run) => [
      `${run.multiplier}× ${run.shedding ? 'shedding' : 'no shedding'}${run.capped ? ' (capped)' : ''}`,
      fmt(run.offeredPerSec),
      fmt(run.goodputPerSec),
      fmt(run.shedPerSec),
      fmt(Object.values(run.otherErrors).reduce((a, b) => a + b, 0)),
      fmt(run.timeouts),
      `${fmt(run.okLatencyMs.p50, 1)} / ${fmt(run.okLatencyMs.p99, 1)}`,
      fmt(run.shedLatencyMs.p99, 1),
      run.server ? fmt(run.server.rejections.overload_read ?? 0) : '-',
      fmt(run.server?.eventLoopLagP99Ms, 0),
      `${fmt(run.feed.latencyMs.p99, 1)} / ${fmt(run.feed.loss.missing)}`,
      `${fmt(run.serverCpuPercent)}%`,
      fmtCounts(run.pollersClosed),
    ]),
  ];
  const v = r.verdict;
  const capped = r.runs.some((run) => run.capped);
  return [
    `overload: ${opts.pollers} pollers × history(${HISTORY_CHANNEL}, limit ${r.page}; ${fmt(r.replyBytes / 1024, 1)} KiB replies), ` +
      `${opts.subscribers} subscribers on ${LIVE_CHANNEL} at ${opts.publishRate} pub/s; ${opts.seconds} s per run, fresh server each`,
    `capacity C = ${fmt(c.perSec)} polls/s (closed loop, ${opts.depth} in flight per poller, shedding off; ` +
      `ok p99 ${fmt(c.okLatencyMs.p99, 1)} ms; server CPU ${fmt(c.serverCpuPercent)}%, load generator ${fmt(c.loadgenCpuPercent)}%; ` +
      `limited by ${c.limitedBy})`,
    formatTable(rows),
    ...(capped
      ? [
          `  (capped): the offered rate was held at --max-offered ${fmt(opts.maxOfferedRate)} polls/s, what one load-generator core ` +
            'can send on time; raise --page to make each poll heavier and C lower',
        ]
      : []),
    `verdict (shedding at ${v.multiplier}×): goodput ${fmt(v.goodput)}/s ≥ ${fmt(v.goodputFloor)}/s (${GOODPUT_FLOOR * 100}% of C) ` +
      `and ok p99 ${fmt(v.p99, 1)} ms ≤ ${fmt(v.p99Ceiling, 1)} ms (${P99_FACTOR}× the 1× p99): ` +
      (v.pass ? 'PASS' : `FAIL (${v.reasons.join('; ')})`),
  ].join('\n');
}

/** overloadCharts: goodput by offered load, with and without shedding. */
export function overloadCharts(outcomes: Outcomes<OverloadResult>): Chart[] {
  return resultsOf(outcomes).map(([, r]) => ({
    title: 'History polls served per second by offered load',
    xLabel: 'offered polls/s',
    yLabel: 'served polls/s',
    series: [true, false].map((on) => ({
      label: on ? 'shedding on' : 'shedding off',
      points: r.runs.filter((x) => x.shedding === on).map((x) => [x.offeredPerSec, x.goodputPerSec]),
    })),
  }));
}
