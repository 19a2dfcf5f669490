/**
 * Deadlines: every timed event of one connection — stale (no connect in time), the next ping,
 * the pong deadline, the connection's expiry and its subscriptions' expiries — kept as times
 * and served by the node's TimerWheel with one wheel entry per connection (the earliest
 * deadline), not a timer each. What to do when one is due is the session's decision; this
 * file only knows when.
 *
 * @module
 */
import type { SubState } from './subscriber.js';
import type { TimerWheel, WheelTarget } from './timer-wheel.js';

/** DeadlineOwner is told when its earliest deadline is due. */
export interface DeadlineOwner {
  onDeadline(now: number): void;
}

/** Deadlines holds one connection's deadlines (ms since epoch; 0 means none). */
export class Deadlines implements WheelTarget {
  wheelSlot: number | undefined = undefined;
  /** Before connect: the connection is closed as stale at this time. */
  staleAt = 0;
  nextPingAt = 0;
  pongDeadline = 0;
  awaitingPong = false;
  /** Earliest expiry among subscriptions the client refreshes with a token. */
  nextSubExpiry = 0;
  /** Earliest expiry among subscriptions the sub_refresh proxy prolongs (none in flight). */
  nextSubRefresh = 0;
  readonly #wheel: TimerWheel;
  readonly #owner: DeadlineOwner;

  constructor(wheel: TimerWheel, owner: DeadlineOwner) {
    this.#wheel = wheel;
    this.#owner = owner;
  }

  /** onTimer is the wheel's call: the earliest deadline passed. */
  onTimer(now: number): void {
    this.#owner.onDeadline(now);
  }

  /** scheduleConnecting puts the stale deadline on the wheel (before connect). */
  scheduleConnecting(): void {
    if (this.staleAt > 0) this.#wheel.schedule(this, this.staleAt);
    else this.#wheel.cancel(this);
  }

  /**
   * schedule puts the earliest deadline of a connected connection on the wheel. The
   * connection's own expiry (`expireAt`, 0: never) is due `grace` after it
   * (client.expired_close_delay) when the client refreshes with a token, and at it when the
   * refresh proxy prolongs the connection (`proxied`; not while a call is in flight).
   */
  schedule(expireAt: number, proxied: boolean, refreshing: boolean, grace: number): void {
    let next = Infinity;
    if (this.nextPingAt > 0) next = this.nextPingAt;
    if (this.awaitingPong) next = Math.min(next, this.pongDeadline);
    if (expireAt > 0) {
      if (!proxied) next = Math.min(next, expireAt + grace);
      else if (!refreshing) next = Math.min(next, expireAt);
    }
    if (this.nextSubExpiry > 0) next = Math.min(next, this.nextSubExpiry + grace);
    if (this.nextSubRefresh > 0) next = Math.min(next, this.nextSubRefresh);
    if (next === Infinity) this.#wheel.cancel(this);
    else this.#wheel.schedule(this, next);
  }

  /** cancel removes the connection from the wheel (it closed). */
  cancel(): void {
    this.#wheel.cancel(this);
  }

  /**
   * takePing tells whether a ping is due at `now`; if so the pong deadline starts and the next
   * ping is set. The next ping is anchored to the due time, not to `now`: the wheel fires up to
   * one step late, and that lateness must not accumulate into longer periods than advertised.
   * A `pongTimeout` of 0 awaits no pong (unidirectional connections cannot answer).
   */
  takePing(now: number, interval: number, pongTimeout: number): boolean {
    if (this.nextPingAt === 0 || now < this.nextPingAt) return false;
    this.awaitingPong = pongTimeout > 0;
    this.pongDeadline = now + pongTimeout;
    this.nextPingAt = Math.max(this.nextPingAt + interval, now + 1);
    return true;
  }

  /** pongMissed tells whether a pong was awaited and its deadline passed. */
  pongMissed(now: number): boolean {
    return this.awaitingPong && now >= this.pongDeadline;
  }

  /** updateSubExpiries recomputes the earliest subscription expiries (call schedule after). */
  updateSubExpiries(subs: Iterable<SubState>): void {
    let next = 0;
    let refresh = 0;
    for (const sub of subs) {
      if (sub.expireAt === 0) continue;
      if (sub.subRefreshProxy === undefined) {
        if (next === 0 || sub.expireAt < next) next = sub.expireAt;
      } else if (!sub.refreshing && (refresh === 0 || sub.expireAt < refresh)) {
        refresh = sub.expireAt;
      }
    }
    this.nextSubExpiry = next;
    this.nextSubRefresh = refresh;
  }
}
