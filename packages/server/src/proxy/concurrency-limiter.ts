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
 * @module
 */
import { AdaptiveLimit, type AdaptiveLimitOptions, type CallSignal } from './adaptive-limit.js';
import { ProxyOverloadedError } from './errors.js';

/** ConcurrencyLimiterOptions bounds the calls to one target. */
export interface ConcurrencyLimiterOptions {
  /** Most calls in flight at once. Default: 64. */
  maxConcurrent?: number;
  /** Most calls waiting for a slot; more are refused at once. 0 means no waiting. Default: 256. */
  maxQueue?: number;
  /** Adapt the limit below maxConcurrent (the ceiling) to the backend. Default: off (a fixed limit). */
  adaptive?: AdaptiveLimitOptions | undefined;
}

/** concurrencyLimiterDefaults are the defaults of {@link ConcurrencyLimiterOptions}. */
export const concurrencyLimiterDefaults = { maxConcurrent: 64, maxQueue: 256 } as const;

/**
 * Release gives a slot back, saying how the call went for the adaptive limit (default
 * `ignore`). Calling it more than once has no further effect.
 */
export type Release = (signal?: CallSignal) => void;

interface Waiter {
  grant: (release: Release) => void;
}

/**
 * ConcurrencyLimiter hands out at most `maxConcurrent` slots; up to `maxQueue` callers wait,
 * first come first served, and the rest get a {@link ProxyOverloadedError} at once.
 */
export class ConcurrencyLimiter {
  readonly #target: string;
  readonly #maxConcurrent: number;
  readonly #maxQueue: number;
  readonly #adaptive: AdaptiveLimit | undefined;
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
    this.#now = options.adaptive?.now ?? (() => performance.now());
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
   * while the caller waits (the caller then leaves the queue and holds no slot).
   */
  acquire(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#active < this.limit) {
      this.#active++;
      return Promise.resolve(this.#release());
    }
    if (this.#queue.size >= this.#maxQueue) {
      return Promise.reject(new ProxyOverloadedError(this.#target, this.limit, this.#maxQueue));
    }
    return new Promise<Release>((resolve, reject) => {
      const onAbort = (): void => {
        this.#queue.delete(waiter);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      this.#queue.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
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
        const next = this.#queue.values().next();
        if (next.done) return;
        this.#queue.delete(next.value);
        this.#active++;
        next.value.grant(this.#release());
      }
    };
  }
}
