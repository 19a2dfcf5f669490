/**
 * The protocol's `ttl` fields: whole seconds left until an expiry, never negative. One
 * rounding rule for connect, refresh, subscribe and sub_refresh replies and the refresh push,
 * so an SDK schedules its refresh the same way whichever reply told it.
 *
 * @module
 */

/** ttlSeconds is the whole seconds from `now` until `expireAt` (both ms since epoch), rounded up. */
export function ttlSeconds(expireAt: number, now: number = Date.now()): number {
  return Math.max(0, Math.ceil((expireAt - now) / 1000));
}
