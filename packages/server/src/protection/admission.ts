/**
 * Connection admission (incident 5, the hug of death): each WebSocket upgrade is accepted or
 * refused before any protocol work — no handshake, no SHA-1, no session, no JWT. A node
 * accepts connections at a bounded rate (`client.connection_rate_limit`) and up to a bounded
 * count (`client.connection_limit`, or what the open-file limit holds; see fd-limit.ts), and
 * refuses the rest — and everything while draining — with a prepared
 * `HTTP 503` + `Retry-After` written straight to the raw socket. Retry-After is jittered
 * uniformly over `protection.retry_after_min…max`, so refused clients come back spread out,
 * not in lockstep.
 *
 * HTTP connections that have not finished their request yet hold descriptors too: admission
 * keeps them in {@link Admission.pending} and counts them with the accepted WebSockets against
 * what the open-file limit holds, closing the longest-waiting first under pressure
 * (pending-sockets.ts: slow-loris).
 *
 * A refusal must cost far less than the connection it refuses: the responses are built once
 * at construction, and the per-refusal work is a few comparisons, a counter increment, a
 * BurstLog call (one log line per burst) and one socket write.
 *
 * @module
 */
import type { Socket } from 'node:net';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { BurstLog } from './burst-log.js';
import type { KillSwitches } from './kill-switches.js';
import type { SheddingState } from './load-shedder.js';
import { PendingSockets } from './pending-sockets.js';
import { TokenBucket } from './token-bucket.js';

/** RejectReason is why admission refused an upgrade: the `reason` label of bulwark_rejections_total. */
export type RejectReason =
  'connection_limit' | 'connection_rate' | 'draining' | 'overload' | 'kill_switch' | 'engine_unavailable';

/** AdmissionContext is what admission needs from its node (a Node satisfies it). */
export interface AdmissionContext {
  readonly config: Readonly<Config>;
  readonly metrics: Metrics;
  readonly burstLog: BurstLog;
  /** True once shutdown began: every upgrade is refused. */
  readonly draining: boolean;
  /** False until the engine started (Redis unreachable at start): every upgrade is refused. */
  readonly engineStarted: boolean;
  /** Load shedding: at its connect level every upgrade is refused. */
  readonly shedder: SheddingState;
  /** A `connect` kill switch refuses every upgrade, telling its reason. */
  readonly killSwitches: KillSwitches;
}

/** AdmissionOptions inject randomness and time, for tests. */
export interface AdmissionOptions {
  /** Uniform random in [0, 1) for the Retry-After jitter; Math.random by default. */
  random?: () => number;
  /** Monotonic clock in ms for the rate limit; performance.now by default. */
  now?: () => number;
}

/** Retry-After values with a prepared response each; wider ranges build theirs per refusal. */
const MAX_PREPARED = 600;

/**
 * retryAfterRange converts protection.retry_after_min/max (ms) to the whole seconds a
 * Retry-After header can carry: [ceil(min), max(that, floor(max))]. A refused client is never
 * told to come back sooner than the minimum.
 */
export function retryAfterRange(minMs: number, maxMs: number): [lo: number, hi: number] {
  const lo = Math.ceil(minMs / 1000);
  return [lo, Math.max(lo, Math.floor(maxMs / 1000))];
}

/** rejectionResponse is the raw HTTP response of a refused upgrade, with its Retry-After in seconds. */
export function rejectionResponse(retryAfterSeconds: number, body = ''): string {
  return (
    'HTTP/1.1 503 Service Unavailable\r\n' +
    'Connection: close\r\n' +
    (body === '' ? '' : 'Content-Type: text/plain; charset=utf-8\r\n') +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    `Retry-After: ${retryAfterSeconds}\r\n` +
    '\r\n' +
    body
  );
}

/**
 * Error listener of a refused socket. Node's HTTP server removes its own socket error handler
 * before emitting 'upgrade'; without one, a client that resets the connection (ECONNRESET,
 * EPIPE) would raise an uncaught 'error' and crash the process. The socket is destroyed by
 * the error anyway, so there is nothing to do. One function for all sockets: no closure.
 */
function ignoreSocketError(): void {}

/**
 * writeRawResponse writes a complete HTTP response (head and body) to the raw socket of an
 * upgrade request and closes it as soon as the bytes are handed to the kernel: the file
 * descriptor is released without waiting for the client's FIN (as ws's abortHandshake does).
 */
export function writeRawResponse(socket: Socket, response: string | Buffer): void {
  socket.on('error', ignoreSocketError);
  // 'finish' fires once the response is flushed to the kernel; destroy() then closes the fd
  // (the kernel still delivers the response, then FIN). Called as a listener, `this` is the socket.
  socket.once('finish', socket.destroy);
  socket.end(response);
}

/** Admission decides, per WebSocket upgrade, whether the node accepts the connection. */
export class Admission {
  readonly #ctx: AdmissionContext;
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #bucket: TokenBucket | undefined;
  readonly #lo: number;
  readonly #hi: number;
  /** Prepared 503 responses, index = Retry-After − #lo; empty for ranges wider than MAX_PREPARED. */
  readonly #responses: Buffer[] = [];
  /** Log fields made once, so a refusal allocates none. */
  #fields: Record<RejectReason, Record<string, unknown>>;
  #limit: number;
  #open = 0;
  /**
   * The node's HTTP connections waiting for a request, counted with the open WebSockets
   * against the sockets the open-file limit holds (set its capacity at start).
   */
  readonly pending: PendingSockets;

  /**
   * Builds the admission of a node from its config: client.connection_limit (replace it with
   * {@link setConnectionLimit} once the open-file limit is known), client.connection_rate_limit
   * and protection.retry_after_min/max.
   */
  constructor(ctx: AdmissionContext, options: AdmissionOptions = {}) {
    this.#ctx = ctx;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? (() => performance.now());
    const cfg = ctx.config;
    const rate = cfg.client.connection_rate_limit;
    // Burst = one second's worth: a node that was idle admits one second of connects at once.
    this.#bucket = rate > 0 ? new TokenBucket(rate, rate, this.#now()) : undefined;
    [this.#lo, this.#hi] = retryAfterRange(cfg.protection.retry_after_min, cfg.protection.retry_after_max);
    if (this.#hi - this.#lo < MAX_PREPARED) {
      for (let s = this.#lo; s <= this.#hi; s++) this.#responses.push(Buffer.from(rejectionResponse(s), 'latin1'));
    }
    this.#limit = cfg.client.connection_limit;
    this.#fields = this.#makeFields();
    this.pending = new PendingSockets(ctx, () => this.#open);
  }

  /** open is the number of WebSocket connections accepted and not closed yet. */
  get open(): number {
    return this.#open;
  }

  /** connectionLimit is the limit enforced: client.connection_limit or the one the open-file limit allows; 0 means none. */
  get connectionLimit(): number {
    return this.#limit;
  }

  /**
   * setConnectionLimit replaces the enforced connection limit (0: none). The node calls it at
   * start with the limit decided from the open-file limit.
   */
  setConnectionLimit(limit: number): void {
    this.#limit = limit;
    this.#fields = this.#makeFields();
  }

  /**
   * admit decides for one upgrade request. True: go on with the upgrade, and call
   * {@link opened} once the WebSocket is accepted and {@link closed} when it closes. False:
   * the upgrade was refused — a 503 with Retry-After is written to `socket`, which is closed,
   * the refusal counted and burst-logged — and the caller must not touch the socket again.
   *
   * Checks, cheapest and most final first: draining, a connect kill switch, load shedding,
   * then the count, then the rate. A refusal by anything before the rate takes no rate token. The count is of accepted WebSockets: it is exact because
   * ws's handleUpgrade accepts synchronously (no verifyClient), so no other upgrade runs
   * between admit() and opened().
   */
  admit(socket: Socket): boolean {
    const ctx = this.#ctx;
    if (ctx.draining) return this.#reject(socket, 'draining');
    if (!ctx.engineStarted) return this.#reject(socket, 'engine_unavailable');
    if (ctx.killSwitches.size > 0) {
      const off = ctx.killSwitches.find('connect');
      if (off !== undefined) return this.#reject(socket, 'kill_switch', `disabled: ${off.reason}\n`);
    }
    if (ctx.shedder.connect) return this.#reject(socket, 'overload');
    if (this.#limit > 0 && this.#open >= this.#limit) return this.#reject(socket, 'connection_limit');
    if (this.#bucket !== undefined && !this.#bucket.take(this.#now())) return this.#reject(socket, 'connection_rate');
    return true;
  }

  /** opened counts one accepted WebSocket connection (call it on accept). */
  opened(): void {
    this.#open++;
  }

  /** closed uncounts one accepted WebSocket connection (call it exactly once, when it closes). */
  closed(): void {
    if (this.#open > 0) this.#open--;
  }

  /** retryAfterSeconds draws a Retry-After, uniform over the whole seconds of retry_after_min…max. */
  retryAfterSeconds(): number {
    return this.#lo + Math.floor(this.#random() * (this.#hi - this.#lo + 1));
  }

  #reject(socket: Socket, reason: RejectReason, body = ''): false {
    const seconds = this.retryAfterSeconds();
    writeRawResponse(
      socket,
      body === ''
        ? (this.#responses[seconds - this.#lo] ?? rejectionResponse(seconds))
        : rejectionResponse(seconds, body),
    );
    const ctx = this.#ctx;
    ctx.metrics.reject(reason);
    ctx.burstLog.warn(`admission.${reason}`, this.#fields[reason], messages[reason]);
    return false;
  }

  #makeFields(): Record<RejectReason, Record<string, unknown>> {
    const retryAfter = `${this.#lo}-${this.#hi}s`;
    return {
      connection_limit: { reason: 'connection_limit', connectionLimit: this.#limit, retryAfter },
      connection_rate: { reason: 'connection_rate', connectionRateLimit: this.#bucket?.rate ?? 0, retryAfter },
      draining: { reason: 'draining', retryAfter },
      overload: { reason: 'overload', retryAfter },
      kill_switch: { reason: 'kill_switch', retryAfter },
      engine_unavailable: { reason: 'engine_unavailable', retryAfter },
    };
  }
}

const messages: Record<RejectReason, string> = {
  connection_limit: 'connections refused: the node holds its connection limit (HTTP 503, Retry-After)',
  connection_rate: 'connections refused: over client.connection_rate_limit (HTTP 503, Retry-After)',
  draining: 'connections refused: the node is draining (HTTP 503, Retry-After)',
  overload: 'connections refused: load shedding, the event loop lags (HTTP 503, Retry-After)',
  kill_switch: 'connections refused: the connect kill switch is on (HTTP 503, Retry-After)',
  engine_unavailable: 'connections refused: the engine has not started, Redis unreachable (HTTP 503, Retry-After)',
};
