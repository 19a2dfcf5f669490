/**
 * The reconnect backoff of the Centrifugo SDKs, so that simulated players come back the way real
 * ones do: exponential with full jitter. In `centrifuge` (JavaScript) v5 the delay before
 * reconnect attempt `step` (from 0, reset by every successful connect) is
 * `min(max, min + randomInt(0, min(max, min · 2^step)))` with `min` 500 ms and `max` 20 s by
 * default (docs/OPERATIONS.md quotes the same formula).
 *
 * @module
 */

/** The SDK's default shortest delay before a reconnect attempt, ms. */
export const SDK_MIN_RECONNECT_DELAY_MS = 500;
/** The SDK's default longest delay before a reconnect attempt, ms. */
export const SDK_MAX_RECONNECT_DELAY_MS = 20_000;

/**
 * reconnectDelayMs is the delay before reconnect attempt `step` (0 for the first after a
 * disconnect). `random` returns a number in [0, 1) (Math.random; a fixed one in tests).
 */
export function reconnectDelayMs(
  step: number,
  minMs = SDK_MIN_RECONNECT_DELAY_MS,
  maxMs = SDK_MAX_RECONNECT_DELAY_MS,
  random: () => number = Math.random,
): number {
  // 2^31 is where the SDK stops growing the exponent (any larger overflows nothing but means nothing).
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(0, step), 31));
  // The SDK's randomInt(0, ceiling) is inclusive of both ends.
  const jitter = Math.floor(random() * (ceiling + 1));
  return Math.min(maxMs, minMs + jitter);
}
