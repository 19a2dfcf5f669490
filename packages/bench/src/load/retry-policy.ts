/**
 * How simulated clients retry and reconnect: the buggy build of incident 4 (every failed call
 * retried at once, a fixed number of times, whatever the error said) and the SDK's reconnect
 * backoff, plus the arithmetic of what a retry policy does to the load a backend sees.
 *
 * @module
 */
import { outcomeLabel, type RpcOutcome } from './rpc-client.js';

/** CallOutcome is an {@link RpcOutcome}, or `offline`: the call was due while the client was disconnected. */
export type CallOutcome = RpcOutcome | 'offline';

/** RetryPolicy says how many times a failed call is sent again, at once. */
export interface RetryPolicy {
  /** Retries after the first attempt (0: never retry). */
  retries: number;
}

/**
 * shouldRetry decides whether attempt number `attempt` (0 for the first) that ended with
 * `outcome` is followed by another. The buggy client retries every failure — error replies
 * whether temporary or final (108 from a kill switch too), timeouts, a connection closed under
 * the call — but a call due while offline is not sent at all, so there is nothing to retry.
 */
export function shouldRetry(outcome: CallOutcome, attempt: number, policy: RetryPolicy): boolean {
  if (outcome === 0 || outcome === 'offline') return false;
  return attempt < policy.retries;
}

/** outcomeKey is the tally key of an outcome: `ok` for success, else the code or kind ({@link outcomeLabel}). */
export function outcomeKey(outcome: CallOutcome): string {
  return outcome === 'offline' ? outcome : outcomeLabel(outcome);
}

/**
 * attemptsPerCall is the expected number of attempts a call makes when each attempt fails
 * independently with probability `failure`: 1 + p + p² + … + p^retries. At p = 1 it is
 * 1 + retries: the retry storm's multiplier.
 */
export function attemptsPerCall(failure: number, policy: RetryPolicy): number {
  const p = Math.min(1, Math.max(0, failure));
  let sum = 0;
  for (let k = 0, term = 1; k <= policy.retries; k++, term *= p) sum += term;
  return sum;
}

/** ReconnectBackoff is the SDK's reconnect delay range (centrifuge-js defaults: 500 ms to 20 s). */
export interface ReconnectBackoff {
  minMs: number;
  maxMs: number;
}

/** sdkBackoff is centrifuge-js v5's default reconnect backoff. */
export const sdkBackoff: ReconnectBackoff = { minMs: 500, maxMs: 20_000 };

/**
 * reconnectDelayMs is the delay before reconnect attempt `attempt` (0 for the first after a
 * disconnect), as centrifuge-js computes it: exponential backoff with full jitter,
 * `min(max, min + random·min(max, min·2^attempt))`; `random` is a number in [0, 1).
 */
export function reconnectDelayMs(attempt: number, random: number, b: ReconnectBackoff = sdkBackoff): number {
  const spread = Math.min(b.maxMs, b.minMs * 2 ** Math.max(0, attempt));
  return Math.min(b.maxMs, b.minMs + random * spread);
}
