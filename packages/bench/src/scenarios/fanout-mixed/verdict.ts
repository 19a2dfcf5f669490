/**
 * The fanout-mixed verdict: no loss and p99 within the limit, per channel class.
 *
 * @module
 */
import { check, type Check } from '../../harness/scenario.js';
import { round } from '../../harness/util.js';
import { type FanoutMixedResult, CLASSES } from './types.js';

/**
 * mixedChecks are one server's verdicts, per class: zero loss, p99 ≤ the limit, and the
 * delivered rate ≥ 95 % of the expected one. A class the options give no traffic is skipped.
 */
export function mixedChecks(r: FanoutMixedResult, p99LimitMs: number): Check[] {
  const out: Check[] = [];
  for (const name of CLASSES) {
    const c = r.classes[name];
    if (c.expectedDeliveriesPerSec <= 0) continue;
    out.push(
      check(`${r.target}: ${name} loss`, c.loss.missing, '==', 0, 'deliveries'),
      check(`${r.target}: ${name} p99 latency`, c.latencyMs.p99, '<=', p99LimitMs, 'ms'),
      check(
        `${r.target}: ${name} delivered rate`,
        round((c.deliveriesPerSec / c.expectedDeliveriesPerSec) * 100, 2),
        '>=',
        95,
        '% of expected',
      ),
    );
  }
  return out;
}
