/**
 * Turning scenario results into ratio checks, text tables and results files.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ConnectionsResult } from '../scenarios/connections.js';
import type { FanoutResult } from '../scenarios/fanout.js';
import type { MachineInfo } from './proc.js';

/**
 * TargetOutcome is what one server produced in one scenario: a result (the field-wise median
 * of `runs` when the scenario was repeated), an error, or a skip.
 */
export type TargetOutcome<R> =
  { result: R; runs?: R[] } | { error: string; serverLog?: string[] } | { skipped: string };

/** Ratio is one Bulwark/raw comparison with its target (Bulwark ≤ target × raw). */
export interface Ratio {
  name: string;
  bulwark: number;
  raw: number;
  /** bulwark / raw. */
  ratio: number;
  /** Highest acceptable ratio. */
  target: number;
  met: boolean;
}

/** ScenarioReport is what a results file holds for one scenario. */
export interface ScenarioReport<R> {
  scenario: string;
  timestamp: string;
  quick: boolean;
  machine: MachineInfo;
  pinning: { serverCpu: number | null; loadgenCpu: number | null };
  options: object;
  results: { raw?: TargetOutcome<R>; bulwark?: TargetOutcome<R>; socketio?: TargetOutcome<R> };
  ratios: Ratio[];
  /** Bulwark/Socket.IO comparisons (informational: no target), when Socket.IO ran too. */
  socketioRatios?: InfoRatio[];
}

/** InfoRatio is one informational Bulwark/Socket.IO comparison (lower means Bulwark uses less). */
export interface InfoRatio {
  name: string;
  bulwark: number;
  socketio: number;
  /** bulwark / socketio. */
  ratio: number;
}

function resultOf<R>(o: TargetOutcome<R> | undefined): R | undefined {
  return o && 'result' in o ? o.result : undefined;
}

function ratio(name: string, bulwark: number, raw: number, target: number): Ratio {
  const r = Math.round((bulwark / raw) * 100) / 100;
  return { name, bulwark, raw, ratio: r, target, met: Number.isFinite(r) && r <= target };
}

/** fanoutRatios compares CPU per delivered message at the fixed load (target ≤ 1.0×). */
export function fanoutRatios(results: ScenarioReport<FanoutResult>['results']): Ratio[] {
  const raw = resultOf(results.raw);
  const bw = resultOf(results.bulwark);
  if (!raw || !bw) return [];
  return [
    ratio(
      'server CPU per delivered message',
      bw.fixed.serverCpuMicrosPerDelivery,
      raw.fixed.serverCpuMicrosPerDelivery,
      1.0,
    ),
  ];
}

/** connectionsRatios compares memory per idle connection (≤ 1.2×) and CPU per connect (≤ 1.5×). */
export function connectionsRatios(results: ScenarioReport<ConnectionsResult>['results']): Ratio[] {
  const raw = resultOf(results.raw);
  const bw = resultOf(results.bulwark);
  if (!raw || !bw) return [];
  return [
    ratio('server memory per idle connection', bw.rssPerConnectionBytes, raw.rssPerConnectionBytes, 1.2),
    ratio('server CPU per connect (JWT included)', bw.serverCpuMicrosPerConnect, raw.serverCpuMicrosPerConnect, 1.5),
  ];
}

function infoRatio(name: string, bulwark: number, socketio: number): InfoRatio {
  return { name, bulwark, socketio, ratio: Math.round((bulwark / socketio) * 100) / 100 };
}

/** fanoutSocketIoRatios compares Bulwark with Socket.IO on CPU per delivered message at the fixed load. */
export function fanoutSocketIoRatios(results: ScenarioReport<FanoutResult>['results']): InfoRatio[] {
  const sio = resultOf(results.socketio);
  const bw = resultOf(results.bulwark);
  if (!sio || !bw) return [];
  return [
    infoRatio(
      'server CPU per delivered message',
      bw.fixed.serverCpuMicrosPerDelivery,
      sio.fixed.serverCpuMicrosPerDelivery,
    ),
  ];
}

/** connectionsSocketIoRatios compares Bulwark with Socket.IO on memory per idle connection and CPU per connect. */
export function connectionsSocketIoRatios(results: ScenarioReport<ConnectionsResult>['results']): InfoRatio[] {
  const sio = resultOf(results.socketio);
  const bw = resultOf(results.bulwark);
  if (!sio || !bw) return [];
  return [
    infoRatio('server memory per idle connection', bw.rssPerConnectionBytes, sio.rssPerConnectionBytes),
    infoRatio('server CPU per connect (JWT included)', bw.serverCpuMicrosPerConnect, sio.serverCpuMicrosPerConnect),
  ];
}

/** formatTable lays out rows as left-aligned, space-padded columns. */
export function formatTable(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '))
    .join('\n');
}

/** fmt formats a number with thousands separators and `digits` decimals; '-' when missing or not finite. */
export const fmt = (v: number | undefined, digits = 0): string =>
  v === undefined || !Number.isFinite(v)
    ? '-'
    : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** fmtCounts formats counts by key (e.g. close codes) as `5× 3008, 2× 1006`; '-' when empty. */
export const fmtCounts = (counts: Record<string, number>): string =>
  Object.entries(counts)
    .map(([key, n]) => `${fmt(n)}× ${key}`)
    .join(', ') || '-';

function cell<R>(o: TargetOutcome<R> | undefined, f: (r: R) => string): string {
  if (!o) return '(not run)';
  if ('skipped' in o) return '(skipped)';
  if ('error' in o) return '(error)';
  return f(o.result);
}

function ratioCell(ratios: Ratio[], name: string): [string, string] {
  const r = ratios.find((x) => x.name === name);
  if (!r) return ['', ''];
  return [`${r.ratio.toFixed(2)}×`, `≤ ${r.target.toFixed(1)}× ${r.met ? 'met' : 'NOT met'}`];
}

/** The Bulwark/Socket.IO cell: the ratio, or '' when not computed (or not finite). */
function infoRatioCell(ratios: InfoRatio[] | undefined, name: string): string {
  const r = ratios?.find((x) => x.name === name);
  return r && Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}×` : '';
}

/**
 * comparisonRow builds one table row: the metric, raw, Bulwark, then (when Socket.IO ran)
 * Socket.IO, the Bulwark/raw ratio and its target, then (when Socket.IO ran) Bulwark/Socket.IO.
 */
function comparisonRow<R>(
  results: ScenarioReport<R>['results'],
  label: string,
  f: (r: R) => string,
  extra: [string, string],
  sioRatio: string,
): string[] {
  const withSio = results.socketio !== undefined;
  return [
    label,
    cell(results.raw, f),
    cell(results.bulwark, f),
    ...(withSio ? [cell(results.socketio, f)] : []),
    ...extra,
    ...(withSio ? [sioRatio] : []),
  ];
}

/** The header row of a comparison table (see {@link comparisonRow}). */
function comparisonHeader<R>(results: ScenarioReport<R>['results']): string[] {
  return results.socketio !== undefined
    ? ['metric', 'raw ws', 'bulwark', 'socket.io', 'bulwark/raw', 'target', 'bulwark/socket.io']
    : ['metric', 'raw ws', 'bulwark', 'bulwark/raw', 'target'];
}

/** The targets a table's per-target notes go over, in column order. */
const TABLE_TARGETS = ['raw', 'bulwark', 'socketio'] as const;

function notes<R>(report: ScenarioReport<R>): string[] {
  const out: string[] = [];
  for (const [name, o] of Object.entries(report.results) as [string, TargetOutcome<R> | undefined][]) {
    if (o && 'skipped' in o) out.push(`${name}: skipped: ${o.skipped}`);
    if (o && 'error' in o) out.push(`${name}: ERROR: ${o.error}`);
  }
  return out;
}

/** fanoutTable renders the fan-out report. */
export function fanoutTable(report: ScenarioReport<FanoutResult>): string {
  const { raw, bulwark, socketio } = report.results;
  const any = resultOf(raw) ?? resultOf(bulwark) ?? resultOf(socketio);
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
    row('load generator CPU (% of a core)', (r) => fmt(r.fixed.loadgenCpuPercent, 1)),
    row('load generator loop delay max (ms)', (r) => fmt(r.fixed.loadgenLoopDelayMs.max, 1)),
    row(
      'TCP retransmits (loss probes) / zero-window',
      (r) =>
        `${fmt(r.fixed.kernel.tcpRetransSegs)} (${fmt(r.fixed.kernel.tcpLossProbes)}) / ${fmt(r.fixed.kernel.zeroWindow)}`,
    ),
  ];
  if (resultOf(raw)?.ramp || resultOf(bulwark)?.ramp || resultOf(socketio)?.ramp) {
    rows.push(
      row('ramp: max pub/s (p99<limit, 0 loss)', (r) =>
        r.ramp ? `${r.ramp.limitFound ? '' : '≥ '}${fmt(r.ramp.maxPassingRate)}` : '-',
      ),
      row('ramp: delivered msgs/s at max', (r) => (r.ramp ? fmt(r.ramp.maxPassingDeliveriesPerSec) : '-')),
      row('ramp: steps run', (r) => (r.ramp ? String(r.ramp.steps.length) : '-')),
    );
  }
  const limits = TABLE_TARGETS.map((k) => {
    const r = resultOf(report.results[k]);
    return r?.ramp ? `  ramp limit (${k}): ${r.ramp.limitedBy}` : '';
  }).filter(Boolean);
  return [head, formatTable(rows), ...limits, ...notes(report).map((n) => `  ${n}`)].join('\n');
}

/** connectionsTable renders the idle-connections report. */
export function connectionsTable(report: ScenarioReport<ConnectionsResult>): string {
  const { raw, bulwark, socketio } = report.results;
  const any = resultOf(raw) ?? resultOf(bulwark) ?? resultOf(socketio);
  const runs = [raw, bulwark, socketio].map((o) => (o && 'result' in o ? (o.runs?.length ?? 1) : 0));
  const reps = Math.max(...runs);
  const head = any
    ? `connections: ${fmt(any.requested)} idle connections, JWT + one subscription each` +
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
    row('closed during settle', (r) => fmt(r.closedDuringSettle)),
    row('TCP retransmits / listen drops', (r) => `${fmt(r.kernel.tcpRetransSegs)} / ${fmt(r.kernel.listenDrops)}`),
  ];
  const firstErrors = TABLE_TARGETS.map((k) => {
    const r = resultOf(report.results[k]);
    return r?.firstError ? `  first connect error (${k}): ${r.firstError}` : '';
  }).filter(Boolean);
  return [head, formatTable(rows), ...firstErrors, ...notes(report).map((n) => `  ${n}`)].join('\n');
}

/** writeReport writes `report` to `<dir>/<scenario>-<timestamp>.json` and returns the path. */
export function writeReport(dir: string, report: { scenario: string; timestamp: string }): string {
  mkdirSync(dir, { recursive: true });
  const stamp = report.timestamp.replace(/[:.]/g, '-');
  const file = path.join(dir, `${report.scenario}-${stamp}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}
