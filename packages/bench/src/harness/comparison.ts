/**
 * Comparing servers run through the same scenario (raw ws, Bulwark, Socket.IO): the
 * Bulwark/raw ratios with their targets, the informational Bulwark/Socket.IO ratios, their
 * checks, and the cells and rows of a side-by-side table.
 *
 * @module
 */
import { type InfoRatio, type Ratio, type ScenarioReport, type TargetOutcome } from './report.js';
import { check, type Check } from './scenario.js';

/** ratio builds one Bulwark/raw {@link Ratio}, met when at most `target`. */
export function ratio(name: string, bulwark: number, raw: number, target: number): Ratio {
  const r = Math.round((bulwark / raw) * 100) / 100;
  return { name, bulwark, raw, ratio: r, target, met: Number.isFinite(r) && r <= target };
}

/** infoRatio builds one Bulwark/Socket.IO {@link InfoRatio}. */
export function infoRatio(name: string, bulwark: number, socketio: number): InfoRatio {
  return { name, bulwark, socketio, ratio: Math.round((bulwark / socketio) * 100) / 100 };
}

/** ratioChecks turns Bulwark/reference ratios (with their targets) into checks. */
export function ratioChecks(ratios: readonly Ratio[]): Check[] {
  return ratios.map((r) => check(`Bulwark/raw ${r.name}`, r.ratio, '<=', r.target, '×'));
}

/** Outcomes keyed by target name (raw, bulwark, …), as ScenarioReport.results holds them. */
export type Outcomes<R> = Partial<Record<string, { result: R } | { error: string } | { skipped: string }>>;

/** resultsOf lists the targets that produced a result, with it. */
export function resultsOf<R>(outcomes: Outcomes<R>): Array<[string, R]> {
  const out: Array<[string, R]> = [];
  for (const [target, o] of Object.entries(outcomes)) if (o && 'result' in o) out.push([target, o.result]);
  return out;
}

/** cell is one target's column of a row: the formatted result, or why there is none. */
export function cell<R>(o: TargetOutcome<R> | undefined, f: (r: R) => string): string {
  if (!o) return '(not run)';
  if ('skipped' in o) return '(skipped)';
  if ('error' in o) return '(error)';
  return f(o.result);
}

/** ratioCell is the Bulwark/raw ratio and its target, or two empty cells. */
export function ratioCell(ratios: Ratio[], name: string): [string, string] {
  const r = ratios.find((x) => x.name === name);
  if (!r) return ['', ''];
  return [`${r.ratio.toFixed(2)}×`, `≤ ${r.target.toFixed(1)}× ${r.met ? 'met' : 'NOT met'}`];
}

/** The Bulwark/Socket.IO cell: the ratio, or '' when not computed (or not finite). */
export function infoRatioCell(ratios: InfoRatio[] | undefined, name: string): string {
  const r = ratios?.find((x) => x.name === name);
  return r && Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}×` : '';
}

/**
 * comparisonRow builds one table row: the metric, raw, Bulwark, then (when Socket.IO ran)
 * Socket.IO, the Bulwark/raw ratio and its target, then (when Socket.IO ran) Bulwark/Socket.IO.
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
    ...(withSio ? [cell(results.socketio, f)] : []),
    ...extra,
    ...(withSio ? [sioRatio] : []),
  ];
}

/** The header row of a comparison table (see {@link comparisonRow}). */
export function comparisonHeader<R>(results: ScenarioReport<R>['results']): string[] {
  return results.socketio !== undefined
    ? ['metric', 'raw ws', 'bulwark', 'socket.io', 'bulwark/raw', 'target', 'bulwark/socket.io']
    : ['metric', 'raw ws', 'bulwark', 'bulwark/raw', 'target'];
}

/** The targets a table's per-target notes go over, in column order. */
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
