/**
 * A concurrency limit per backend target with a bounded wait queue (incident 4: a backend
 * that slows down must not be sent ever more concurrent requests). Calls over the limit wait
 * in a FIFO queue of bounded length; when the queue is full, a call is refused at once with a
 * temporary error, so overload costs the client one cheap reply instead of a growing pile of
 * waiting requests in this process.
 *
 * The limit is `maxConcurrent`, or, with `adaptive`, an {@link AdaptiveLimit} that moves
 * between its minimum and `maxConcurrent` from what the calls show (issue 12, item 11): each
 * {@link Release} reports how its call ended, and the limiter times the call itself (from the
 * grant to the release) on the adaptive limit's clock.
 *
 * With `fair`, the queue is not first come first served but by caller (the user, or the
 * connection without one): the waiting call of the caller with the lowest recent usage
 * (caller-usage.ts) gets the next slot. A few callers hammering a target then wait behind
 * everyone else instead of everyone waiting behind them; callers that call alike are served in
 * arrival order. Heavy callers are made to wait, not refused: a refusal answered at once is
 * retried at once by a client like incident 4's, a wait is backpressure.
 *
 * @module
 */
import { AdaptiveLimit, type AdaptiveLimitOptions, type CallSignal } from './adaptive-limit.js';
import { CallerUsage } from './caller-usage.js';
import { ProxyOverloadedError } from './errors.js';

/** ConcurrencyLimiterOptions bounds the calls to one target. */
export interface ConcurrencyLimiterOptions {
  /** Most calls in flight at once. Default: 64. */
  maxConcurrent?: number;
  /** Most calls waiting for a slot; more are refused at once. 0 means no waiting. Default: 256. */
  maxQueue?: number;
  /** Adapt the limit below maxConcurrent (the ceiling) to the backend. Default: off (a fixed limit). */
  adaptive?: AdaptiveLimitOptions | undefined;
  /** Serve and refuse queued calls by their caller's recent usage. Default: false (first come, first served). */
  fair?: boolean;
}

/** concurrencyLimiterDefaults are the defaults of {@link ConcurrencyLimiterOptions}. */
export const concurrencyLimiterDefaults = { maxConcurrent: 64, maxQueue: 256 } as const;

/**
 * Release gives a slot back, saying how the call went for the adaptive limit (default
 * `ignore`). Calling it more than once has no further effect.
 */
export type Release = (signal?: CallSignal) => void;

interface Waiter {
  readonly caller: string;
  grant: (release: Release) => void;
}

/**
 * ConcurrencyLimiter hands out at most `limit` slots; up to `maxQueue` callers wait (first
 * come first served, or by usage with `fair`), and the rest get a {@link ProxyOverloadedError}
 * at once.
 */
export class ConcurrencyLimiter {
  readonly #target: string;
  readonly #maxConcurrent: number;
  readonly #maxQueue: number;
  readonly #adaptive: AdaptiveLimit | undefined;
  readonly #usage: CallerUsage | undefined;
  readonly #now: () => number;
  #active = 0;
  /** Waiting callers in arrival order; a Set so a caller that gives up leaves in O(1). */
  readonly #queue = new Set<Waiter>();

  /** `target` names the backend in errors. Throws a TypeError naming a bad option. */
  constructor(target: string, options: ConcurrencyLimiterOptions = {}) {
    this.#target = target;
    this.#maxConcurrent = options.maxConcurrent ?? concurrencyLimiterDefaults.maxConcurrent;
    this.#maxQueue = options.maxQueue ?? concurrencyLimiterDefaults.maxQueue;
    if (!Number.isInteger(this.#maxConcurrent) || this.#maxConcurrent < 1) {
      throw new TypeError(`concurrency limiter: maxConcurrent must be an integer ≥ 1 (got ${this.#maxConcurrent})`);
    }
    if (!Number.isInteger(this.#maxQueue) || this.#maxQueue < 0) {
      throw new TypeError(`concurrency limiter: maxQueue must be an integer ≥ 0 (got ${this.#maxQueue})`);
    }
    this.#adaptive = options.adaptive && new AdaptiveLimit(this.#maxConcurrent, options.adaptive);
    const now = options.adaptive?.now ?? (() => performance.now());
    this.#now = now;
    this.#usage = options.fair === true ? new CallerUsage(now) : undefined;
  }

  /** limit is the number of slots now: the adaptive limit, or maxConcurrent. */
  get limit(): number {
    return this.#adaptive?.limit ?? this.#maxConcurrent;
  }

  /** baselineMs is the adaptive limit's no-load round trip (undefined when fixed or not measured yet). */
  get baselineMs(): number | undefined {
    return this.#adaptive?.baselineMs;
  }

  /** inFlight is the number of slots held. */
  get inFlight(): number {
    return this.#active;
  }

  /** queued is the number of callers waiting for a slot. */
  get queued(): number {
    return this.#queue.size;
  }

  /**
   * acquire resolves with a {@link Release} once a slot is free. It rejects at once with a
   * ProxyOverloadedError when the queue is full, and with `signal.reason` when `signal` aborts
   * while the caller waits (the caller then leaves the queue and holds no slot). `caller` (a
   * user or connection) matters only to a fair queue.
   */
  acquire(signal?: AbortSignal, caller = ''): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#active < this.limit) {
      this.#active++;
      this.#usage?.charge(caller);
      return Promise.resolve(this.#release());
    }
    if (this.#queue.size >= this.#maxQueue) return Promise.reject(this.#overloaded());
    return new Promise<Release>((resolve, reject) => {
      const onAbort = (): void => {
        this.#queue.delete(waiter);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        caller,
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      this.#queue.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #overloaded(): ProxyOverloadedError {
    return new ProxyOverloadedError(this.#target, this.limit, this.#maxQueue);
  }

  /** next takes the waiter to serve: the first, or the lightest caller's (the earliest among equals). */
  #next(): Waiter | undefined {
    const usage = this.#usage;
    const first = this.#queue.values().next();
    if (first.done) return undefined;
    if (usage === undefined) return first.value;
    let lightest = first.value;
    let least = usage.score(lightest.caller);
    for (const w of this.#queue) {
      if (least === 0) break;
      const score = usage.score(w.caller);
      if (score < least) {
        lightest = w;
        least = score;
      }
    }
    return lightest;
  }

  /**
   * release makes the one-shot function that frees a slot granted now: it reports the call to
   * the adaptive limit, then hands free slots to waiters, as many as the (maybe new) limit allows.
   */
  #release(): Release {
    let released = false;
    const granted = this.#now();
    const inFlight = this.#active;
    return (signal = 'ignore') => {
      if (released) return;
      released = true;
      this.#adaptive?.record(signal, this.#now() - granted, inFlight);
      this.#active--;
      while (this.#active < this.limit) {
        const next = this.#next();
        if (next === undefined) return;
        this.#queue.delete(next);
        this.#active++;
        this.#usage?.charge(next.caller);
        next.grant(this.#release());
      }
    };
  }
}
