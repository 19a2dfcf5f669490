/**
 * TokenBucket: the one rate limiter every protection uses (connection admission, command rate
 * limits). A bucket holds up to `burst` tokens and gains `rate` tokens per second; each
 * admitted event takes one token. It is refilled lazily from the clock passed to each call,
 * so it needs no timer, and it allocates nothing after construction: a node can hold one per
 * connection and per user, and consult them on every command.
 *
 * Time is in milliseconds on a monotonic clock (`performance.now()` by default). Tests inject
 * the clock by passing `now` explicitly to every call.
 *
 * @example
 * ```ts
 * const bucket = new TokenBucket(20, 20); // 20/s, bursts of 20
 * if (!bucket.take()) reply(`retry in ${Math.ceil(bucket.retryAfterMs() / 1000)} s`);
 * ```
 *
 * @module
 */

/**
 * TokenBucket admits `rate` events per second on average and up to `burst` at once.
 *
 * Contract:
 * - a new bucket is full (`burst` tokens), taking the `now` passed to the constructor as its
 *   last refill time;
 * - `take(now)` refills for the time elapsed since the last call, then takes one token and
 *   returns true, or returns false and takes nothing when less than one token is left;
 * - tokens never exceed `burst`; a clock that goes backwards adds nothing (it never removes
 *   tokens either);
 * - `rate` must be a finite number > 0 and `burst` a finite number ≥ 1, else the constructor
 *   throws RangeError. "No limit" (a configured rate of 0) means: make no bucket.
 */
export class TokenBucket {
  /** rate is the refill rate in tokens per second. */
  readonly rate: number;
  /** burst is the capacity: the most tokens the bucket holds, so the largest burst admitted at once. */
  readonly burst: number;
  /** Refill per millisecond, so a refill is one multiplication. */
  readonly #perMs: number;
  /** Tokens as of #last; fractional between whole tokens. */
  #tokens: number;
  /** Clock reading (ms) the tokens were last brought up to date at. */
  #last: number;

  /** Makes a full bucket: `rate` tokens per second, at most `burst`. */
  constructor(rate: number, burst: number, now: number = performance.now()) {
    if (!(Number.isFinite(rate) && rate > 0)) throw new RangeError(`TokenBucket: rate must be > 0, got ${rate}`);
    if (!(Number.isFinite(burst) && burst >= 1)) throw new RangeError(`TokenBucket: burst must be ≥ 1, got ${burst}`);
    this.rate = rate;
    this.burst = burst;
    this.#perMs = rate / 1000;
    this.#tokens = burst;
    this.#last = now;
  }

  /** take takes one token if there is one: true means admit the event, false means refuse it. */
  take(now: number = performance.now()): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /**
   * retryAfterMs is how long until `take` can succeed: 0 when a token is available now, else
   * the milliseconds until the bucket holds one whole token (fractional; round up for headers).
   */
  retryAfterMs(now: number = performance.now()): number {
    this.#refill(now);
    return this.#tokens >= 1 ? 0 : (1 - this.#tokens) / this.#perMs;
  }

  /** tokens is the number of tokens available at `now` (fractional), for metrics and tests. */
  tokens(now: number = performance.now()): number {
    this.#refill(now);
    return this.#tokens;
  }

  #refill(now: number): void {
    const elapsed = now - this.#last;
    // A clock that went backwards (or an injected one repeated) refills nothing, and #last
    // stays at the latest reading so the same interval is never counted twice.
    if (elapsed <= 0) return;
    this.#last = now;
    const t = this.#tokens + elapsed * this.#perMs;
    this.#tokens = t > this.burst ? this.burst : t;
  }
}
