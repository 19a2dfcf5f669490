/**
 * The rolling-restart verdict: every player back within the drain window plus slack, the peak
 * reconnect rate bounded, and every missed publication recovered.
 *
 * @module
 */
import { check, type Check } from '../../harness/scenario.js';
import { round } from '../../harness/util.js';
import { type CompletenessInput, type Completeness, type RollingResult, type RollingOptions } from './types.js';

/**
 * peakPerWindow is the largest number of `timesMs` in any half-open interval [t, t + windowMs):
 * the peak rate over a sliding window, which fixed buckets would split and understate.
 */
export function peakPerWindow(timesMs: readonly number[], windowMs = 1000): number {
  const t = [...timesMs].sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < t.length; hi++) {
    while ((t[hi] as number) - (t[lo] as number) >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

/** spanOf is the first and last of `timesMs`, in seconds after `originMs`; null when empty. */
export function spanOf(timesMs: readonly number[], originMs: number): { first: number; last: number } | null {
  if (timesMs.length === 0) return null;
  let lo = Infinity;
  let hi = -Infinity;
  for (const t of timesMs) {
    lo = Math.min(lo, t);
    hi = Math.max(hi, t);
  }
  return { first: round((lo - originMs) / 1000, 3), last: round((hi - originMs) / 1000, 3) };
}

/**
 * judgeCompleteness counts, over every player, the publications owed to it that never arrived
 * (separately for players that never came back: their loss is unavailability, not a recovery
 * failure).
 * Channel `ch` was sent sequence numbers 1 … `sentPerChannel[ch]`; those in `unconfirmed[ch]`
 * (API call failed: maybe published, maybe not) are owed by nobody, so neither their absence nor
 * their arrival counts.
 */
export function judgeCompleteness(
  players: readonly CompletenessInput[],
  sentPerChannel: readonly number[],
  unconfirmed: ReadonlyArray<ReadonlySet<number>>,
): Completeness {
  const out: Completeness = {
    expected: 0,
    missing: 0,
    missingAway: 0,
    clientsWithLoss: 0,
    duplicates: 0,
    outOfOrder: 0,
    unconfirmed: unconfirmed.reduce((n, s) => n + s.size, 0),
  };
  for (const p of players) {
    const sent = sentPerChannel[p.channel] ?? 0;
    const skip = unconfirmed[p.channel] ?? new Set<number>();
    let skippedMissing = 0;
    for (const seq of skip) if (seq >= 1 && seq <= sent && !p.tracker.has(seq)) skippedMissing++;
    const miss = p.tracker.missing(sent) - skippedMissing;
    out.expected += sent - skip.size;
    if (!p.subscribed) out.missingAway += miss;
    else if (miss > 0) {
      out.missing += miss;
      out.clientsWithLoss++;
    }
    out.duplicates += p.tracker.duplicates;
    out.outOfOrder += p.tracker.outOfOrder;
  }
  return out;
}

/** rollingChecks turns a result into the scenario's pass/fail verdicts. */
export function rollingChecks(r: RollingResult, o: RollingOptions): Check[] {
  const checks: Check[] = [
    check('players not subscribed at the end', r.notSubscribedAtEnd, '==', 0, 'players'),
    check(
      'missing publications at players back (not live, not recovered)',
      r.completeness.missing,
      '==',
      0,
      'deliveries',
    ),
    check('duplicate deliveries', r.completeness.duplicates, '==', 0, 'deliveries'),
    check('deliveries out of stream-offset order', r.offsetRegressions, '==', 0, 'deliveries'),
    check(
      'resubscribes answered recovered: false',
      r.restarts.reduce((n, x) => n + x.notRecovered, 0),
      '==',
      0,
      'replies',
    ),
    check('API publications failed', r.apiFailures, '==', 0, 'calls'),
    // SIGTERM must drain and exit 0 within shutdown.timeout; the bench SIGKILLs after that.
    check(
      'drained nodes not exiting cleanly (code 0)',
      r.restarts.filter((x) => x.exit !== '0/null').length,
      '==',
      0,
      'nodes',
    ),
  ];
  const windowS = o.drainWindowMs / 1000;
  r.restarts.forEach((x, i) => {
    const n = i + 1;
    checks.push(check(`restart ${n}: players back`, x.back, '==', x.affected, 'players'));
    checks.push(
      check(
        `restart ${n}: drain start → all back`,
        x.allBackS ?? Number.NaN,
        '<=',
        round(windowS + o.slackMs / 1000, 3),
        's',
      ),
    );
    // With no window everyone is disconnected at once: there is no spread to check.
    if (o.drainWindowMs <= 0) return;
    checks.push(
      check(
        `restart ${n}: peak reconnects in 1 s`,
        x.reconnectPeakPerSec,
        '<=',
        Math.ceil(o.maxPeakFactor * x.expectedPerSec),
        '/s',
      ),
    );
  });
  return checks;
}
