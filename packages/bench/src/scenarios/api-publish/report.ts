/**
 * The api-publish report: one column per run (the HTTP floor, Bulwark's `/api/publish`, its
 * `/api/batch`) with throughput, latency, errors, the CPU of both sides and which one
 * saturated; the ratios to the floor under it; and the chart of publishes acknowledged per
 * second of each window.
 *
 * @module
 */
import { fmt, formatTable } from '../../harness/format.js';
import type { TargetOutcome } from '../../harness/report.js';
import type { Chart } from '../../harness/scenario.js';
import { API_RUNS, type ApiPublishOptions, type ApiRunName, type ApiRunResult } from './types.js';
import type { ApiOutcomes, ApiRatio } from './verdict.js';

/** A server main thread waiting for a CPU this share of the window or more: its CPU was contended. */
const CONTENDED_PERCENT = 10;

/** The column heads of the runs. */
const RUN_LABELS: Record<ApiRunName, string> = {
  floor: 'node http floor',
  bulwark: 'bulwark /api/publish',
  batch: 'bulwark /api/batch',
};

function cell(o: TargetOutcome<ApiRunResult> | undefined, f: (r: ApiRunResult) => string): string {
  if (!o) return '(not run)';
  if ('skipped' in o) return '(skipped)';
  if ('error' in o) return '(error)';
  return f(o.result);
}

/** ratioLine is one ratio as a sentence: value, and the target with its verdict when it has one. */
export function ratioLine(r: ApiRatio): string {
  const value = Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}×` : String(r.ratio);
  const target = r.target === undefined ? ' (informational)' : ` (target ≥ ${r.target}×: ${r.met ? 'met' : 'NOT met'})`;
  return `${r.name}: ${value}${target}`;
}

/** apiPublishTable renders the report. */
export function apiPublishTable(
  outcomes: ApiOutcomes,
  ratios: readonly ApiRatio[],
  o: Pick<ApiPublishOptions, 'runs' | 'connections' | 'channels' | 'seconds' | 'warmupSeconds' | 'historySize'>,
): string {
  const runs = API_RUNS.filter((r) => o.runs.includes(r));
  const row = (label: string, f: (r: ApiRunResult) => string): string[] => [
    label,
    ...runs.map((run) => cell(outcomes[run], f)),
  ];
  const withSubscribers = runs.some((run) => {
    const x = outcomes[run];
    return x !== undefined && 'result' in x && x.result.delivered !== undefined;
  });
  const rows: string[][] = [
    ['metric', ...runs.map((r) => RUN_LABELS[r])],
    row('requests', (r) => r.requestKind),
    row('requests/s', (r) => fmt(r.requestsPerSec)),
    row('publishes/s', (r) => fmt(r.publishesPerSec)),
    row(
      'latency p50 / p99 / max (ms)',
      (r) => `${fmt(r.latencyMs.p50, 2)} / ${fmt(r.latencyMs.p99, 2)} / ${fmt(r.latencyMs.max, 1)}`,
    ),
    row('errors', (r) => fmt(r.errors)),
    row('channels with offset ≠ acknowledged', (r) => fmt(r.offsetMismatches)),
    ...(withSubscribers
      ? [
          row('delivered / acknowledged', (r) =>
            r.delivered === undefined ? '-' : `${fmt(r.delivered)} / ${fmt(r.expectedDeliveries)}`,
          ),
        ]
      : []),
    row('server CPU (% of a core)', (r) => fmt(r.serverCpuPercent, 1)),
    row('server CPU per publish (µs)', (r) => fmt(r.serverCpuMicrosPerPublish, 2)),
    row('publishes per server CPU-second', (r) => fmt(r.publishesPerServerCpuSecond)),
    row('load generator CPU (% of a core)', (r) => fmt(r.loadgenCpuPercent, 1)),
    row(
      'waiting for a CPU: server / load gen (%)',
      (r) => `${fmt(r.serverRunQueueWaitPercent, 1)} / ${fmt(r.loadgenRunQueueWaitPercent, 1)}`,
    ),
    row('saturated (≥ 90% of a core)', (r) => r.saturated),
  ];
  const notes: string[] = [];
  for (const run of runs) {
    const x = outcomes[run];
    if (x && 'skipped' in x) notes.push(`${run}: skipped: ${x.skipped}`);
    if (x && 'error' in x) notes.push(`${run}: ERROR: ${x.error}`);
    if (x && 'result' in x && x.result.errorSamples.length > 0) {
      notes.push(`${run}: first errors: ${x.result.errorSamples.join(' | ')}`);
    }
  }
  const contended = runs.filter((run) => {
    const x = outcomes[run];
    return x !== undefined && 'result' in x && x.result.serverRunQueueWaitPercent >= CONTENDED_PERCENT;
  });
  if (contended.length > 0) {
    notes.push(
      `the server waited for a CPU ≥ ${CONTENDED_PERCENT}% of the window (${contended.join(', ')}): the machine is ` +
        'shared, so raw throughput says little; compare publishes per server CPU-second',
    );
  }
  const head =
    `api-publish: ${o.connections} keep-alive connections, closed loop, ${o.channels} channels ` +
    `(history_size ${o.historySize}); ${fmt(o.seconds, 1)} s measured after ${fmt(o.warmupSeconds, 1)} s warm-up`;
  return [head, formatTable(rows), ...ratios.map((r) => `  ${ratioLine(r)}`), ...notes.map((n) => `  ${n}`)].join('\n');
}

/** apiPublishCharts: publishes acknowledged per second of each run's window. */
export function apiPublishCharts(outcomes: ApiOutcomes): Chart[] {
  const series = API_RUNS.flatMap((run) => {
    const x = outcomes[run];
    if (!x || !('result' in x)) return [];
    return [{ label: RUN_LABELS[run], points: x.result.publishesBySecond.map((n, i): [number, number] => [i, n]) }];
  });
  return series.length === 0
    ? []
    : [
        {
          title: 'Publishes acknowledged per second',
          xLabel: 'seconds into the window',
          yLabel: 'publishes/s',
          series,
        },
      ];
}
