/**
 * The IPC messages between a {@link ConnFleet} (the scenario's process) and its connection
 * workers (`conn-worker.js` child processes), and the two naming rules both sides share: which
 * source address and port connection i binds, and how an error message is tallied.
 *
 * Why child processes: one process cannot hold more than ~19,000 sockets here (the open-file
 * limit is 20,000, hard), so 100,000 connections need several load-generator processes.
 *
 * @module
 */

/** ConnWorkerStart tells a worker which connections to open (parent → worker, once). */
export interface ConnWorkerStart {
  type: 'start';
  /** WebSocket URL of the server. */
  url: string;
  /** HMAC secret to sign each connection's JWT with (user `user-<i>`). */
  tokenSecret: string;
  /** Global connection indices [from, to) this worker opens. */
  from: number;
  to: number;
  /** Connects in flight at once in this worker. */
  concurrency: number;
  /** Connection i subscribes to `bench:idle<i % channels>`. */
  channels: number;
  /** Source addresses and ports: see {@link sourceEndpoint}; `sourceIps` 0 lets the kernel choose. */
  sourcePrefix: string;
  sourceIps: number;
  /** Longest wait for the handshake, the connect reply and the subscribe reply, each. */
  timeoutMs: number;
  /**
   * How often a connection refused with HTTP 503 (admission: overload, connection limit) is
   * tried again, after a jittered, growing delay (0.5–1.5 s, then 0.5–2.5 s, …) as Bulwark's
   * docs advise clients.
   */
  retries: number;
}

/** ConnWorkerSnapshot asks for the counts of connections still open (parent → worker). */
export interface ConnWorkerSnapshotRequest {
  type: 'snapshot';
  id: number;
}

/** ConnWorkerClose asks the worker to close every socket at once, answer `closed` and exit. */
export interface ConnWorkerClose {
  type: 'close';
}

/** ToConnWorker is every message a worker receives. */
export type ToConnWorker = ConnWorkerStart | ConnWorkerSnapshotRequest | ConnWorkerClose;

/** ConnWorkerProgress reports connects since the previous progress (worker → parent, ~4/s). */
export interface ConnWorkerProgress {
  type: 'progress';
  /** Connections established (subscribe confirmed) since the previous report. */
  connected: number;
  /** Connections given up on since the previous report. */
  failed: number;
  /** HTTP 503 refusals that were retried, since the previous report. */
  rejected: number;
  /** Handshake time (socket opened → subscribe confirmed), ms, of each new connection. */
  handshakeMs: number[];
  /** Final errors by kind ({@link errorKind}) since the previous report. */
  errors: Record<string, number>;
  /** Whether the connect loop has finished (the last progress message of the worker). */
  done: boolean;
}

/** ConnWorkerSnapshot answers a snapshot request (worker → parent). */
export interface ConnWorkerSnapshot {
  type: 'snapshot';
  id: number;
  /** Established connections still open. */
  open: number;
  /** Established connections closed so far (by the server or the network). */
  closed: number;
  /** Close codes of those, tallied. */
  closeCodes: Record<string, number>;
  /** Established connections that answered at least one server ping. */
  pinged: number;
  /** Server pings answered, all connections. */
  pings: number;
}

/** ConnWorkerClosed reports that every socket was destroyed (worker → parent, then it exits). */
export interface ConnWorkerClosed {
  type: 'closed';
  /** Time the worker spent destroying its sockets, ms. */
  ms: number;
}

/**
 * ConnWorkerReady says the worker listens for messages (worker → parent, first): an ES module
 * registers its handlers only once loaded, so a `start` sent right after the fork could be lost.
 */
export interface ConnWorkerReady {
  type: 'ready';
}

/** FromConnWorker is every message a worker sends. */
export type FromConnWorker = ConnWorkerReady | ConnWorkerProgress | ConnWorkerSnapshot | ConnWorkerClosed;

/** First source port given out: ports are assigned, not left to the kernel (see sourceEndpoint). */
export const FIRST_SOURCE_PORT = 20_000;

/** Most connections per source address: ports FIRST_SOURCE_PORT … 65535. */
export const MAX_PER_SOURCE_ADDRESS = 65_536 - FIRST_SOURCE_PORT;

/**
 * sourceEndpoint is the source address and port connection `i` binds: address
 * `<prefix>.<1 + i mod ips>` (e.g. 127.31.7.1 … 127.31.7.5), port FIRST_SOURCE_PORT + ⌊i / ips⌋;
 * undefined when `ips` is 0 (the kernel chooses both). Several addresses, because one address
 * has only ~28,000 ephemeral ports towards the server's port; explicit ports, because asking the
 * kernel for a free one (bind to port 0) searches the ports in use: ~200 µs of system time per
 * socket at 10,000 sockets on an address, more than the rest of a connect costs the load
 * generator. The prefix is random per run, so no other socket uses these addresses; a port that
 * is taken anyway (a listener on 0.0.0.0) fails with EADDRINUSE and the worker lets the kernel
 * choose for that connection.
 */
export function sourceEndpoint(
  prefix: string,
  ips: number,
  i: number,
): { localAddress: string; localPort: number } | undefined {
  if (ips <= 0) return undefined;
  return { localAddress: `${prefix}.${1 + (i % ips)}`, localPort: FIRST_SOURCE_PORT + Math.floor(i / ips) };
}

/**
 * errorKind names an error message for a tally, dropping what differs between connections
 * (ports, ids): "HTTP 503", "EADDRNOTAVAIL", "timeout", "reply error 109", "closed 3501".
 */
export function errorKind(message: string): string {
  const http = /Unexpected server response: (\d+)/.exec(message);
  if (http) return `HTTP ${http[1]}`;
  const errno = /\b(E[A-Z]{3,})\b/.exec(message);
  if (errno) return errno[1] as string;
  if (/timeout|timed out/i.test(message)) return 'timeout';
  const reply = /\berror (\d+):/.exec(message);
  if (reply) return `reply error ${reply[1]}`;
  const closed = /closed(?: with)?:? (\d{4})\b/.exec(message);
  if (closed) return `closed ${closed[1]}`;
  return message.replace(/\d+/g, 'N').slice(0, 80);
}
