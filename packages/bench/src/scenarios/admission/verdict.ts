/**
 * The admission verdict: every attempt at the full node refused, accepted clients untouched,
 * and a refusal cheaper for the server than an accepted connection.
 *
 * @module
 */

import { type Outcomes, resultsOf } from '../../harness/comparison.js';
import { type Check, check } from '../../harness/scenario.js';
import { type AdmissionResult } from './run.js';

/** admissionChecks: every attempt at the full node refused, accepted clients untouched, refusals cheaper. */
export function admissionChecks(outcomes: Outcomes<AdmissionResult>): Check[] {
  return resultsOf(outcomes).flatMap(([target, r]) => [
    check(`${target}: attempts not refused at the full node`, r.notRefused, '==', 0),
    check(`${target}: accepted clients closed by refusals`, r.acceptedClosed, '==', 0),
    check(`${target}: accepted connection cost ÷ refusal cost`, r.acceptedToRejectedRatio, '>=', 1, '×'),
  ]);
}
