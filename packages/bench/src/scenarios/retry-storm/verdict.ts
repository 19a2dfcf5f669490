/**
 * The retry-storm verdict: the protected variants keep the well-behaved players' success and p99.
 *
 * @module
 */
import { check, type Check } from '../../harness/scenario.js';
import { reportedWindow } from './plan.js';
import { type VariantResult, type Limits, type VariantError, type WindowResult, FEATURE_METHOD } from './types.js';

/**
 * retryStormChecks judges a run:
 * - `unprotected` must reproduce the storm: the origin was driven past what it holds and had
 *   to throttle (otherwise the load generator did not produce the incident, and the protected
 *   variants' passes would mean nothing);
 * - `tuned` over the storm, and `kill-switch` after the switch: well-behaved success ≥ the
 *   limit, their p99 ≤ the limit, and the origin offered at most its capacity;
 * - `defaults` over the storm (issue 12, item 11: Bulwark as shipped must protect a backend
 *   nobody sized): well-behaved success ≥ the limit and the origin offered at most its
 *   capacity. Their p99 is reported, not judged: with every buggy player holding a call in the
 *   proxy's queue, the wait is set by the queue, which only per-connection limits shorten;
 * - `kill-switch`: no inbox.sync reached the origin after the switch (and its settling).
 */
export function retryStormChecks(
  variants: readonly VariantResult[],
  l: Limits,
  errors: readonly VariantError[] = [],
): Check[] {
  const checks: Check[] = errors.map((e) => check(`${e.variant}: ran to its end`, 0, '==', 1));
  const protectedWindow = (name: string, w: WindowResult) => {
    checks.push(check(`${name}: well-behaved success`, w.good.successPercent, '>=', l.successPercent, '%'));
    checks.push(check(`${name}: well-behaved p99`, w.good.latencyMs.p99, '<=', l.p99Ms, 'ms'));
    checks.push(check(`${name}: origin calls offered`, w.origin.perSec, '<=', l.capacityPerSec, 'calls/s'));
  };
  for (const v of variants) {
    if (v.variant === 'unprotected') {
      const w = reportedWindow(v, 'storm');
      checks.push(
        check('unprotected: storm reproduced (origin throttled, 503)', w?.origin.throttled ?? 0, '>', 0, 'calls'),
      );
    } else if (v.variant === 'defaults') {
      const w = reportedWindow(v, 'storm');
      if (w) {
        checks.push(check('defaults, storm: well-behaved success', w.good.successPercent, '>=', l.successPercent, '%'));
        checks.push(check('defaults, storm: origin calls offered', w.origin.perSec, '<=', l.capacityPerSec, 'calls/s'));
      } else checks.push(check('defaults: storm window measured', 0, '==', 1));
    } else if (v.variant === 'tuned') {
      const w = reportedWindow(v, 'storm');
      if (w) protectedWindow('tuned, storm', w);
      else checks.push(check('tuned: storm window measured', 0, '==', 1));
    } else if (v.variant === 'kill-switch') {
      const w = reportedWindow(v, 'after');
      if (w) {
        protectedWindow('kill switch, after', w);
        checks.push(
          check(
            'kill switch, after: inbox.sync at the origin',
            w.origin.byMethod[FEATURE_METHOD] ?? 0,
            '==',
            0,
            'calls',
          ),
        );
      } else checks.push(check('kill switch: after window measured', 0, '==', 1));
    }
  }
  return checks;
}
