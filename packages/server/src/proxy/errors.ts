/**
 * The one error taxonomy of backend calls (incident 4: a client that retried every failure
 * three times turned a slow backend into a dead one). Every error a backend call fails with is
 * a {@link ProxyError}: it says whether retrying may help (`temporary`) and carries a stable
 * `code` (a metrics label value). The protections refuse with {@link ProxyKilledError},
 * {@link CircuitOpenError} and {@link ProxyOverloadedError}; the deadline passes with
 * {@link ProxyTimeoutError}; everything the backend itself did wrong (unreachable, a status
 * other than 200, a malformed answer) is an {@link OriginError} with its {@link OriginFailure}.
 *
 * This file also says what each error means outside: {@link proxyCallFailure} is the
 * `result` label of `bulwark_proxy_calls_total`, and {@link clientReply} is the protocol error
 * the client is answered with (SDKs back off on a temporary error and stop on a final one).
 *
 * @module
 */
import { ErrorCode, ProtocolError } from '../protocol/codes.js';

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
  /** The message without the target (for logs that name the target in a field of its own). */
  readonly detail: string;

  constructor(target: string, message: string, options?: { cause?: unknown }) {
    super(`${target}: ${message}`, options);
    this.target = target;
    this.detail = message;
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
 * OriginFailure says what the backend did wrong, as counted in
 * `bulwark_proxy_calls_total{result}`:
 * - `unavailable`: the request could not be sent or the connection broke (backend down);
 * - `http_error`: the backend answered with an HTTP status other than 200;
 * - `malformed`: the body is not JSON, too large, or not the documented response shape.
 */
export type OriginFailure = 'unavailable' | 'http_error' | 'malformed';

/**
 * OriginError: the backend could not be reached, or answered with a failure. `status` is the
 * HTTP status when there was an answer. Temporary for network failures and for 408, 425, 429
 * and 5xx answers; final otherwise (the backend answered, and would answer the same again).
 * Temporary origin errors count as failures for the circuit breaker; final ones do not, unless
 * the target says otherwise (the HTTP proxy's targets count every origin error: see
 * protected-guard.ts).
 */
export class OriginError extends ProxyError {
  readonly code = 'origin_error';
  readonly failure: OriginFailure;
  readonly temporary: boolean;
  readonly status: number | undefined;

  constructor(
    target: string,
    message: string,
    options: { failure: OriginFailure; temporary: boolean; status?: number; cause?: unknown },
  ) {
    super(target, message, options);
    this.name = 'OriginError';
    this.failure = options.failure;
    this.temporary = options.temporary;
    this.status = options.status;
  }

  /** fromStatus is the error for an HTTP answer with `status` (not the one expected), classified as above. */
  static fromStatus(target: string, status: number): OriginError {
    const temporary = status >= 500 || temporaryStatuses.has(status);
    return new OriginError(target, `HTTP status ${status}`, { failure: 'http_error', temporary, status });
  }
}

/** Statuses a backend (or its gateway) answers when it is over capacity: 429, 503, 504. */
const overloadStatuses: ReadonlySet<number> = new Set([429, 503, 504]);

/**
 * isOverloadSignal says whether a backend call failed in a way that means the backend has too
 * much to do: a timeout while it worked on the call, or an answer of 429, 503 or 504. The
 * adaptive concurrency limit (adaptive-limit.ts) backs off on these; any other failure (a 500
 * from a bug, a refused connection) says nothing about load.
 */
export function isOverloadSignal(err: unknown): boolean {
  if (err instanceof ProxyTimeoutError) return !err.queued;
  return err instanceof OriginError && err.status !== undefined && overloadStatuses.has(err.status);
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
 * itself) becomes a temporary `unavailable` OriginError; anything else (a body that is not the
 * JSON expected, a bug) becomes a final `malformed` one: the same call would fail the same way
 * again.
 */
export function toProxyError(target: string, err: unknown): ProxyError {
  if (err instanceof ProxyError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const network = isNetworkError(err);
  return new OriginError(target, `backend call failed: ${message}`, {
    failure: network ? 'unavailable' : 'malformed',
    temporary: network,
    cause: err,
  });
}

/** isNetworkError walks the `cause` chain looking for a connection-level error code. */
function isNetworkError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && networkCodes.has(code)) return true;
  }
  return false;
}

/**
 * ProxyCallFailure is how a failed proxy call is counted in `bulwark_proxy_calls_total{result}`:
 * `timeout` (the deadline passed while the backend worked on it), the {@link OriginFailure},
 * or `rejected` (refused by the protections or the guard without an answer from the backend).
 */
export type ProxyCallFailure = 'timeout' | OriginFailure | 'rejected';

/** proxyCallFailure is the {@link ProxyCallFailure} of what a proxy call failed with. */
export function proxyCallFailure(err: unknown): ProxyCallFailure {
  if (err instanceof ProxyTimeoutError && !err.queued) return 'timeout';
  if (err instanceof OriginError) return err.failure;
  return 'rejected';
}

/**
 * clientReply is what the client is answered when a proxy call failed with `err`. A refusal by
 * the protections keeps its meaning: a kill switch → 108 `disabled: <reason>` (final, like
 * every kill switch); a full queue → 111 (temporary: SDKs back off); an open breaker or a
 * deadline passed in the queue → 100 `backend unavailable` (temporary). A protocol error a
 * guard words itself stays as it is. Every other failure (timeout, backend down, bad answer)
 * is error 100 with `temporary: true`, so SDKs back off and retry instead of hammering.
 */
export function clientReply(err: unknown): ProtocolError {
  if (err instanceof ProtocolError) return err;
  if (err instanceof ProxyKilledError)
    return new ProtocolError(ErrorCode.NotAvailable, `disabled: ${err.reason}`, false);
  if (err instanceof ProxyOverloadedError) {
    return new ProtocolError(ErrorCode.TooManyRequests, 'too many requests: backend busy', true);
  }
  if (err instanceof CircuitOpenError || (err instanceof ProxyTimeoutError && err.queued)) {
    return new ProtocolError(ErrorCode.Internal, 'internal server error: backend unavailable', true);
  }
  return new ProtocolError(ErrorCode.Internal, 'internal server error', true);
}
