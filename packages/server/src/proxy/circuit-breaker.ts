/**
 * A circuit breaker per backend target (incident 4: once storage throttled, every request
 * and every retry still went to it). When too many recent calls failed, the breaker opens
 * and calls fail at once without reaching the backend, which gets time to recover; after a
 * while a few probe calls are let through, and their results close or reopen it.
 *
 * closed ──failure rate ≥ threshold over the window (≥ minRequests calls)──▶ open
 * open ──openMs elapsed──▶ half_open (up to halfOpenProbes calls at once are let through)
 * half_open ──halfOpenProbes probes succeeded──▶ closed;  ──a probe failed──▶ open
 *
 * A failureRateThreshold of 0 turns the breaker off: it stays closed and counts nothing.
 *
 * @module
 */
import { CircuitOpenError } from './errors.js';

/** BreakerState is where a {@link CircuitBreaker} is; also a metrics label value. */
export type BreakerState = 'closed' | 'open' | 'half_open';

/** CircuitBreakerOptions tunes when a breaker opens and how it recovers. */
export interface CircuitBreakerOptions {
  /** Failure rate (0–1] over the window at which the breaker opens; 0 turns the breaker off. Default: 0.5. */
  failureRateThreshold?: number;
  /** Fewest calls in the window before the rate is judged, so two failures of two calls do not open it. Default: 20. */
  minRequests?: number;
  /** Length of the rolling window the rate is measured over (ms). Default: 10000. */
  windowMs?: number;
  /** Number of buckets the window slides by: more is smoother, costs memory per target. Default: 10. */
  windowBuckets?: number;
  /** How long the breaker stays open before it lets probes through (ms). Default: 5000. */
  openMs?: number;
  /** Probe calls let through at once while half-open; this many successes close the breaker. Default: 1. */
  halfOpenProbes?: number;
  /** Monotonic clock in ms; injectable for tests. Default: performance.now. */
  now?: () => number;
  /** Called on every state change, for logs and metrics. */
  onStateChange?: (from: BreakerState, to: BreakerState) => void;
}

/** circuitBreakerDefaults are the defaults of {@link CircuitBreakerOptions}. */
export const circuitBreakerDefaults = {
  failureRateThreshold: 0.5,
  minRequests: 20,
  windowMs: 10_000,
  windowBuckets: 10,
  openMs: 5000,
  halfOpenProbes: 1,
} as const;

/**
 * PermitOutcome is how a permitted call ended for the breaker: `success` (the backend is
 * healthy), `failure` (it is not: timeout, 5xx, connection error) or `ignored` (says nothing
 * about its health, e.g. refused locally before being sent, or a final 4xx answer).
 */
export type PermitOutcome = 'success' | 'failure' | 'ignored';

/** BreakerPermit lets one call through; report how it ended exactly once (later reports are ignored). */
export interface BreakerPermit {
  done(outcome: PermitOutcome): void;
}

/** The permit of a breaker that is off: outcomes are not counted. */
const offPermit: BreakerPermit = { done: () => {} };

interface Bucket {
  /** Index of the time slice the counts belong to (time / bucket width). */
  slice: number;
  successes: number;
  failures: number;
}

/**
 * CircuitBreaker decides whether a call may go to its target. Results of calls permitted
 * before the last state change are ignored: a slow failure from before the breaker opened
 * must not reopen it once it is probing, nor a slow success close it.
 */
export class CircuitBreaker {
  readonly #target: string;
  readonly #threshold: number;
  readonly #minRequests: number;
  readonly #bucketMs: number;
  readonly #openMs: number;
  readonly #probes: number;
  readonly #now: () => number;
  readonly #onStateChange: ((from: BreakerState, to: BreakerState) => void) | undefined;
  readonly #buckets: Bucket[];
  #state: BreakerState = 'closed';
  /** Bumped on every state change; a permit only counts in the generation it was given in. */
  #generation = 0;
  #openUntil = 0;
  #probesInFlight = 0;
  #probeSuccesses = 0;

  /** `target` names the backend in errors. Throws a TypeError naming a bad option. */
  constructor(target: string, options: CircuitBreakerOptions = {}) {
    const d = circuitBreakerDefaults;
    const o = options;
    const rate = (v: number): boolean => v >= 0 && v <= 1;
    this.#target = target;
    this.#threshold = check('failureRateThreshold', o.failureRateThreshold ?? d.failureRateThreshold, rate);
    this.#minRequests = check('minRequests', o.minRequests ?? d.minRequests, atLeastOne);
    const windowMs = check('windowMs', o.windowMs ?? d.windowMs, (v) => v > 0);
    const buckets = check('windowBuckets', o.windowBuckets ?? d.windowBuckets, atLeastOne);
    this.#bucketMs = windowMs / buckets;
    this.#openMs = check('openMs', o.openMs ?? d.openMs, (v) => v > 0);
    this.#probes = check('halfOpenProbes', o.halfOpenProbes ?? d.halfOpenProbes, atLeastOne);
    this.#now = options.now ?? (() => performance.now());
    this.#onStateChange = options.onStateChange;
    this.#buckets = Array.from({ length: buckets }, () => ({ slice: -Infinity, successes: 0, failures: 0 }));
  }

  /** state is the current state; an open breaker whose open interval has passed reads as half_open. */
  get state(): BreakerState {
    this.#tick();
    return this.#state;
  }

  /**
   * acquire lets a call through and returns its permit, or throws a {@link CircuitOpenError}
   * when the breaker is open, or half-open with every probe slot taken.
   */
  acquire(): BreakerPermit {
    if (this.#threshold === 0) return offPermit;
    this.#tick();
    if (this.#state === 'open') throw new CircuitOpenError(this.#target, this.#openUntil - this.#now());
    const generation = this.#generation;
    if (this.#state === 'half_open') {
      if (this.#probesInFlight + this.#probeSuccesses >= this.#probes) throw new CircuitOpenError(this.#target, 0);
      this.#probesInFlight++;
    }
    let reported = false;
    return {
      done: (outcome) => {
        if (reported) return;
        reported = true;
        if (generation === this.#generation) this.#record(outcome);
      },
    };
  }

  #record(outcome: PermitOutcome): void {
    if (this.#state === 'half_open') {
      this.#probesInFlight--;
      if (outcome === 'failure') this.#open();
      else if (outcome === 'success' && ++this.#probeSuccesses >= this.#probes) this.#transition('closed');
      return;
    }
    if (outcome === 'ignored') return;
    const bucket = this.#bucket(this.#now());
    if (outcome === 'success') {
      bucket.successes++;
      return;
    }
    bucket.failures++;
    this.#judge();
  }

  /** judge opens the breaker when the window holds enough calls and too many of them failed. */
  #judge(): void {
    const current = Math.floor(this.#now() / this.#bucketMs);
    let successes = 0;
    let failures = 0;
    for (const b of this.#buckets) {
      if (b.slice <= current - this.#buckets.length) continue; // slid out of the window
      successes += b.successes;
      failures += b.failures;
    }
    const total = successes + failures;
    if (total >= this.#minRequests && failures / total >= this.#threshold) this.#open();
  }

  /** bucket returns the bucket of time `now`, emptied first if it still holds an older slice. */
  #bucket(now: number): Bucket {
    const slice = Math.floor(now / this.#bucketMs);
    const bucket = this.#buckets[slice % this.#buckets.length]!;
    if (bucket.slice !== slice) {
      bucket.slice = slice;
      bucket.successes = 0;
      bucket.failures = 0;
    }
    return bucket;
  }

  #open(): void {
    this.#openUntil = this.#now() + this.#openMs;
    this.#transition('open');
  }

  /** tick moves an open breaker to half_open once its open interval has passed. */
  #tick(): void {
    if (this.#state === 'open' && this.#now() >= this.#openUntil) this.#transition('half_open');
  }

  #transition(to: BreakerState): void {
    const from = this.#state;
    this.#state = to;
    this.#generation++;
    this.#probesInFlight = 0;
    this.#probeSuccesses = 0;
    // A closed breaker starts from an empty window: failures from before it opened are history.
    if (to === 'closed') for (const b of this.#buckets) b.slice = -Infinity;
    this.#onStateChange?.(from, to);
  }
}

function atLeastOne(v: number): boolean {
  return Number.isInteger(v) && v >= 1;
}

function check(option: string, value: number, ok: (v: number) => boolean): number {
  if (!Number.isFinite(value) || !ok(value))
    throw new TypeError(`circuit breaker: ${option} is invalid (got ${value})`);
  return value;
}
