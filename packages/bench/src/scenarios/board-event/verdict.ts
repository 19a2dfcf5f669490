/**
 * The board-event verdict: every owed post delivered, push p99 within the limit.
 *
 * @module
 */
import { check, type Check } from '../../harness/scenario.js';
import type { BoardOptions, ModeResult } from './types.js';

/**
 * judgeBoard applies the pass criteria: push within the latency limit and without loss, every
 * post seen by every poller, push cheaper in server CPU than polling the newest page (the
 * incident's lesson), and no post refused by the server API (which would make every mode's
 * counts wrong).
 */
export function judgeBoard(
  push: ModeResult,
  poll: ModeResult,
  pollSince: ModeResult | undefined,
  p99LimitMs: number,
): Check[] {
  const apiErrors = push.apiErrors + poll.apiErrors + (pollSince?.apiErrors ?? 0);
  return [
    check('push: delivery latency p99', push.latencyMs.p99, '<=', p99LimitMs, 'ms'),
    check('push: post × player deliveries lost', push.missing.missing, '==', 0),
    check('poll: post × player pairs never seen in a reply', poll.missing.missing, '==', 0),
    ...(pollSince
      ? [check('poll-since: post × player pairs never seen in a reply', pollSince.missing.missing, '==', 0)]
      : []),
    check(
      'server CPU: push below poll',
      push.window.serverCpuPercent,
      '<',
      poll.window.serverCpuPercent,
      '% of a core',
    ),
    check('posts the server API refused or lost (all modes)', apiErrors, '==', 0),
  ];
}

/** How far above one request per batch per cycle the origin may be asked (cycles drift, a cold fetch). */
export const ORIGIN_REQUEST_SLACK = 1.2;

/**
 * judgeSharedPoll applies shared poll's criteria: the backend asked about once per batch per
 * refresh cycle whatever the number of players, staleness within one refresh interval plus
 * `stalenessMarginMs`, and every player saw every post.
 */
export function judgeSharedPoll(
  r: ModeResult,
  opts: Pick<BoardOptions, 'refreshIntervalS' | 'stalenessMarginMs'>,
): Check[] {
  return [
    check(
      'shared-poll: origin requests per refresh cycle and batch',
      r.origin?.requestsPerCycleBatch ?? Number.NaN,
      '<=',
      ORIGIN_REQUEST_SLACK,
    ),
    check(
      'shared-poll: staleness p99',
      r.latencyMs.p99,
      '<=',
      opts.refreshIntervalS * 1000 + opts.stalenessMarginMs,
      'ms',
    ),
    check('shared-poll: post × player pairs never received', r.missing.missing, '==', 0),
  ];
}
