/**
 * The hug verdict: server alive and ready, refusals with advice, admitted p99, peak RSS and
 * connections held within the limits, and few failures.
 *
 * @module
 */
import { check, type Check } from '../../harness/scenario.js';

/** HugMeasures is what the verdict looks at. */
export interface HugMeasures {
  serverAlive: boolean;
  readyFailed: number;
  refused: number;
  refusedWithoutAdvice: number;
  admittedP99Ms: number;
  peakRssBytes: number;
  peakHeld: number;
  connectionLimit: number;
  unexpectedCloses: number;
  attempts: number;
  failed: number;
  notSent: number;
}

/** HugThresholds are the limits the checks compare with. */
export interface HugThresholds {
  p99LimitMs: number;
  maxRssMiB: number;
  maxFailedPercent: number;
  /** Most attempts (arrivals and retries) the load generator may fail to send, %. */
  maxNotSentPercent: number;
}

/** Unrounded: a rounded value would pass a check it fails (1.0025 % ≤ 1 %); the table rounds for display. */
export const pct = (part: number, whole: number): number => (whole > 0 ? (part / whole) * 100 : 0);

/** hugChecks is the scenario's verdict. */
export function hugChecks(m: HugMeasures, t: HugThresholds): Check[] {
  return [
    check('server process alive at the end (1 = yes)', m.serverAlive ? 1 : 0, '==', 1),
    check('/ready probes unanswered or not 200', m.readyFailed, '==', 0, 'probes'),
    check('attempts refused (the ramp must exceed capacity)', m.refused, '>', 0, 'attempts'),
    check('refusals without a readable Retry-After', m.refusedWithoutAdvice, '==', 0, 'refusals'),
    check('admitted handshake p99 after the warm-up', m.admittedP99Ms, '<=', t.p99LimitMs, 'ms'),
    check('peak server RSS', m.peakRssBytes / 2 ** 20, '<=', t.maxRssMiB, 'MiB'),
    check('peak connections held', m.peakHeld, '<=', m.connectionLimit, 'connections'),
    check('admitted players closed by the server', m.unexpectedCloses, '==', 0, 'players'),
    check('attempts failed without a refusal', pct(m.failed, m.attempts), '<=', t.maxFailedPercent, '%'),
    check(
      'attempts the load generator could not send (its caps)',
      pct(m.notSent, m.attempts + m.notSent),
      '<=',
      t.maxNotSentPercent,
      '%',
    ),
  ];
}
