/**
 * The cold-cache verdict: origin calls per key and the origin's peak rate, per variant.
 *
 * @module
 */
import { check, type Check } from '../../harness/scenario.js';
import type { VariantResult, ColdCacheOptions } from './types.js';

/** perKeySummary summarises calls per key: keys called, the most for one key, keys called more than once. */
export function perKeySummary(perKey: ReadonlyMap<string, number>): {
  keys: number;
  calls: number;
  maxPerKey: number;
  keysCalledAgain: number;
} {
  let calls = 0;
  let maxPerKey = 0;
  let keysCalledAgain = 0;
  for (const n of perKey.values()) {
    calls += n;
    maxPerKey = Math.max(maxPerKey, n);
    if (n > 1) keysCalledAgain++;
  }
  return { keys: perKey.size, calls, maxPerKey, keysCalledAgain };
}

/**
 * judgeColdCache turns the results into checks:
 * - every variant: no successful reply carrying another key's answer;
 * - protected variants (all but `naive`): the origin's peak rate in any 1 s window within its
 *   capacity, and no failed RPC (no error, timeout or unsent ask);
 * - `shared`: origin calls ≤ K × (1 + slack) — about one per key for the whole cluster;
 * - `local`: origin calls ≤ M × K × (1 + slack) — single flight holds per node.
 * `naive` is the before-picture: reported, not judged (what it does depends on the machine).
 */
export function judgeColdCache(results: readonly VariantResult[], o: ColdCacheOptions): Check[] {
  const checks: Check[] = [];
  for (const r of results) {
    const v = r.variant;
    checks.push(check(`${v}: wrong answers`, r.wrong, '==', 0, 'RPCs'));
    if (v === 'naive') continue;
    checks.push(check(`${v}: origin peak rate (any 1 s)`, r.origin.peakPerSec, '<=', o.originCapacity, 'calls/s'));
    const failed = Object.values(r.failed).reduce((a, b) => a + b, 0);
    checks.push(check(`${v}: failed RPCs`, failed, '==', 0, 'RPCs'));
    if (v === 'shared') {
      checks.push(check('shared: origin calls', r.origin.calls, '<=', Math.floor(o.keys * (1 + o.slack)), 'calls'));
    }
    if (v === 'local') {
      const limit = Math.floor(o.nodes * o.keys * (1 + o.slack));
      checks.push(check('local: origin calls', r.origin.calls, '<=', limit, 'calls'));
    }
  }
  return checks;
}
