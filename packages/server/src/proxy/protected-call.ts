/**
 * Protected calls to one backend target (incident 4): every call to the game's backend goes
 * through a {@link ProtectedTarget}, which applies, in this order, the cheapest refusal first:
 *
 * 1. the kill switch (an operator turned the feature off: refused, final);
 * 2. the circuit breaker (the backend is failing: refused without calling it, temporary);
 * 3. the concurrency limit (slots busy and queue full: refused at once, temporary), fixed or
 *    adaptive (adaptive-limit.ts: each call that held a slot reports its round trip, or a drop
 *    when it timed out or the backend answered that it is overloaded);
 * 4. the deadline (deadline.ts: the target's `timeoutMs`, or the caller's own deadline), which
 *    covers the wait for a slot and the call itself; when it passes, the AbortSignal handed to
 *    the call is aborted, so the HTTP request is really cancelled and the backend stops
 *    spending work on an answer nobody will read.
 *
 * Whatever fails comes out as a {@link ProxyError} with a stable `code` and a `temporary` flag
 * (see errors.ts), so the proxy answers clients with the protocol's `temporary` flag right.
 *
 * @example
 * ```ts
 * const target = new ProtectedTarget('rpc:inventory', { timeoutMs: 500, maxConcurrent: 32 });
 * const data = await target.call(async (signal) => {
 *   const res = await fetch(url, { method: 'POST', body, signal });
 *   if (!res.ok) throw OriginError.fromStatus(target.name, res.status);
 *   return res.json();
 * });
 * ```
 *
 * @module
 */
import { CircuitBreaker } from './circuit-breaker.js';
import type { BreakerPermit, BreakerState, CircuitBreakerOptions } from './circuit-breaker.js';
import { ConcurrencyLimiter } from './concurrency-limiter.js';
import type { ConcurrencyLimiterOptions } from './concurrency-limiter.js';
import { Deadline, untilAborted } from './deadline.js';
import { isOverloadSignal, OriginError, ProxyKilledError, ProxyTimeoutError, toProxyError } from './errors.js';
import type { CallSignal } from './adaptive-limit.js';
import type { ProxyError, ProxyErrorCode } from './errors.js';

/**
 * KillSwitchCheck returns the operator's reason when the call must be refused, else
 * undefined. It runs on every call, so it must be cheap (a Map lookup).
 */
export type KillSwitchCheck = () => string | undefined;

/** CallOutcome is how a call ended: `ok` or the code of its error; also a metrics label value. */
export type CallOutcome = 'ok' | ProxyErrorCode;

/** callOutcomes lists every {@link CallOutcome}, e.g. to pre-create metric children. */
export const callOutcomes = [
  'ok',
  'timeout',
  'overloaded',
  'circuit_open',
  'killed',
  'origin_error',
] as const satisfies readonly CallOutcome[];

/** ProtectedTargetOptions configures the protections of one target. */
export interface ProtectedTargetOptions extends ConcurrencyLimiterOptions {
  /** Deadline of a call, from the moment it is admitted (wait for a slot included), in ms. Default: 1000. */
  timeoutMs?: number;
  /** Circuit breaker tuning (its defaults are in circuit-breaker.ts). */
  breaker?: CircuitBreakerOptions;
  /** Kill switch checked before every call, unless the call brings its own. Default: none. */
  killSwitch?: KillSwitchCheck;
  /**
   * Whether a failed call counts against the breaker. Default: temporary errors do (a final
   * error is an answer: the backend is healthy); a call refused before it reached the backend
   * never does.
   */
  countsAgainstBreaker?: (err: ProxyError) => boolean;
  /** Called once per call with how it ended and how long it took (ms), for latency metrics. */
  onOutcome?: (outcome: CallOutcome, durationMs: number) => void;
}

/** protectedTargetDefaults are the defaults of {@link ProtectedTargetOptions} not in the limiter or breaker. */
export const protectedTargetDefaults = { timeoutMs: 1000 } as const;

/** CallOptions are per-call settings. */
export interface CallOptions {
  /**
   * Kill switch of this call, in place of the target's: when one target serves several RPC
   * methods, the switch is the method's.
   */
  killSwitch?: KillSwitchCheck;
  /**
   * The caller's deadline, in place of the target's `timeoutMs`: it must abort with a
   * ProxyError (a {@link Deadline}'s signal does), and it covers the wait for a slot.
   */
  signal?: AbortSignal;
  /** Who the call is for (a user, or a connection without one), for a fair queue. Default: ''. */
  caller?: string;
}

/** ProtectedTargetStats is a snapshot of a target, for metrics and the admin API. */
export interface ProtectedTargetStats {
  readonly target: string;
  /** Calls holding a concurrency slot. */
  readonly inFlight: number;
  /** Calls waiting for a slot. */
  readonly queued: number;
  /** The concurrency limit now (adaptive or max_concurrent). */
  readonly limit: number;
  readonly breaker: BreakerState;
  /** Calls finished since start, by outcome (monotonic counters). */
  readonly outcomes: Readonly<Record<CallOutcome, number>>;
}

/** ProtectedTarget is one backend endpoint with its own limit, breaker and deadline. */
export class ProtectedTarget {
  /** Name of the target, in errors and metrics, e.g. "rpc:inventory"; never credentials. */
  readonly name: string;
  readonly #timeoutMs: number;
  readonly #limiter: ConcurrencyLimiter;
  readonly #breaker: CircuitBreaker;
  readonly #killSwitch: KillSwitchCheck | undefined;
  readonly #countsAgainstBreaker: (err: ProxyError) => boolean;
  readonly #onOutcome: ((outcome: CallOutcome, durationMs: number) => void) | undefined;
  readonly #outcomes = Object.fromEntries(callOutcomes.map((o) => [o, 0])) as Record<CallOutcome, number>;

  /** Throws a TypeError naming a bad option. */
  constructor(name: string, options: ProtectedTargetOptions = {}) {
    this.name = name;
    this.#timeoutMs = options.timeoutMs ?? protectedTargetDefaults.timeoutMs;
    if (!Number.isFinite(this.#timeoutMs) || this.#timeoutMs <= 0) {
      throw new TypeError(`protected target ${name}: timeoutMs must be a positive number (got ${this.#timeoutMs})`);
    }
    this.#limiter = new ConcurrencyLimiter(name, options);
    this.#breaker = new CircuitBreaker(name, options.breaker);
    this.#killSwitch = options.killSwitch;
    this.#countsAgainstBreaker = options.countsAgainstBreaker ?? ((err) => err.temporary);
    this.#onOutcome = options.onOutcome;
  }

  /**
   * call runs `fn` under the target's protections and resolves with its result, or rejects
   * with a {@link ProxyError}. `fn` must pass `signal` to its I/O (fetch's `signal` option):
   * the signal aborts at the deadline. The caller is answered at the deadline even if `fn`
   * ignores the signal, but `fn` keeps its slot until it settles, so the limit always bounds
   * the requests the backend is really working on.
   */
  async call<T>(fn: (signal: AbortSignal) => Promise<T>, options?: CallOptions): Promise<T> {
    const started = performance.now();
    const reason = (options?.killSwitch ?? this.#killSwitch)?.();
    if (reason !== undefined) throw this.#fail(new ProxyKilledError(this.name, reason), started);
    let permit;
    try {
      permit = this.#breaker.acquire();
    } catch (err) {
      throw this.#fail(err as ProxyError, started);
    }
    const caller = options?.caller ?? '';
    if (options?.signal !== undefined) return this.#run(fn, permit, started, options.signal, caller, () => {});
    const deadline = new Deadline(this.name, this.#timeoutMs);
    try {
      return await this.#run(fn, permit, started, deadline.signal, caller, () => deadline.admitted());
    } finally {
      deadline.clear();
    }
  }

  /** run waits for a slot and calls `fn` until `signal` (the deadline) aborts. */
  async #run<T>(
    fn: (signal: AbortSignal) => Promise<T>,
    permit: BreakerPermit,
    started: number,
    signal: AbortSignal,
    caller: string,
    admitted: () => void,
  ): Promise<T> {
    let release;
    try {
      release = await this.#limiter.acquire(signal, caller);
    } catch (err) {
      permit.done('ignored'); // never reached the backend: says nothing about its health
      throw this.#fail(err as ProxyError, started);
    }
    admitted();
    const admittedAt = performance.now();
    const running = Promise.resolve().then(() => fn(signal));
    running.then(
      () => release('answer'),
      (err: unknown) => release(signalOf(err, signal, admittedAt)),
    );
    try {
      const result = await Promise.race([running, untilAborted(signal)]);
      permit.done('success');
      this.#count('ok', started);
      return result;
    } catch (err) {
      const error: ProxyError = signal.aborted ? (signal.reason as ProxyError) : toProxyError(this.name, err);
      const backendsFault = !signal.aborted || heldByBackend(signal, admittedAt);
      permit.done(backendsFault && this.#countsAgainstBreaker(error) ? 'failure' : 'ignored');
      throw this.#fail(error, started);
    }
  }

  /** stats returns a snapshot of the target's state and counters. */
  stats(): ProtectedTargetStats {
    return {
      target: this.name,
      inFlight: this.#limiter.inFlight,
      queued: this.#limiter.queued,
      limit: this.#limiter.limit,
      breaker: this.#breaker.state,
      outcomes: { ...this.#outcomes },
    };
  }

  /** fail counts a call refused or failed with `err` and returns `err` for the caller to throw. */
  #fail(err: ProxyError, started: number): ProxyError {
    this.#count(err.code, started);
    return err;
  }

  #count(outcome: CallOutcome, started: number): void {
    this.#outcomes[outcome]++;
    this.#onOutcome?.(outcome, performance.now() - started);
  }
}

/**
 * heldByBackend says whether a call whose deadline passed was in flight for at least half of
 * it. A deadline mostly spent waiting for a slot says nothing about the backend: counting such
 * a call as a drop (or a breaker failure) would lower the limit, lengthen the wait, and time
 * out the next calls sooner still — a spiral down to minLimit under any queue.
 */
function heldByBackend(signal: AbortSignal, admittedAt: number): boolean {
  const reason: unknown = signal.reason;
  const timeoutMs = reason instanceof ProxyTimeoutError ? reason.timeoutMs : 0;
  return performance.now() - admittedAt >= timeoutMs / 2;
}

/** signalOf is what a failed call that held a slot tells the adaptive limit. */
function signalOf(err: unknown, signal: AbortSignal, admittedAt: number): CallSignal {
  if (signal.aborted) return heldByBackend(signal, admittedAt) ? 'drop' : 'ignore';
  if (isOverloadSignal(err)) return 'drop';
  return answered(err) ? 'answer' : 'ignore';
}

/**
 * answered says whether a failed call still got an answer from the backend (a status, a body):
 * its round trip is a latency sample. A connection that failed says nothing about latency.
 */
function answered(err: unknown): boolean {
  return err instanceof OriginError && err.failure !== 'unavailable';
}
