/**
 * The stalled-clients verdict: with the default queue cap, the healthy subscribers' p99 stays within
 * a multiple of the run without stalled clients, and the memory stalled clients add within a share
 * of what they add with the cap off.
 *
 * @module
 */
import { round } from '../../harness/util.js';
import { type Outcomes, resultsOf } from '../../harness/comparison.js';
import { type Check, check } from '../../harness/scenario.js';
import { type StalledRun, type StalledVerdict, type StalledResult } from './types.js';

export const P99_FACTOR = 2;
export const RSS_SHARE = 0.5;

/** judgeStalled applies the pass criteria: (b) against (a) for latency, against (c) for memory. */
export function judgeStalled(none: StalledRun, capped: StalledRun, uncapped: StalledRun): StalledVerdict {
  const added = (r: StalledRun) =>
    round(r.rssMiB.peak - r.rssMiB.baseline - (none.rssMiB.peak - none.rssMiB.baseline), 1);
  const p99Ceiling = round(none.healthy.latencyMs.p99 * P99_FACTOR, 2);
  const p99 = capped.healthy.latencyMs.p99;
  const addedRssCeilingMiB = round(added(uncapped) * RSS_SHARE, 1);
  const addedRssMiB = added(capped);
  const reasons: string[] = [];
  if (!(p99 <= p99Ceiling)) reasons.push(`healthy p99 ${p99} ms > ${p99Ceiling} ms`);
  if (!(added(uncapped) > 0)) reasons.push('(c) added no memory to compare with: run longer (--duration)');
  else if (!(addedRssMiB <= addedRssCeilingMiB)) {
    reasons.push(`memory added in (b) ${addedRssMiB} MiB > ${addedRssCeilingMiB} MiB`);
  }
  return { p99Ceiling, p99, addedRssCeilingMiB, addedRssMiB, pass: reasons.length === 0, reasons };
}

/** stalledChecks restates the scenario's own verdict. */
export function stalledChecks(outcomes: Outcomes<StalledResult>): Check[] {
  return resultsOf(outcomes).flatMap(([, r]) => [
    check('healthy p99 with the queue cap', r.verdict.p99, '<=', r.verdict.p99Ceiling, 'ms'),
    check('memory the stalled clients add, capped', r.verdict.addedRssMiB, '<=', r.verdict.addedRssCeilingMiB, 'MiB'),
  ]);
}
