/**
 * The overload verdict: with shedding at the highest multiplier, goodput must keep a share of the
 * capacity C and the admitted p99 stay within a multiple of the 1× p99.
 *
 * @module
 */
import { round } from '../../harness/util.js';
import { type Outcomes, resultsOf } from '../../harness/comparison.js';
import { type Check, check } from '../../harness/scenario.js';
import { type OverloadRun, type OverloadVerdict, type OverloadResult } from './types.js';

/** A successful run at 10× keeps at least this share of C... */
export const GOODPUT_FLOOR = 0.5;
/** ...and a p99 within this multiple of the 1× p99. */
export const P99_FACTOR = 10;

/** judgeOverload applies the pass criteria to shedding at the highest multiplier. */
export function judgeOverload(capacity: number, runs: readonly OverloadRun[]): OverloadVerdict {
  const shedRuns = runs.filter((r) => r.shedding);
  const top = Math.max(...shedRuns.map((r) => r.multiplier));
  const base = shedRuns.find((r) => r.multiplier === 1);
  const high = shedRuns.find((r) => r.multiplier === top);
  const goodputFloor = Math.round(GOODPUT_FLOOR * capacity);
  const p99Ceiling = round((base?.okLatencyMs.p99 ?? Number.NaN) * P99_FACTOR, 2);
  const goodput = high?.goodputPerSec ?? 0;
  const p99 = high?.okLatencyMs.p99 ?? Number.NaN;
  const reasons: string[] = [];
  if (!(goodput >= goodputFloor)) reasons.push(`goodput ${goodput}/s < ${goodputFloor}/s`);
  if (!(p99 <= p99Ceiling)) reasons.push(`ok p99 ${p99} ms > ${p99Ceiling} ms`);
  return { multiplier: top, goodputFloor, goodput, p99Ceiling, p99, pass: reasons.length === 0, reasons };
}

/** overloadChecks restates the scenario's own verdict at the highest multiplier. */
export function overloadChecks(outcomes: Outcomes<OverloadResult>): Check[] {
  return resultsOf(outcomes).flatMap(([, r]) => [
    check(
      `goodput at ${r.verdict.multiplier}× capacity, shedding on`,
      r.verdict.goodput,
      '>=',
      r.verdict.goodputFloor,
      'polls/s',
    ),
    check(
      `admitted p99 at ${r.verdict.multiplier}× capacity, shedding on`,
      r.verdict.p99,
      '<=',
      r.verdict.p99Ceiling,
      'ms',
    ),
  ]);
}
