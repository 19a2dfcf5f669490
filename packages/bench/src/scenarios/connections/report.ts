/**
 * The idle-connections report: the side-by-side table of the servers (Bulwark once per client
 * kind), which side saturated while connecting, and the ratios of the other client kinds.
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
  resultsOf,
  labelledRatioLines,
  saturation,
  variantKeys,
} from '../../harness/comparison.js';
import { fmt, formatTable } from '../../harness/format.js';
import { type ScenarioReport, resultOf } from '../../harness/report.js';
import { type ConnectionsResult } from './run.js';

/** connectionsTable renders the idle-connections report. */
export function connectionsTable(
  report: Pick<ScenarioReport<ConnectionsResult>, 'results' | 'ratios' | 'socketioRatios'>,
): string {
  const any = anyResult(report.results);
  const runs = Object.values(report.results).map((o) => (o && 'result' in o ? (o.runs?.length ?? 1) : 0));
  const reps = Math.max(...runs);
  const head = any
    ? `connections: ${fmt(any.requested)} idle connections, JWT + ${any.subscriptionsPerConnection > 1 ? `${any.subscriptionsPerConnection} subscriptions` : 'one subscription'} each` +
      (reps > 1 ? ` (median of ${reps} runs per server, servers alternating)` : '')
    : 'connections';
  const row = (label: string, f: (r: ConnectionsResult) => string, extra: [string, string] = ['', ''], sio = '') =>
    comparisonRow(report.results, label, f, extra, sio);
  const rows: string[][] = [
    comparisonHeader(report.results),
    row('connected / failed', (r) => `${fmt(r.connected)} / ${fmt(r.failed)}`),
    row('connect rate (conn/s)', (r) => fmt(r.connectRate)),
    row('handshake p50 / p99 (ms)', (r) => `${fmt(r.handshakeMs.p50, 1)} / ${fmt(r.handshakeMs.p99, 1)}`),
    row(
      'server CPU per connect (µs)',
      (r) => fmt(r.serverCpuMicrosPerConnect, 1),
      ratioCell(report.ratios, 'server CPU per connect (JWT included)'),
      infoRatioCell(report.socketioRatios, 'server CPU per connect (JWT included)'),
    ),
    row(
      'server RSS per connection (KiB)',
      (r) => fmt(r.rssPerConnectionBytes / 1024, 2),
      ratioCell(report.ratios, 'server memory per idle connection'),
      infoRatioCell(report.socketioRatios, 'server memory per idle connection'),
    ),
    row(
      'server RSS before → after (MiB)',
      (r) => `${fmt(r.rssBaselineBytes / 2 ** 20, 1)} → ${fmt(r.rssAfterBytes / 2 ** 20, 1)}`,
    ),
    row('server CPU while connecting (%)', (r) => fmt(r.serverCpuPercent, 1)),
    row('load generator CPU (%)', (r) => fmt(r.loadgenCpuPercent, 1)),
    row('saturated while connecting (≥ 90%)', (r) => saturation(r.serverCpuPercent, r.loadgenCpuPercent)),
    row('closed during settle', (r) => fmt(r.closedDuringSettle)),
    row('TCP retransmits / listen drops', (r) => `${fmt(r.kernel.tcpRetransSegs)} / ${fmt(r.kernel.listenDrops)}`),
  ];
  const firstErrors = [...TABLE_TARGETS, ...variantKeys(report.results)]
    .map((k) => {
      const r = resultOf(report.results[k]);
      return r?.firstError ? `  first connect error (${k}): ${r.firstError}` : '';
    })
    .filter(Boolean);
  const clients = resultsOf(report.results).map(([k, r]) => `${k}: ${r.clients}`);
  return [
    head,
    formatTable(rows),
    ...(variantKeys(report.results).length > 0 ? [`  clients: ${clients.join('; ')}`] : []),
    ...labelledRatioLines(report.ratios).map((l) => `  ${l}`),
    ...firstErrors,
    ...notes(report).map((n) => `  ${n}`),
  ].join('\n');
}
