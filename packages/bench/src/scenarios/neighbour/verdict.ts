/**
 * The neighbour verdict: with the default config (shedding needs a busy event loop beside the
 * lag), an idle node next to CPU-hungry neighbours refuses no one — no upgrade answered 503, no
 * read answered 111, no shedding level turned on — and still serves the probes. The lag-only
 * variant (`protection.shedding.utilization: 0`, `min_cpu: 0`) is reported, not judged: how much a neighbour
 * delays a timer is the machine's, not Bulwark's; the verdict says when it delayed nothing.
 *
 * @module
 */
import { type Outcomes, resultsOf } from '../../harness/comparison.js';
import { percentOf } from '../../harness/format.js';
import { type Check, check } from '../../harness/scenario.js';
import { type NeighbourResult, type NeighbourVariant, type NeighbourVerdict } from './types.js';

/** Share of the default variant's probes that must complete (admitted, connected, subscribed, read), %. */
export const MIN_COMPLETED_PERCENT = 95;

/** shedCount is what a variant's node refused or shed: 503 upgrades, 111 reads, shedding levels turned on. */
export function shedCount(v: NeighbourVariant): number {
  const started = Object.values(v.sheddingStarted).reduce((a, b) => a + b, 0);
  return v.refusedUpgrades + v.refusedReads + started;
}

/** lagOnlyNote says what the lag-only variant showed in this run. */
export function lagOnlyNote(lagOnly: NeighbourVariant | undefined): string {
  if (!lagOnly) return 'the lag-only variant did not run';
  const started = Object.values(lagOnly.sheddingStarted).reduce((a, b) => a + b, 0);
  if (shedCount(lagOnly) === 0) {
    return (
      `lag alone refused no one either: the neighbours did not delay the loop enough to shed this run ` +
      `(server lag p99 per second at most ${lagOnly.serverLagP99Ms.max} ms), so the default variant's 0 proves little; ` +
      'try smaller --connect-lag / --read-lag or more --hogs'
    );
  }
  return (
    `lag alone refused ${lagOnly.refusedUpgrades} upgrades (503) and ${lagOnly.refusedReads} reads (111) ` +
    `of ${lagOnly.attempts} probes; shedding turned on ${started} times`
  );
}

/** judgeNeighbour judges the default variant and describes the lag-only one. */
export function judgeNeighbour(variants: readonly NeighbourVariant[]): NeighbourVerdict {
  const dflt = variants.find((v) => v.key === 'default');
  const lagOnly = variants.find((v) => v.key === 'lag-only');
  const reasons: string[] = [];
  if (!dflt) reasons.push('the default variant did not run');
  else {
    if (dflt.refusedUpgrades > 0) reasons.push(`default: ${dflt.refusedUpgrades} upgrades refused`);
    if (dflt.refusedReads > 0) reasons.push(`default: ${dflt.refusedReads} reads refused (111)`);
    const started = Object.values(dflt.sheddingStarted).reduce((a, b) => a + b, 0);
    if (started > 0) reasons.push(`default: shedding turned on ${started} times`);
    if (dflt.attempts === 0) reasons.push('default: no probe was made');
    else if (percentOf(dflt.completed, dflt.attempts) < MIN_COMPLETED_PERCENT) {
      reasons.push(`default: only ${dflt.completed} of ${dflt.attempts} probes completed`);
    }
  }
  return {
    pass: reasons.length === 0,
    reasons,
    lagOnlyShed: lagOnly !== undefined && shedCount(lagOnly) > 0,
    lagOnlyNote: lagOnlyNote(lagOnly),
  };
}

/** neighbourChecks are the default variant's checks (the lag-only variant has none). */
export function neighbourChecks(outcomes: Outcomes<NeighbourResult>): Check[] {
  return resultsOf(outcomes).flatMap(([, r]) => {
    const d = r.variants.find((v) => v.key === 'default');
    if (!d) return [check('default variant ran (1 = yes)', 0, '==', 1)];
    const started = Object.values(d.sheddingStarted).reduce((a, b) => a + b, 0);
    return [
      check('default: upgrades refused (503)', d.refusedUpgrades, '==', 0, 'upgrades'),
      check('default: history reads refused (111)', d.refusedReads, '==', 0, 'reads'),
      check('default: shedding levels turned on (/metrics)', started, '==', 0, 'times'),
      check(
        'default: probes completed (upgrade, connect, subscribe, history)',
        d.attempts > 0 ? percentOf(d.completed, d.attempts) : Number.NaN,
        '>=',
        MIN_COMPLETED_PERCENT,
        '%',
      ),
    ];
  });
}
