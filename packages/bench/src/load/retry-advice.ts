/**
 * Reconnect advice as a well-behaved client reads and follows it: the `Retry-After` header of a
 * refused WebSocket upgrade (HTTP 503) and the back-off docs/OPERATIONS.md asks clients to apply
 * on top of it ("wait at least Retry-After, then add full jitter that grows with each refusal in
 * a row"), so that refused clients neither come back at once nor all together.
 *
 * @module
 */

/**
 * parseRetryAfter reads a `Retry-After` header value (RFC 9110 §10.2.3: delay-seconds, or an
 * HTTP-date) as seconds to wait from `nowMs` (epoch ms, for the date form). Returns undefined
 * when the header is absent or malformed (negative, fractional, not a number, not a date): a
 * client cannot follow advice it cannot read, and the scenario counts that as "no advice".
 */
export function parseRetryAfter(value: string | string[] | undefined, nowMs = Date.now()): number | undefined {
  // Node joins nothing for Retry-After; a repeated header arrives as an array: ambiguous, refuse it.
  if (value === undefined || Array.isArray(value)) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  // The date form must name a weekday and GMT (IMF-fixdate or the obsolete forms); Date.parse
  // alone would also accept "5.5" or "-1" as a date.
  if (!/^[A-Za-z]{3,9},? .*GMT$/.test(v)) return undefined;
  const at = Date.parse(v);
  if (!Number.isFinite(at)) return undefined;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/** BackoffPolicy is a client's back-off after a refusal. */
export interface BackoffPolicy {
  /** Jitter range after the first refusal, ms (doubles with each refusal in a row). */
  baseMs: number;
  /** Largest jitter range, ms. */
  capMs: number;
}

/** The policy docs/OPERATIONS.md recommends: base 1 s, cap 30 s. */
export const RECOMMENDED_BACKOFF: BackoffPolicy = { baseMs: 1000, capMs: 30_000 };

/**
 * retryDelayMs is how long a good client waits after its `refusals`-th refusal in a row (1 for
 * the first): `Retry-After` (0 when the server gave none) plus full jitter, uniform in
 * [0, min(cap, base × 2^(refusals − 1))). `random` is uniform in [0, 1).
 */
export function retryDelayMs(
  retryAfterSeconds: number | undefined,
  refusals: number,
  random: () => number = Math.random,
  policy: BackoffPolicy = RECOMMENDED_BACKOFF,
): number {
  const range = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, refusals - 1));
  return (retryAfterSeconds ?? 0) * 1000 + random() * range;
}
