/**
 * The fan-out report: the side-by-side table of the servers (Bulwark once per client kind, with
 * which side saturated and the Protobuf ratios under it) and the charts (worst latency per
 * second at the fixed rate, the ramp's p99 by delivered rate).
 *
 * @module
 */

import {
  comparisonRow,
  comparisonHeader,
  anyResult,
  ratioCell,
  infoRatioCell,
  TABLE_TARGETS,
  notes,
  type Outcomes,
  resultsOf,
  labelledRatioLines,
  variantKeys,
} from '../../harness/comparison.js';
import { fmt, formatTable } from '../../harness/format.js';
import { type ScenarioReport, resultOf } from '../../harness/report.js';
import { type Chart } from '../../harness/scenario.js';
import { type FanoutResult } from './types.js';

/** fanoutTable renders the fan-out report. */
export function fanoutTable(
  report: Pick<ScenarioReport<FanoutResult>, 'results' | 'ratios' | 'socketioRatios'>,
): string {
  const any = anyResult(report.results);
  const head = any
    ? `fanout: ${any.subscribers} subscribers over ${any.channels} channels (${any.subscribersPerChannel}/channel), ` +
      `one publisher, ${any.padBytes} B padding; fixed ${fmt(any.fixed.targetRate)} pub/s for ${fmt(any.fixed.publishSeconds, 1)} s`
    : 'fanout';
  const row = (label: string, f: (r: FanoutResult) => string, extra: [string, string] = ['', ''], sio = '') =>
    comparisonRow(report.results, label, f, extra, sio);
  const rows: string[][] = [
    comparisonHeader(report.results),
    row('publications/s (achieved)', (r) => fmt(r.fixed.achievedRate, 1)),
    row('delivered msgs/s', (r) => fmt(r.fixed.deliveredPerSec)),
    row('latency p50 / p99 / max (ms)', (r) => {
      const l = r.fixed.latencyMs;
      return `${fmt(l.p50, 2)} / ${fmt(l.p99, 2)} / ${fmt(l.max, 1)}`;
    }),
    row('loss (missing deliveries)', (r) => `${r.fixed.loss.missing} of ${fmt(r.fixed.loss.expected)}`),
    row(
      'server CPU per delivery (µs)',
      (r) => fmt(r.fixed.serverCpuMicrosPerDelivery, 3),
      ratioCell(report.ratios, 'server CPU per delivered message'),
      infoRatioCell(report.socketioRatios, 'server CPU per delivered message'),
    ),
    row('server CPU (% of a core)', (r) => fmt(r.fixed.serverCpuPercent, 1)),
    row('load generator CPU (% of a core, all processes)', (r) => fmt(r.fixed.loadgenCpuPercent, 1)),
    row('  publisher / subscriber readers (%)', (r) => {
      const c = r.fixed.loadgenCpu;
      return c.workerPercents.length > 0
        ? `${fmt(c.publisherPercent, 1)} / ${c.workerPercents.map((p) => fmt(p, 1)).join(' + ')}`
        : 'in one process';
    }),
    row('load generator CPU per delivery (µs)', (r) => fmt(r.fixed.loadgenCpuMicrosPerDelivery, 3)),
    row('  of which subscriber readers (µs)', (r) => fmt(r.fixed.readerCpuMicrosPerDelivery, 3)),
    ...(resultsOf(report.results).some(([, r]) => r.fixed.readerCompare)
      ? [
          row('  --reader compare: raw / ws (µs per delivery)', (r) => {
            const c = r.fixed.readerCompare;
            return c ? `${fmt(c.raw ?? Number.NaN, 3)} / ${fmt(c.ws ?? Number.NaN, 3)}` : '-';
          }),
        ]
      : []),
    row('saturated (≥ 90% of its cores)', (r) => r.fixed.saturated),
    row('load generator loop delay max (ms)', (r) => fmt(r.fixed.loadgenLoopDelayMs.max, 1)),
    row(
      'TCP retransmits (loss probes) / zero-window',
      (r) =>
        `${fmt(r.fixed.kernel.tcpRetransSegs)} (${fmt(r.fixed.kernel.tcpLossProbes)}) / ${fmt(r.fixed.kernel.zeroWindow)}`,
    ),
  ];
  if (resultsOf(report.results).some(([, r]) => r.ramp)) {
    rows.push(
      row('ramp: max pub/s (p99<limit, 0 loss)', (r) =>
        r.ramp ? `${r.ramp.limitFound ? '' : '≥ '}${fmt(r.ramp.maxPassingRate)}` : '-',
      ),
      row('ramp: delivered msgs/s at max', (r) => (r.ramp ? fmt(r.ramp.maxPassingDeliveriesPerSec) : '-')),
      row('ramp: steps run', (r) => (r.ramp ? String(r.ramp.steps.length) : '-')),
      row('ramp: saturated, step by step', (r) =>
        r.ramp ? r.ramp.steps.map((s) => `${fmt(s.targetRate)}:${abbrev(s.saturated)}`).join(' ') : '-',
      ),
    );
  }
  const limits = [...TABLE_TARGETS, ...variantKeys(report.results)]
    .map((k) => {
      const r = resultOf(report.results[k]);
      return r?.ramp ? `  ramp limit (${k}): ${r.ramp.limitedBy}` : '';
    })
    .filter(Boolean);
  const clients = resultsOf(report.results).map(([k, r]) => `${k}: ${r.clients}`);
  const readers = [
    ...new Set(
      resultsOf(report.results).map(
        ([, r]) =>
          `${r.reader} reader, ${r.subscriberProcesses === 0 ? "in the publisher's process" : `${r.subscriberProcesses} subscriber process(es)`}` +
          `, load generator on ${r.loadgenCores} CPU(s)`,
      ),
    ),
  ];
  return [
    head,
    formatTable(rows),
    ...(variantKeys(report.results).length > 0 ? [`  clients: ${clients.join('; ')}`] : []),
    ...readers.map((r) => `  subscribers: ${r}`),
    ...(resultsOf(report.results).some(([, r]) => r.ramp)
      ? ['  ramp steps, saturated: S server, L load generator, B both, - neither (≥ 90% of its cores)']
      : []),
    ...labelledRatioLines(report.ratios).map((l) => `  ${l}`),
    ...limits,
    ...notes(report).map((n) => `  ${n}`),
  ].join('\n');
}

/** abbrev shortens a `saturation` verdict to one letter for the per-step row. */
function abbrev(saturated: string): string {
  return saturated === 'server' ? 'S' : saturated === 'load generator' ? 'L' : saturated === 'both' ? 'B' : '-';
}

/** fanoutCharts: the fixed phase's worst latency per second, and the ramp's p99 by offered rate. */
export function fanoutCharts(outcomes: Outcomes<FanoutResult>): Chart[] {
  const rs = resultsOf(outcomes);
  const charts: Chart[] = [
    {
      title: 'Fixed rate: worst latency of the publications sent in each second',
      xLabel: 'seconds into the phase',
      yLabel: 'ms',
      series: rs.map(([t, r]) => ({ label: t, points: r.fixed.maxLatencyBySecondMs.map((v, i) => [i, v]) })),
    },
  ];
  if (rs.some(([, r]) => r.ramp)) {
    charts.push({
      title: 'Ramp: p99 latency by delivered messages/s',
      xLabel: 'delivered messages/s',
      yLabel: 'p99 ms',
      series: rs.map(([t, r]) => ({
        label: t,
        points: [...(r.ramp?.steps ?? [])]
          .sort((a, b) => a.deliveredPerSec - b.deliveredPerSec)
          .map((s) => [s.deliveredPerSec, s.latencyMs.p99]),
      })),
    });
  }
  return charts;
}
