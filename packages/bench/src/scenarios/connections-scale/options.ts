/**
 * The connections-scale scenario's flags (each declared once with its default, quick value and help) and the
 * options they resolve to.
 *
 * @module
 */
import { randomInt } from 'crypto';
import { type FlagSpec } from '../../harness/flags.js';
import { type ConnectionsScaleOptions, type FdCapacity } from './types.js';
import { MAX_PER_SOURCE_ADDRESS } from '../../load/conn-worker-protocol.js';
import { type ScenarioContext } from '../../harness/scenario.js';
import { readOpenFileLimits } from '../../harness/proc.js';

export const flags = {
  connections: { name: 'connections', arg: 'N', help: '', default: 100_000, quick: 5_000, min: 1 },
  workers: {
    name: 'workers',
    arg: 'N',
    help: 'Bulwark workers',
    defaultText: 'what the fd limit needs, ≥ 2; 7 for 100,000',
    min: 1,
  },
  loadProcesses: {
    name: 'load-processes',
    arg: 'N',
    help: 'load-generator processes, ≤ 18,000 sockets each',
    defaultText: 'N/18000, ≥ 2',
    min: 1,
  },
  sourceIps: {
    name: 'source-ips',
    arg: 'N',
    help: 'source addresses 127.A.B.1..N',
    defaultText: 'N/20000, ≥ 1',
    min: 1,
  },
  sourcePrefix: {
    name: 'source-prefix',
    arg: 'P',
    help: 'first three octets of the source addresses, 127.A.B',
    defaultText: 'random per run',
  },
  concurrency: {
    name: 'concurrency',
    arg: 'N',
    help: 'connects in flight, all processes',
    default: 200,
    quick: 100,
    min: 1,
  },
  channels: { name: 'channels', arg: 'N', help: 'channels the subscriptions spread over', default: 1000, min: 1 },
  hold: {
    name: 'hold',
    arg: 'S',
    help: 'idle hold, seconds',
    default: 30,
    quick: 3,
    defaultText: '30 > the 25 s ping interval; quick 3',
  },
  settle: { name: 'settle', arg: 'MS', help: 'idle time after the connects', default: 3000, quick: 1000 },
  retries: { name: 'retries', arg: 'N', help: 'retries of an HTTP 503 refusal', default: 3 },
  connectBudget: { name: 'connect-budget', arg: 'S', help: 'longest connect phase', default: 240, quick: 45, min: 1 },
  redisUrl: { name: 'redis-url', arg: 'URL', help: 'Redis for the engine', default: 'redis://127.0.0.1:6379' },
  rssLimit: {
    name: 'rss-limit',
    arg: 'KIB',
    help: 'pass: server RSS per connection ≤ KIB',
    default: 12,
    quick: 32,
    defaultText: '12; quick 32: fixed heap growth dominates',
  },
  handshakeP99: { name: 'handshake-p99', arg: 'MS', help: 'pass: handshake p99 ≤ MS', default: 1000 },
} satisfies Record<string, FlagSpec>;

/** Bulwark's default protection.fd_headroom: file descriptors reserved per connection. */
export const DEFAULT_FD_HEADROOM = 1.25;

/** File descriptors Bulwark keeps for itself (logs, listener, engine connections). */
export const FD_RESERVED = 64;

/** Share of a worker's cap the workers are sized to fill (round-robin is even, not exact). */
export const WORKER_FILL = 0.9;

/** Most sockets one load process is given (its open-file limit is 20,000, its own fds aside). */
export const MAX_SOCKETS_PER_LOAD_PROCESS = 18_000;

/**
 * Connections per source address by default: within the ~28,000 ephemeral ports a kernel-chosen
 * port would have (the scenario assigns ports itself, up to MAX_PER_SOURCE_ADDRESS, but
 * addresses cost nothing).
 */
export const CONNECTIONS_PER_SOURCE_IP = 20_000;

/**
 * fdCapacity computes Bulwark's per-worker connection cap from the open-file limit (as the
 * server does with client.connection_limit 0) and the workers `connections` need.
 */
export function fdCapacity(connections: number, openFileLimit: number, fdHeadroom = DEFAULT_FD_HEADROOM): FdCapacity {
  const perWorkerCap = Number.isFinite(openFileLimit)
    ? Math.max(0, Math.floor((openFileLimit - FD_RESERVED) / fdHeadroom))
    : Number.POSITIVE_INFINITY;
  const workersNeeded = perWorkerCap > 0 ? Math.max(1, Math.ceil(connections / (perWorkerCap * WORKER_FILL))) : NaN;
  return { openFileLimit, fdHeadroom, perWorkerCap, workersNeeded };
}

/** loadProcessesFor is how many load processes hold `connections` at ≤ 18,000 sockets each (≥ 2). */
export function loadProcessesFor(connections: number): number {
  return Math.max(2, Math.ceil(connections / MAX_SOCKETS_PER_LOAD_PROCESS));
}

/** sourceIpsFor is how many source addresses `connections` need (≤ 20,000 each). */
export function sourceIpsFor(connections: number): number {
  return Math.max(1, Math.ceil(connections / CONNECTIONS_PER_SOURCE_IP));
}

export function resolveOptions(ctx: ScenarioContext): ConnectionsScaleOptions {
  const f = ctx.flags;
  const quick = ctx.quick;
  const connections = f.int(flags.connections);
  const userProtection = ctx.bulwark.bulwarkConfig?.protection as { fd_headroom?: unknown } | undefined;
  const headroom = typeof userProtection?.fd_headroom === 'number' ? userProtection.fd_headroom : DEFAULT_FD_HEADROOM;
  const limit = readOpenFileLimits()?.hard ?? Number.POSITIVE_INFINITY;
  const capacity = fdCapacity(connections, limit, headroom);
  const loadProcesses = f.int(flags.loadProcesses, loadProcessesFor(connections));
  const ownLimit = readOpenFileLimits()?.soft ?? Number.POSITIVE_INFINITY;
  if (Math.ceil(connections / loadProcesses) > Math.min(MAX_SOCKETS_PER_LOAD_PROCESS, ownLimit - 200)) {
    throw new Error(
      `--load-processes ${loadProcesses}: ${Math.ceil(connections / loadProcesses)} sockets per process is more ` +
        `than one process may hold (${MAX_SOCKETS_PER_LOAD_PROCESS}; open-file limit ${ownLimit}); ` +
        `use at least ${loadProcessesFor(connections)}`,
    );
  }
  const sourceIps = f.int(flags.sourceIps, sourceIpsFor(connections));
  if (sourceIps > 254) throw new Error('--source-ips must be ≤ 254');
  if (Math.ceil(connections / sourceIps) > MAX_PER_SOURCE_ADDRESS) {
    throw new Error(`--source-ips ${sourceIps}: more than ${MAX_PER_SOURCE_ADDRESS} connections per address`);
  }
  const sourcePrefix = f.str(flags.sourcePrefix, `127.${1 + randomInt(254)}.${randomInt(256)}`);
  const octets = /^127\.(\d{1,3})\.(\d{1,3})$/.exec(sourcePrefix);
  if (!octets || Number(octets[1]) > 255 || Number(octets[2]) > 255) {
    throw new Error('--source-prefix must be 127.A.B with A, B in 0..255');
  }
  return {
    connections,
    workers: f.int(flags.workers, Math.max(2, capacity.workersNeeded)),
    loadProcesses,
    sourceIps,
    sourcePrefix,
    concurrency: f.int(flags.concurrency),
    channels: f.int(flags.channels),
    holdSeconds: f.num(flags.hold),
    baselineMs: quick ? 500 : 2000,
    settleMs: f.int(flags.settle),
    timeoutMs: 15_000,
    retries: f.int(flags.retries),
    connectBudgetSeconds: f.num(flags.connectBudget),
    redis: f.str(flags.redisUrl),
    redisPrefix: `bench-conn-scale-${randomInt(2 ** 32).toString(36)}`,
    capacity,
    limits: {
      rssPerConnectionKiB: f.num(flags.rssLimit),
      handshakeP99Ms: f.num(flags.handshakeP99),
    },
  };
}

/** Bulwark's default client.ping_interval, seconds (the scenario does not change it). */
export const PING_INTERVAL_SECONDS = 25;
