/**
 * The HTTP proxy client: every call Bulwark makes to the game backend goes through
 * {@link HttpProxyClient.callBackend}, and through the {@link ProxyGuard} given to the
 * constructor. callBackend sets the call's deadline (the proxy's `timeout` key, deadline.ts)
 * before the guard runs, so the deadline covers whatever the guard does, and the answer is
 * classified where it arrives: an unreachable backend, a status other than 200
 * ({@link OriginError.fromStatus}), a body too large or not JSON are OriginErrors (errors.ts).
 * The guard is the seam for protected calls (concurrency limit per target, circuit breaker,
 * kill switch): it decides whether and when the call runs, within the deadline it is given.
 *
 * {@link HttpProxyClient.call} adds what every event needs around that one function: the
 * response is validated against the documented shape, the backend's `disconnect` and `error`
 * are passed through to the session (DisconnectError, ProtocolError with the backend's code,
 * message and `temporary` flag), and anything else — timeout, backend down, non-200 status,
 * malformed or oversized body, a refusal by the guard — is answered as {@link clientReply}
 * says: error 100 with `temporary: true` for every failure, so SDKs back off and retry instead
 * of hammering. Failures are counted and logged once per burst (a backend outage fails every
 * call: it must not become a log storm).
 *
 * @module
 */
import type { z } from 'zod';
import { DisconnectError, ProtocolError } from '../protocol/codes.js';
import type { BurstLog } from '../protection/burst-log.js';
import { Deadline, untilAborted } from './deadline.js';
import { clientReply, OriginError, ProxyError, proxyCallFailure, type ProxyCallFailure } from './errors.js';
import type { ProxyKind, ProxyTarget } from './proxies.js';
import { proxyResponseSchema } from './proxy-protocol.js';

/**
 * ProxyGuard runs one backend call for `target`: it may refuse it (throw), delay it (queue), or
 * abort it through the signal it hands to `fn`. `deadline` aborts (with a ProxyTimeoutError)
 * when the proxy's timeout passes: a guard that queues stops waiting then, and may hand it to
 * `fn` as is. `caller` says who the call is for (`u:<user>`, or `c:<client id>` without a
 * user), so a guard can queue fairly. Every backend call goes through exactly one guard
 * invocation.
 */
export type ProxyGuard = <T>(
  target: ProxyTarget,
  fn: (signal: AbortSignal) => Promise<T>,
  deadline: AbortSignal,
  caller?: string,
) => Promise<T>;

/**
 * timeoutOnlyGuard is the default guard: it adds nothing to the call, whose only protection is
 * then the per-target deadline that callBackend always sets.
 */
export const timeoutOnlyGuard: ProxyGuard = (_target, fn, deadline) => fn(deadline);

/** ProxyCallResult is how one call ended, as counted in `bulwark_proxy_calls_total{result}`. */
export type ProxyCallResult = 'ok' | 'error' | 'disconnect' | ProxyCallFailure;

/** ProxyCallObserver counts proxy calls (implemented by Metrics). */
export interface ProxyCallObserver {
  proxyCall(kind: ProxyKind, target: string, result: ProxyCallResult, seconds: number): void;
}

/** HttpProxyClientOptions configures an {@link HttpProxyClient}. */
export interface HttpProxyClientOptions {
  /** Wraps every backend call; defaults to {@link timeoutOnlyGuard}. */
  guard?: ProxyGuard | undefined;
  /** Largest response body read, in bytes (proxy.max_response_size). */
  maxResponseBytes: number;
  observer: ProxyCallObserver;
  burstLog: BurstLog;
  /** The Bulwark version, sent as User-Agent so backend logs tell proxy requests apart. */
  version: string;
}

/** ProxyCall is one event to send: its kind, target, request body and the connection's forwarded headers. */
export interface ProxyCall<R extends z.ZodType> {
  kind: ProxyKind;
  target: ProxyTarget;
  body: Record<string, unknown>;
  /** The client's upgrade request headers this node keeps (lower-case names). */
  headers: Readonly<Record<string, string>> | undefined;
  result: R;
  /** The event cannot go on without a result (connect, refresh, sub_refresh): its absence is malformed. */
  requireResult: boolean;
}

/** HttpProxyClient sends proxy events to the backend over HTTP. */
export class HttpProxyClient {
  readonly #guard: ProxyGuard;
  readonly #maxBytes: number;
  readonly #observer: ProxyCallObserver;
  readonly #burstLog: BurstLog;
  readonly #userAgent: string;

  constructor(opts: HttpProxyClientOptions) {
    this.#guard = opts.guard ?? timeoutOnlyGuard;
    this.#maxBytes = opts.maxResponseBytes;
    this.#observer = opts.observer;
    this.#burstLog = opts.burstLog;
    this.#userAgent = `bulwark/${opts.version}`;
  }

  /**
   * call sends one event and returns its validated `result` (undefined when the backend sent
   * none and the event allows that). Throws DisconnectError or ProtocolError only: the
   * backend's own disconnect or error, or error 100 (temporary) for every failure.
   */
  async call<R extends z.ZodType>(c: ProxyCall<R>): Promise<z.output<R> | undefined> {
    const started = performance.now();
    let outcome: ProxyCallResult = 'ok';
    try {
      const answer = await this.callBackend(c.target, JSON.stringify(c.body), c.headers, callerOf(c.body));
      const parsed = proxyResponseSchema(c.result).safeParse(answer);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue?.path.map(String).join('.') ?? '';
        throw malformed(c.target, `unexpected response: ${where ? `${where}: ` : ''}${issue?.message ?? ''}`);
      }
      const { result, error, disconnect } = parsed.data;
      if (disconnect != null) {
        outcome = 'disconnect';
        throw new DisconnectError({ code: disconnect.code, reason: disconnect.reason ?? '' });
      }
      if (error != null) {
        outcome = 'error';
        throw new ProtocolError(error.code, error.message ?? '', error.temporary === true);
      }
      if (result == null && c.requireResult) throw malformed(c.target, 'response has no result');
      return (result ?? undefined) as z.output<R> | undefined;
    } catch (err) {
      if (outcome !== 'ok') throw err; // the backend's own error or disconnect: passed through
      outcome = proxyCallFailure(err);
      const reply = clientReply(err);
      this.#burstLog.error(
        `proxy.${c.kind}.${outcome}`,
        { proxy: c.kind, target: c.target.name, result: outcome, err: logMessage(err, outcome, reply) },
        `${c.kind} proxy call failed (${outcome}): the client gets error 100 (temporary)`,
      );
      throw reply;
    } finally {
      this.#observer.proxyCall(c.kind, c.target.name, outcome, (performance.now() - started) / 1000);
    }
  }

  /**
   * callBackend POSTs `body` (JSON) to the target's endpoint through the guard and returns the
   * parsed JSON answer. It is the one function every backend call goes through. The target's
   * timeout bounds the whole call, the guard's wait and the body included: at the deadline it
   * rejects with a ProxyTimeoutError, whatever the guard does. Otherwise it throws an
   * OriginError for a transport failure, a status other than 200, or a body that is too large
   * or not JSON, and whatever the guard throws when it refuses the call.
   */
  async callBackend(
    target: ProxyTarget,
    body: string,
    forwarded: Readonly<Record<string, string>> | undefined,
    caller?: string,
  ): Promise<unknown> {
    const deadline = new Deadline(target.name, target.timeoutMs);
    try {
      const call = this.#guard(
        target,
        (signal) => {
          deadline.admitted();
          return this.#post(target, body, forwarded, signal, deadline.signal);
        },
        deadline.signal,
        caller,
      );
      return await Promise.race([call, untilAborted(deadline.signal)]);
    } finally {
      deadline.clear();
    }
  }

  async #post(
    target: ProxyTarget,
    body: string,
    forwarded: Readonly<Record<string, string>> | undefined,
    guardSignal: AbortSignal,
    deadline: AbortSignal,
  ): Promise<unknown> {
    const signal = guardSignal === deadline ? deadline : AbortSignal.any([guardSignal, deadline]);
    const failed = (err: unknown): ProxyError =>
      deadline.aborted
        ? (deadline.reason as ProxyError)
        : new OriginError(target.name, `request failed: ${causeMessage(err)}`, {
            failure: 'unavailable',
            temporary: true,
            cause: err,
          });
    let res: Response;
    try {
      res = await fetch(target.endpoint, {
        method: 'POST',
        headers: this.#headers(target, forwarded),
        body,
        signal,
        // A redirect would re-send the request somewhere the config never named.
        redirect: 'error',
      });
    } catch (err) {
      throw failed(err);
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => undefined);
      throw OriginError.fromStatus(target.name, res.status);
    }
    let text: string;
    try {
      text = await readBounded(target, res, this.#maxBytes);
    } catch (err) {
      if (err instanceof ProxyError) throw err;
      throw failed(err);
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw malformed(target, 'response body is not JSON');
    }
  }

  /** #headers: static headers, then the forwarded ones this target lists (they win), then ours. */
  #headers(target: ProxyTarget, forwarded: Readonly<Record<string, string>> | undefined): Record<string, string> {
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(target.staticHeaders)) h[k.toLowerCase()] = v;
    if (forwarded !== undefined) {
      for (const name of target.httpHeaders) {
        const v = forwarded[name];
        if (v !== undefined) h[name] = v;
      }
    }
    h['content-type'] = 'application/json';
    h['user-agent'] ??= this.#userAgent;
    return h;
  }
}

/**
 * malformed is the error of an answer that is not what the protocol documents (final: the
 * backend would answer the same again; the client is still told to retry later).
 */
function malformed(target: ProxyTarget, message: string): OriginError {
  return new OriginError(target.name, message, { failure: 'malformed', temporary: false });
}

/** logMessage is the `err` of the log line: the refusal as the client is told it, else the failure. */
function logMessage(err: unknown, outcome: ProxyCallResult, reply: ProtocolError): string {
  if (err instanceof ProxyError) return outcome === 'rejected' ? reply.message : err.detail;
  return err instanceof Error ? err.message : String(err);
}

/** readBounded reads a response body as UTF-8, refusing more than `max` bytes. */
async function readBounded(target: ProxyTarget, res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? '');
  if (declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw malformed(target, `response body larger than proxy.max_response_size (${max} bytes)`);
  }
  if (res.body === null) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      throw malformed(target, `response body larger than proxy.max_response_size (${max} bytes)`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** causeMessage digs out the reason of a fetch failure (undici wraps it in "fetch failed"). */
function causeMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause;
  if (cause instanceof Error) return `${err.message}: ${cause.message}`;
  return err.message;
}

/** callerOf is who a proxy request is for: its user, or its connection when it has none (connect, anonymous). */
function callerOf(body: Record<string, unknown>): string {
  const user = body['user'];
  return typeof user === 'string' && user !== '' ? `u:${user}` : `c:${String(body['client'] ?? '')}`;
}
