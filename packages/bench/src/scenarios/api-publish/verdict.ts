/**
 * The api-publish verdict: the ratios of Bulwark (and its batch API) to the HTTP floor — of
 * publishes per server CPU-second, the "per core" comparison that holds whichever side
 * saturated, with issue 18's targets, and of raw publishes/s, informational — and the checks:
 * no errors, every acknowledged publish applied exactly once, every delivery counted (when
 * subscribers verify), and the ratio targets.
 *
 * Higher is better here (throughput), unlike the harness's Bulwark/raw ratios of cost, which
 * must stay below their targets; hence a ratio type of its own.
 *
 * @module
 */
import { resultsOf } from '../../harness/comparison.js';
import { resultOf, type TargetOutcome } from '../../harness/report.js';
import { check, type Check } from '../../harness/scenario.js';
import type { ApiPublishOptions, ApiRunName, ApiRunResult } from './types.js';

/** ApiRatio is one run's figure divided by the floor's; with a target it must be at least that. */
export interface ApiRatio {
  /** e.g. "Bulwark/floor publishes per server CPU-second". */
  name: string;
  numerator: number;
  denominator: number;
  ratio: number;
  /** Lowest acceptable ratio; absent for the informational ones. */
  target?: number;
  met?: boolean;
}

/** The runs' outcomes, keyed by run name. */
export type ApiOutcomes = Partial<Record<ApiRunName, TargetOutcome<ApiRunResult>>>;

function apiRatio(name: string, numerator: number, denominator: number, target?: number): ApiRatio {
  const ratio = Math.round((numerator / denominator) * 100) / 100;
  return {
    name,
    numerator,
    denominator,
    ratio,
    ...(target !== undefined ? { target, met: Number.isFinite(ratio) && ratio >= target } : {}),
  };
}

/**
 * apiRatios compares Bulwark's single publishes and its batches with the floor: publishes per
 * server CPU-second (with the targets) and publishes/s (informational: it says who was faster
 * on this machine, which depends on which side saturated). Empty without a floor result.
 */
export function apiRatios(
  outcomes: ApiOutcomes,
  o: Pick<ApiPublishOptions, 'ratioTarget' | 'batchRatioTarget'>,
): ApiRatio[] {
  const floor = resultOf(outcomes.floor);
  if (!floor) return [];
  const out: ApiRatio[] = [];
  const pairs: Array<[ApiRunName, string, number]> = [
    ['bulwark', 'Bulwark', o.ratioTarget],
    ['batch', 'Bulwark batch', o.batchRatioTarget],
  ];
  for (const [key, label, target] of pairs) {
    const r = resultOf(outcomes[key]);
    if (!r) continue;
    out.push(
      apiRatio(
        `${label}/floor publishes per server CPU-second`,
        r.publishesPerServerCpuSecond,
        floor.publishesPerServerCpuSecond,
        target,
      ),
      apiRatio(`${label}/floor publishes/s`, r.publishesPerSec, floor.publishesPerSec),
    );
  }
  return out;
}

/**
 * apiChecks: for every run that produced a result, something measured, no errors, offsets
 * consistent, deliveries complete (with subscribers); then the ratios that have a target
 * (none in quick runs: two seconds read in 10 ms CPU ticks mean nothing).
 */
export function apiChecks(outcomes: ApiOutcomes, ratios: readonly ApiRatio[], quick: boolean): Check[] {
  const checks: Check[] = [];
  for (const [run, r] of resultsOf(outcomes)) {
    checks.push(
      check(`${run}: publishes acknowledged in the window`, r.publishes, '>', 0),
      check(`${run}: errors (non-200, error in body, lost)`, r.errors, '==', 0),
      check(`${run}: channels whose top offset ≠ publishes acknowledged`, r.offsetMismatches, '==', 0),
    );
    if (r.delivered !== undefined && r.expectedDeliveries !== undefined) {
      checks.push(check(`${run}: deliveries counted by the subscribers`, r.delivered, '==', r.expectedDeliveries));
    }
  }
  if (!quick) {
    for (const r of ratios) {
      if (r.target !== undefined) checks.push(check(r.name, r.ratio, '>=', r.target, '×'));
    }
  }
  return checks;
}
