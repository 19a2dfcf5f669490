/**
 * The delta scenario's checks: every publication reached every subscriber in every run, and
 * deltas cut the bytes per delivery at least in half against full payloads. Server CPU is
 * reported, not judged: it is measured, with its ratio, for BENCHMARKS.md.
 *
 * @module
 */
import { type Outcomes, resultsOf } from '../../harness/comparison.js';
import { type Check, check } from '../../harness/scenario.js';
import { type DeltaResult } from './types.js';

/** The most that delta bytes per delivery may be of full ones. */
export const MAX_BYTES_RATIO = 0.5;

/** deltaChecks judges the runs. */
export function deltaChecks(outcomes: Outcomes<DeltaResult>): Check[] {
  return resultsOf(outcomes).flatMap(([, r]) => [
    ...r.runs.map((run) => check(`${run.label}: deliveries missing`, run.expectedDeliveries - run.delivered, '==', 0)),
    ...r.comparisons.map((c) =>
      check(`${c.format}: wire bytes per delivery, delta / full`, c.bytesRatio, '<=', MAX_BYTES_RATIO, '×'),
    ),
  ]);
}
