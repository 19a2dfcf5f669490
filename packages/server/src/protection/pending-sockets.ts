/**
 * HTTP connections that have not finished a request (issue 12, item 3: slow-loris). Every TCP
 * connection holds a file descriptor from the moment it is accepted, long before admission
 * sees an upgrade: 450 sockets that send a partial `GET /connection/websocket` and then one
 * byte every few seconds used to hold the whole open-file limit until Node's default header
 * timeout (about 95 s), and every genuine connect and API call on the port was reset (EMFILE).
 *
 * Admission counts these pending sockets together with the accepted WebSockets against the
 * connections the open-file limit holds (protection/fd-limit.ts, `socketCapacity`). When a new
 * connection would take the total over it, the pending sockets that have waited longest are
 * closed first, so the newest connection — a genuine client sends its request at once — gets
 * its turn, and the process never runs out of descriptors. The header timeout
 * (`http_server.headers_timeout`) bounds how long any of them waits anyway. Both are counted
 * in `bulwark_http_sockets_closed_total{reason}` and logged once per burst.
 *
 * A socket is pending from its accept until its request's headers are complete (a request or
 * an upgrade), and again between requests on a kept-alive connection: both hold a descriptor
 * for a request that has not come.
 *
 * @module
 */
import type { Socket } from 'node:net';
import type { Metrics } from '../metrics.js';
import type { BurstLog } from './burst-log.js';

/** ClosedReason is why a pending socket was closed: the `reason` label of bulwark_http_sockets_closed_total. */
export type ClosedReason = 'fd_pressure' | 'headers_timeout' | 'request_timeout';

/** PendingSocketsContext is what the tracking needs from its node. */
export interface PendingSocketsContext {
  readonly metrics: Metrics;
  readonly burstLog: BurstLog;
}

const messages: Record<ClosedReason, string> = {
  fd_pressure:
    'HTTP connections closed: with the open WebSockets they would exceed what the open-file limit holds; the ones waiting longest for a complete request went first',
  headers_timeout: 'HTTP connections closed: request headers not complete within http_server.headers_timeout (408)',
  request_timeout: 'HTTP requests closed: not complete within http_server.request_timeout (408)',
};

/** PendingSockets tracks the node's HTTP connections that wait for a request, oldest first. */
export class PendingSockets {
  readonly #ctx: PendingSocketsContext;
  readonly #occupied: () => number;
  /** Pending sockets in the order they became pending (Set order): the first is the oldest. */
  readonly #pending = new Set<Socket>();
  /** Untracks a socket that closed: one listener for every socket (`this` is the socket that emits). */
  readonly #forget: (this: Socket) => void;
  #capacity = 0;

  /**
   * `occupied` counts the descriptors held by the node's other connections (the accepted
   * WebSockets, admission's `open`).
   */
  constructor(ctx: PendingSocketsContext, occupied: () => number) {
    this.#ctx = ctx;
    this.#occupied = occupied;
    const pending = this.#pending;
    this.#forget = function (this: Socket) {
      pending.delete(this);
    };
  }

  /** size is the number of pending sockets now. */
  get size(): number {
    return this.#pending.size;
  }

  /** capacity is the number of sockets (WebSockets and pending) the open-file limit holds; 0: no bound known. */
  get capacity(): number {
    return this.#capacity;
  }

  /** setCapacity sets the sockets the open-file limit holds (0: unknown or unlimited, nothing is closed for it). */
  setCapacity(capacity: number): void {
    this.#capacity = capacity;
  }

  /**
   * connected tracks a newly accepted connection as pending and, over capacity, closes the
   * pending sockets that waited longest (never the new one: when nothing older is pending,
   * the WebSockets fill the node and admission answers it).
   */
  readonly connected = (socket: Socket): void => {
    const pending = this.#pending;
    pending.add(socket);
    // One shared listener, not a closure per socket: it stays for the connection's life.
    socket.on('close', this.#forget);
    const cap = this.#capacity;
    if (cap === 0) return;
    let excess = this.#occupied() + pending.size - cap;
    if (excess <= 0) return;
    const before = pending.size;
    for (const oldest of pending) {
      if (excess <= 0 || oldest === socket) break;
      pending.delete(oldest);
      oldest.destroy();
      excess--;
      this.#closed('fd_pressure');
    }
    if (before === pending.size) return;
    const ctx = this.#ctx;
    ctx.burstLog.warn(
      'http.fd_pressure',
      { reason: 'fd_pressure', socketCapacity: cap, pendingSockets: pending.size, websockets: this.#occupied() },
      messages.fd_pressure,
    );
  };

  /** requestStarted untracks a socket whose request headers are complete (a request or an upgrade). */
  readonly requestStarted = (socket: Socket): void => {
    this.#pending.delete(socket);
  };

  /** requestEnded tracks a kept-alive socket again once its response is sent: it waits for the next request. */
  readonly requestEnded = (socket: Socket): void => {
    if (socket.destroyed) return;
    this.#pending.delete(socket);
    this.#pending.add(socket);
  };

  /**
   * timedOut counts a request that ran out of time (Node closes it with 408): the headers
   * timeout when its headers never completed, else the request timeout.
   */
  readonly timedOut = (socket: Socket): void => {
    const reason: ClosedReason = this.#pending.delete(socket) ? 'headers_timeout' : 'request_timeout';
    this.#closed(reason);
    this.#ctx.burstLog.warn(`http.${reason}`, { reason }, messages[reason]);
  };

  #closed(reason: ClosedReason): void {
    this.#ctx.metrics.httpSocketClosed(reason);
  }
}
