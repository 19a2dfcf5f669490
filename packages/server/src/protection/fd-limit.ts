/**
 * The startup check of the open-file limit against the connection limit (incident 5: a push
 * server hit its 10k file-descriptor limit in a traffic spike). Every WebSocket is a file
 * descriptor; a process out of descriptors fails `accept()` with EMFILE, and then also fails
 * to open log files, engine connections and everything else, for everyone at once. Bulwark
 * instead knows at start how many connections fit, and admission rejects beyond that cleanly
 * (HTTP 503 with Retry-After).
 *
 * - With `client.connection_limit` = N > 0, the soft limit must be at least
 *   `ceil(N × protection.fd_headroom) + FD_RESERVE`; otherwise start() fails with
 *   BW_ERR_FD_LIMIT, whose message says what to set.
 * - With `client.connection_limit` = 0 ("no limit"), the connections the soft limit holds,
 *   `floor((soft − FD_RESERVE) / fd_headroom)`, become the effective connection limit, and an
 *   info line says so: a node never accepts its way into EMFILE.
 *
 * Node.js has no getrlimit/setrlimit. The limits are read from `/proc/self/limits` on Linux;
 * elsewhere the check is skipped (debug log). Bulwark cannot raise the soft limit itself, but
 * Node.js already raises it to the hard limit when the process starts, so in practice the soft
 * limit seen here is the hard one.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { BulwarkError } from '../errors.js';

/**
 * FD_RESERVE is the number of file descriptors kept for everything but client connections:
 * stdio, log files, the listening socket, engine and backend connections, HTTP API requests,
 * files the process opens, and Node's own (epoll, eventfd, pipes).
 */
export const FD_RESERVE = 64;

/** FdLimits are the open-file limits of the process (RLIMIT_NOFILE); `Infinity` means unlimited. */
export interface FdLimits {
  /** The soft limit: what the process may open now. */
  soft: number;
  /** The hard limit: the most the soft limit can be raised to without privileges. */
  hard: number;
}

/**
 * FdLimitsReader returns the process's open-file limits, or undefined when they cannot be
 * known on this platform (the check is then skipped). Injectable for tests.
 */
export type FdLimitsReader = () => FdLimits | undefined;

/** FdLimitOptions are the config values the check uses. */
export interface FdLimitOptions {
  /** client.connection_limit; 0 means none configured. */
  connectionLimit: number;
  /** protection.fd_headroom: descriptors needed per connection, as a factor (≥ 1). */
  fdHeadroom: number;
}

/** FdLimitPlan is the outcome of {@link planConnectionLimit}. */
export interface FdLimitPlan {
  /** The connection limit admission enforces; 0 means none. */
  connectionLimit: number;
  /**
   * How the limit was decided: `config` (client.connection_limit, and it fits), `fd_limit`
   * (derived from the soft limit because client.connection_limit is 0), `none` (no limit
   * configured and the open-file limit is unlimited), or `unchecked` (limits unknown).
   */
  source: 'config' | 'fd_limit' | 'none' | 'unchecked';
  /** The limits the decision used, when known. */
  limits: FdLimits | undefined;
  /** Descriptors the connection limit needs (0 when there is no limit). */
  required: number;
  /**
   * The sockets the soft limit holds, WebSockets and HTTP connections waiting for a request
   * together ({@link connectionsAllowed}); 0 when unknown or unlimited. Under it, the waiting
   * HTTP connections are closed oldest first (protection/pending-sockets.ts).
   */
  socketCapacity: number;
}

function parseLimit(value: string): number | undefined {
  if (value === 'unlimited') return Number.POSITIVE_INFINITY;
  if (!/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/**
 * parseProcLimits extracts the "Max open files" soft and hard limits from the text of a Linux
 * `/proc/<pid>/limits` file; undefined when the line is missing or malformed.
 */
export function parseProcLimits(text: string): FdLimits | undefined {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!m) return undefined;
  const soft = parseLimit(m[1] as string);
  const hard = parseLimit(m[2] as string);
  if (soft === undefined || hard === undefined) return undefined;
  return { soft, hard };
}

/**
 * readFdLimits reads this process's open-file limits from `/proc/self/limits` (Linux);
 * undefined on other platforms. Throws when the file exists but cannot be read or parsed.
 */
export function readFdLimits(): FdLimits | undefined {
  if (process.platform !== 'linux') return undefined;
  const limits = parseProcLimits(readFileSync('/proc/self/limits', 'utf8'));
  if (!limits) throw new Error('no parsable "Max open files" line in /proc/self/limits');
  return limits;
}

/** requiredFds is the soft limit `connectionLimit` connections need: ceil(N × headroom) + FD_RESERVE. */
export function requiredFds(connectionLimit: number, fdHeadroom: number): number {
  // Rounded to 1e-6 first: 100 × 1.1 is 110.00000000000001 in floating point, not 111 fds.
  return Math.ceil(Math.round(connectionLimit * fdHeadroom * 1e6) / 1e6) + FD_RESERVE;
}

/**
 * connectionsAllowed is the most connections a soft limit holds: floor((soft − FD_RESERVE) /
 * headroom), at least 0; `Infinity` for an unlimited soft limit. It is the inverse of
 * {@link requiredFds}: `requiredFds(connectionsAllowed(s, h), h) ≤ s`.
 */
export function connectionsAllowed(softLimit: number, fdHeadroom: number): number {
  if (softLimit === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
  let n = Math.max(0, Math.floor((softLimit - FD_RESERVE) / fdHeadroom));
  // Floating point may leave floor() one off either way (1111 / 1.1 is 1009.999…): settle on
  // the exact inverse of requiredFds.
  while (n > 0 && requiredFds(n, fdHeadroom) > softLimit) n--;
  while (requiredFds(n + 1, fdHeadroom) <= softLimit) n++;
  return n;
}

function formatLimit(n: number): string {
  return n === Number.POSITIVE_INFINITY ? 'unlimited' : String(n);
}

/** How to raise the open-file limit to `n`, in every place an operator may have to set it. */
function howToRaise(n: number): string {
  return (
    `in the shell or start script that runs bulwark, \`ulimit -n ${n}\` (raising the hard limit needs root, ` +
    `or a line \`<user> - nofile ${n}\` in /etc/security/limits.conf); under systemd, \`LimitNOFILE=${n}\` ` +
    `in the unit's [Service] section; in Docker, \`--ulimit nofile=${n}:${n}\`; Kubernetes has no per-pod ` +
    `setting: containers inherit the container runtime's limit (containerd or CRI-O: the LimitNOFILE= of its ` +
    `systemd unit), so raise it there on the nodes`
  );
}

/**
 * fdLimitTooLow builds the BW_ERR_FD_LIMIT error for a connection limit the soft limit cannot
 * hold: the current limits, the number required, and what to set.
 */
export function fdLimitTooLow(opts: FdLimitOptions, limits: FdLimits): BulwarkError {
  const { connectionLimit: n, fdHeadroom: h } = opts;
  const required = requiredFds(n, h);
  const allowed = connectionsAllowed(limits.soft, h);
  const head =
    `open-file limit too low for client.connection_limit=${n}: the soft limit is ${formatLimit(limits.soft)} ` +
    `(hard limit ${formatLimit(limits.hard)}), but ${n} connections need ${required} file descriptors ` +
    `(${n} × protection.fd_headroom ${h}, plus ${FD_RESERVE} for logs, the listener and engine connections).`;
  // Node.js raises the soft limit to the hard one when the process starts, so this first case
  // is rare: a soft limit lowered after start, or a platform where that raise did not happen.
  const fix =
    limits.hard >= required
      ? ` The hard limit allows it: raise the soft limit before starting, with \`ulimit -n ${required}\` in the shell or start script that runs bulwark (under systemd, \`LimitNOFILE=${required}\`).`
      : ` Raise the limit to at least ${required}: ${howToRaise(required)}.`;
  const lower =
    allowed > 0
      ? ` Or lower client.connection_limit to at most ${allowed}, what the current soft limit holds.`
      : ' The current soft limit holds no connections at all.';
  return new BulwarkError('BW_ERR_FD_LIMIT', head + fix + lower);
}

/**
 * planConnectionLimit decides the connection limit admission enforces, from the config and
 * the process's limits (undefined: unknown, nothing checked). Throws BulwarkError
 * BW_ERR_FD_LIMIT when an explicit client.connection_limit does not fit the soft limit, or
 * when there is none and the soft limit leaves no room for a single connection.
 */
export function planConnectionLimit(opts: FdLimitOptions, limits: FdLimits | undefined): FdLimitPlan {
  const { connectionLimit, fdHeadroom } = opts;
  if (!limits) {
    return {
      connectionLimit,
      source: 'unchecked',
      limits,
      required: connectionLimit > 0 ? requiredFds(connectionLimit, fdHeadroom) : 0,
      socketCapacity: 0,
    };
  }
  const allowed = connectionsAllowed(limits.soft, fdHeadroom);
  const socketCapacity = allowed === Number.POSITIVE_INFINITY ? 0 : allowed;
  if (connectionLimit > 0) {
    const required = requiredFds(connectionLimit, fdHeadroom);
    if (limits.soft < required) throw fdLimitTooLow(opts, limits);
    return { connectionLimit, source: 'config', limits, required, socketCapacity };
  }
  if (allowed === Number.POSITIVE_INFINITY) {
    return { connectionLimit: 0, source: 'none', limits, required: 0, socketCapacity };
  }
  if (allowed < 1) throw noRoomForConnections(limits, fdHeadroom);
  return {
    connectionLimit: allowed,
    source: 'fd_limit',
    limits,
    required: requiredFds(allowed, fdHeadroom),
    socketCapacity,
  };
}

/** The BW_ERR_FD_LIMIT error of a soft limit that holds not even one connection. */
function noRoomForConnections(limits: FdLimits, fdHeadroom: number): BulwarkError {
  const example = requiredFds(10_000, fdHeadroom);
  return new BulwarkError(
    'BW_ERR_FD_LIMIT',
    `open-file limit too low: the soft limit is ${formatLimit(limits.soft)} (hard limit ${formatLimit(limits.hard)}), ` +
      `and Bulwark keeps ${FD_RESERVE} file descriptors for itself, which leaves no room for client connections. ` +
      `Raise it to what your connections need (ceil(connections × protection.fd_headroom ${fdHeadroom}) + ${FD_RESERVE}, ` +
      `e.g. ${example} for 10000): ${howToRaise(example)}.`,
  );
}

/**
 * applyFdLimit runs the startup check: reads the limits with `reader`, decides the effective
 * connection limit ({@link planConnectionLimit}), logs the outcome (info when the limit is
 * derived from the open-file limit, debug otherwise), and returns the plan. Throws
 * BW_ERR_FD_LIMIT as planConnectionLimit does. A reader that throws is logged at debug and
 * the check is skipped.
 */
export function applyFdLimit(opts: FdLimitOptions, log: Logger, reader: FdLimitsReader = readFdLimits): FdLimitPlan {
  let limits: FdLimits | undefined;
  try {
    limits = reader();
  } catch (err) {
    log.debug({ err }, 'open-file limit not checked: cannot read it');
  }
  const plan = planConnectionLimit(opts, limits);
  const fields = {
    connectionLimit: plan.connectionLimit,
    fdHeadroom: opts.fdHeadroom,
    softLimit: limits ? formatLimit(limits.soft) : undefined,
    hardLimit: limits ? formatLimit(limits.hard) : undefined,
  };
  switch (plan.source) {
    case 'unchecked':
      log.debug(
        { platform: process.platform, connectionLimit: plan.connectionLimit },
        'open-file limit not checked: read from /proc/self/limits, on Linux only',
      );
      break;
    case 'fd_limit':
      log.info(
        fields,
        `this node can hold about ${plan.connectionLimit} connections with the current open-file limit ` +
          `(ulimit -n ${formatLimit(plan.limits?.soft ?? 0)}); set client.connection_limit to reject beyond that cleanly`,
      );
      break;
    case 'config':
      log.debug({ ...fields, required: plan.required }, 'open-file limit holds client.connection_limit');
      break;
    case 'none':
      log.debug(fields, 'open-file limit is unlimited and client.connection_limit is 0: no connection limit');
      break;
  }
  return plan;
}
