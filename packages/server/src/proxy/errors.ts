/**
 * Errors of protected backend calls (incident 4: a client that retried every failure three
 * times turned a slow backend into a dead one). Every error says whether retrying may help
 * (`temporary`) and carries a stable `code`, so the proxy can answer the client with the
 * protocol's `temporary` flag set right, and metrics can count outcomes by code: a
 * well-behaved SDK backs off on a temporary error and stops on a final one.
 *
 * @module
 */

/** ProxyErrorCode is the stable code of a {@link ProxyError}; also a metrics label value. */
export type ProxyErrorCode = 'timeout' | 'overloaded' | 'circuit_open' | 'killed' | 'origin_error';

/**
 * ProxyError is the base of every error a protected call rejects with. `target` names the
 * backend target (endpoint) the call was for, never its credentials.
 */
export abstract class ProxyError extends Error {
  abstract readonly code: ProxyErrorCode;
  /** True when the same call may succeed later, so the client should back off and retry. */
  abstract readonly temporary: boolean;
  readonly target: string;

  constructor(target: string, message: string, options?: { cause?: unknown }) {
    super(`${target}: ${message}`, options);
    this.target = target;
  }
}

/**
 * ProxyTimeoutError: the call did not finish within its deadline (waiting for a slot
 * included); its AbortSignal was aborted, so the HTTP request was cancelled. Temporary.
 */
export class ProxyTimeoutError extends ProxyError {
  readonly code = 'timeout';
  readonly temporary = true;
  readonly timeoutMs: number;
  /** Whether the deadline passed while the call still waited for a concurrency slot. */
  readonly queued: boolean;

  constructor(target: string, timeoutMs: number, queued: boolean) {
    super(target, `no answer within ${timeoutMs} ms${queued ? ' (still queued for a slot)' : ''}`);
    this.name = 'ProxyTimeoutError';
    this.timeoutMs = timeoutMs;
    this.queued = queued;
  }
}

/**
 * ProxyOverloadedError: every concurrency slot of the target was busy and its wait queue was
 * full, so the call was refused at once instead of queueing without bound. Temporary.
 */
export class ProxyOverloadedError extends ProxyError {
  readonly code = 'overloaded';
  readonly temporary = true;

  constructor(target: string, maxConcurrent: number, maxQueue: number) {
    super(target, `overloaded: ${maxConcurrent} calls in flight and ${maxQueue} queued`);
    this.name = 'ProxyOverloadedError';
  }
}

/**
 * CircuitOpenError: the target's circuit breaker is open (too many recent failures), so the
 * call failed without reaching the backend. Temporary; `retryAfterMs` is when the breaker
 * lets a probe through (0 when it is half-open and its probe slots are taken).
 */
export class CircuitOpenError extends ProxyError {
  readonly code = 'circuit_open';
  readonly temporary = true;
  readonly retryAfterMs: number;

  constructor(target: string, retryAfterMs: number) {
    super(target, `circuit open, retry in ${Math.ceil(retryAfterMs)} ms`);
    this.name = 'CircuitOpenError';
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * ProxyKilledError: a kill switch refused the call; `reason` is the operator's. Final on
 * purpose, as the kill-switch reply error is: a switch is turned off by a person, not by
 * time, and clients told to retry would keep hammering what it protects.
 */
export class ProxyKilledError extends ProxyError {
  readonly code = 'killed';
  readonly temporary = false;
  readonly reason: string;

  constructor(target: string, reason: string) {
    super(target, `disabled: ${reason}`);
    this.name = 'ProxyKilledError';
    this.reason = reason;
  }
}

/** Statuses that mean "try again later": timeouts, rate limits, and server-side failures. */
const temporaryStatuses: ReadonlySet<number> = new Set([408, 425, 429]);

/**
 * OriginError: the backend could not be reached, or answered with a failure. `status` is the
 * HTTP status when there was an answer. Temporary for network failures and for 408, 425, 429
 * and 5xx answers; final otherwise (the backend answered, and would answer the same again).
 * Temporary origin errors count as failures for the circuit breaker; final ones do not.
 */
export class OriginError extends ProxyError {
  readonly code = 'origin_error';
  readonly temporary: boolean;
  readonly status: number | undefined;

  constructor(target: string, message: string, options: { temporary: boolean; status?: number; cause?: unknown }) {
    super(target, message, options);
    this.name = 'OriginError';
    this.temporary = options.temporary;
    this.status = options.status;
  }

  /** fromStatus is the error for a non-2xx HTTP answer with `status`, classified as above. */
  static fromStatus(target: string, status: number): OriginError {
    const temporary = status >= 500 || temporaryStatuses.has(status);
    return new OriginError(target, `backend answered HTTP ${status}`, { temporary, status });
  }
}

/** Error codes of failed connections: the backend is down or restarting, so retrying may help. */
const networkCodes: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/**
 * toProxyError classifies what a backend call threw. A {@link ProxyError} is kept as it is (so
 * the caller's HTTP code decides with {@link OriginError.fromStatus}); a network failure
 * (fetch's `TypeError: fetch failed` with a socket error as its cause, or the socket error
 * itself) becomes a temporary OriginError; anything else (a body that is not the JSON
 * expected, a bug) becomes a final one: the same call would fail the same way again.
 */
export function toProxyError(target: string, err: unknown): ProxyError {
  if (err instanceof ProxyError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new OriginError(target, `backend call failed: ${message}`, { temporary: isNetworkError(err), cause: err });
}

/** isNetworkError walks the `cause` chain looking for a connection-level error code. */
function isNetworkError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && networkCodes.has(code)) return true;
  }
  return false;
}
