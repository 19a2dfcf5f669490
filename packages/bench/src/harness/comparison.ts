/**
 * Comparing servers run through the same scenario (raw ws, Bulwark — with JSON clients, and with
 * other client kinds such as Protobuf when asked for — and Socket.IO): the ratios with their
 * targets, the informational Bulwark/Socket.IO ratios, their checks, which side saturated, and
 * the cells and rows of a side-by-side table.
 *
 * @module
 */
import { type InfoRatio, type Ratio, type ScenarioReport, type TargetOutcome } from './report.js';
import { check, type Check } from './scenario.js';

/**
 * ratio builds one {@link Ratio}, met when at most `target`: Bulwark (JSON) / raw, or with
 * `label` another pair (numerator in `bulwark`, denominator in `raw`).
 */
export function ratio(name: string, bulwark: number, raw: number, target: number, label?: string): Ratio {
  const r = Math.round((bulwark / raw) * 100) / 100;
  return { name, ...(label ? { label } : {}), bulwark, raw, ratio: r, target, met: Number.isFinite(r) && r <= target };
}

/** infoRatio builds one Bulwark/Socket.IO {@link InfoRatio}. */
export function infoRatio(name: string, bulwark: number, socketio: number): InfoRatio {
  return { name, bulwark, socketio, ratio: Math.round((bulwark / socketio) * 100) / 100 };
}

/** ratioChecks turns Bulwark/reference ratios (with their targets) into checks. */
export function ratioChecks(ratios: readonly Ratio[]): Check[] {
  return ratios.map((r) => check(`${r.label ?? 'Bulwark/raw'} ${r.name}`, r.ratio, '<=', r.target, '×'));
}

/** Outcomes keyed by target name (raw, bulwark, …), as ScenarioReport.results holds them. */
export type Outcomes<R> = Partial<Record<string, { result: R } | { error: string } | { skipped: string }>>;

/** resultsOf lists the targets that produced a result, with it. */
export function resultsOf<R>(outcomes: Outcomes<R>): Array<[string, R]> {
  const out: Array<[string, R]> = [];
  for (const [target, o] of Object.entries(outcomes)) if (o && 'result' in o) out.push([target, o.result]);
  return out;
}

/** anyResult is a result to describe the run by: raw's, else Bulwark's, else Socket.IO's, else any column's. */
export function anyResult<R>(outcomes: Outcomes<R>): R | undefined {
  for (const target of ['raw', 'bulwark', 'socketio']) {
    const o = outcomes[target];
    if (o && 'result' in o) return o.result;
  }
  return resultsOf(outcomes)[0]?.[1];
}

/** cell is one target's column of a row: the formatted result, or why there is none. */
export function cell<R>(o: TargetOutcome<R> | undefined, f: (r: R) => string): string {
  if (!o) return '(not run)';
  if ('skipped' in o) return '(skipped)';
  if ('error' in o) return '(error)';
  return f(o.result);
}

/** ratioCell is the Bulwark (JSON)/raw ratio and its target, or two empty cells. */
export function ratioCell(ratios: Ratio[], name: string): [string, string] {
  const r = ratios.find((x) => x.name === name && x.label === undefined);
  if (!r) return ['', ''];
  return [`${r.ratio.toFixed(2)}×`, `≤ ${r.target.toFixed(1)}× ${r.met ? 'met' : 'NOT met'}`];
}

/** The Bulwark/Socket.IO cell: the ratio, or '' when not computed (or not finite). */
export function infoRatioCell(ratios: InfoRatio[] | undefined, name: string): string {
  const r = ratios?.find((x) => x.name === name);
  return r && Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}×` : '';
}

/** variantKeys lists the results' extra Bulwark columns (`bulwark-protobuf`, …), in run order. */
export function variantKeys<R>(results: ScenarioReport<R>['results']): Array<`bulwark-${string}`> {
  return Object.keys(results).filter((k): k is `bulwark-${string}` => k.startsWith('bulwark-'));
}

/**
 * comparisonRow builds one table row: the metric, raw, Bulwark, Bulwark with each other client
 * kind (when measured), then (when Socket.IO ran) Socket.IO, the Bulwark/raw ratio and its
 * target, then (when Socket.IO ran) Bulwark/Socket.IO.
 */
export function comparisonRow<R>(
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
    ...variantKeys(results).map((k) => cell(results[k], f)),
    ...(withSio ? [cell(results.socketio, f)] : []),
    ...extra,
    ...(withSio ? [sioRatio] : []),
  ];
}

/**
 * The header row of a comparison table (see {@link comparisonRow}); with other client kinds
 * the Bulwark columns are named by theirs (`bulwark json`, `bulwark protobuf`).
 */
export function comparisonHeader<R>(results: ScenarioReport<R>['results']): string[] {
  const variants = variantKeys(results);
  const bulwark = [variants.length > 0 ? 'bulwark json' : 'bulwark', ...variants.map((k) => k.replace('-', ' '))];
  return results.socketio !== undefined
    ? ['metric', 'raw ws', ...bulwark, 'socket.io', 'bulwark/raw', 'target', 'bulwark/socket.io']
    : ['metric', 'raw ws', ...bulwark, 'bulwark/raw', 'target'];
}

/**
 * labelledRatioLines are the ratios the table's ratio columns do not hold (those with a label:
 * other client kinds against raw ws and against JSON), one line each with target and verdict.
 */
export function labelledRatioLines(ratios: readonly Ratio[]): string[] {
  return ratios
    .filter((r) => r.label !== undefined)
    .map(
      (r) =>
        `${r.label} ${r.name}: ${Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : String(r.ratio)}× ` +
        `(target ≤ ${r.target.toFixed(1)}×: ${r.met ? 'met' : 'NOT met'})`,
    );
}

/** A process at or above this share of one core is taken as saturated. */
export const SATURATED_PERCENT = 90;

/** saturation says which side of a measurement saturated its CPU: server, load generator, both or neither. */
export function saturation(serverCpuPercent: number, loadgenCpuPercent: number): string {
  const server = serverCpuPercent >= SATURATED_PERCENT;
  const loadgen = loadgenCpuPercent >= SATURATED_PERCENT;
  return server && loadgen ? 'both' : server ? 'server' : loadgen ? 'load generator' : 'neither';
}

/** The reference targets and Bulwark (JSON), in column order (the extra Bulwark columns: {@link variantKeys}). */
export const TABLE_TARGETS = ['raw', 'bulwark', 'socketio'] as const;

/** notes are the lines saying which targets were skipped or failed. */
export function notes<R>(report: Pick<ScenarioReport<R>, 'results'>): string[] {
  const out: string[] = [];
  for (const [name, o] of Object.entries(report.results) as [string, TargetOutcome<R> | undefined][]) {
    if (o && 'skipped' in o) out.push(`${name}: skipped: ${o.skipped}`);
    if (o && 'error' in o) out.push(`${name}: ERROR: ${o.error}`);
  }
  return out;
}
