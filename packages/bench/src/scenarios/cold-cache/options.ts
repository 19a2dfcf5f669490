/**
 * The cold-cache scenario's flags (each declared once with its default, quick value and help) and the
 * options they resolve to.
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';
import { type Variant, VARIANTS, type ColdCacheOptions } from './types.js';
import type { ScenarioContext } from '../../harness/scenario.js';

export const flags = {
  nodes: { name: 'nodes', arg: 'M', help: 'Bulwark processes on one Redis', default: 3, quick: 2, min: 1 },
  clients: { name: 'clients', arg: 'N', help: 'clients per process', default: 200, quick: 50, min: 1 },
  keys: { name: 'keys', arg: 'K', help: 'unique keys', default: 10_000, quick: 1000, min: 1 },
  asksPerKey: { name: 'asks-per-key', arg: 'C', help: 'asks of each key per process', default: 2, min: 1 },
  inflight: { name: 'inflight', arg: 'N', help: 'RPCs each client keeps outstanding', default: 2, min: 1 },
  serviceMs: { name: 'service-ms', arg: 'MS', help: 'origin service time per call', default: 20, min: 1 },
  originCapacity: {
    name: 'origin-capacity',
    arg: 'R',
    help: 'origin calls/s it sustains; the peak-rate check',
    default: 2000,
    min: 1,
  },
  originConcurrency: {
    name: 'origin-concurrency',
    arg: 'N',
    help: 'origin answers 503 over N in flight',
    defaultText: '⌈capacity × service⌉ = 40; 0 off',
  },
  maxConcurrent: {
    name: 'max-concurrent',
    arg: 'N',
    help: 'proxy.max_concurrent per node',
    default: 0,
    defaultText: '⌊capacity / (M × ⌈1000/service⌉)⌋',
  },
  maxQueue: {
    name: 'max-queue',
    arg: 'N',
    help: 'proxy.max_queue per node',
    defaultText: 'max(256, clients × inflight)',
  },
  proxyTimeoutMs: { name: 'proxy-timeout-ms', arg: 'MS', help: 'rpc.proxy.timeout', default: 3000, min: 1 },
  maxSeconds: { name: 'max-seconds', arg: 'S', help: 'bound on each variant’s load', default: 90, quick: 30, min: 1 },
  slackPercent: {
    name: 'slack-percent',
    arg: 'P',
    help: 'origin calls allowed over 1/key (shared), 1/key/node (local)',
    default: 5,
  },
  variants: {
    name: 'variants',
    arg: 'LIST',
    help: 'of shared,local,none,naive',
    default: 'shared,local,none,naive',
    defaultText: 'all',
  },
  redisUrl: { name: 'redis-url', arg: 'URL', help: 'Redis for the engine', default: 'redis://127.0.0.1:6379' },
  shedding: { name: 'shedding', help: 'keep load shedding on', defaultText: 'off: it would measure the machine' },
} satisfies Record<string, FlagSpec>;

/**
 * protectedMaxConcurrent is the per-node `proxy.max_concurrent` that keeps M nodes' calls to an
 * origin with service time `serviceMs` within `capacityPerSec`. A slot holds a call from before
 * it is sent until its answer is read, and the origin answers no earlier than `serviceMs` after
 * a call arrives, so the calls of one slot arrive at least `serviceMs` apart: at most
 * ceil(1000 / serviceMs) of them in any 1 s window. M nodes × c slots × that ≤ capacity gives
 * c = floor(capacity / (M × ceil(1000 / serviceMs))), at least 1. E.g. 2,000/s, 20 ms, 3 nodes:
 * floor(2000 / 150) = 13 → at most 1,950 calls/s (and 39 in flight, under the 40 that 2,000/s ×
 * 20 ms means).
 */
export function protectedMaxConcurrent(capacityPerSec: number, serviceMs: number, nodes: number): number {
  if (!(serviceMs > 0)) throw new RangeError('protectedMaxConcurrent: serviceMs must be > 0');
  return Math.max(1, Math.floor(capacityPerSec / (nodes * Math.ceil(1000 / serviceMs))));
}

/** originRateBound is the most origin calls in any 1 s window that M nodes × `maxConcurrent` slots can make. */
export function originRateBound(nodes: number, maxConcurrent: number, serviceMs: number): number {
  return nodes * maxConcurrent * Math.ceil(1000 / serviceMs);
}

/** originConcurrencyFor is the concurrency a `capacityPerSec` origin with `serviceMs` per call has. */
export function originConcurrencyFor(capacityPerSec: number, serviceMs: number): number {
  return Math.ceil((capacityPerSec * serviceMs) / 1000);
}

/** parseVariants reads `--variants` ("shared,local"), refusing unknown names and empty lists. */
export function parseVariants(text: string): Variant[] {
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const out: Variant[] = [];
  for (const n of names) {
    if (!(n in VARIANTS))
      throw new Error(`--variants: unknown variant "${n}" (known: ${Object.keys(VARIANTS).join(', ')})`);
    if (!out.includes(n as Variant)) out.push(n as Variant);
  }
  if (out.length === 0) throw new Error('--variants: name at least one variant');
  return out;
}

export function options(ctx: ScenarioContext): ColdCacheOptions {
  const f = ctx.flags;
  const nodes = f.int(flags.nodes);
  const clients = f.int(flags.clients);
  const inflight = f.int(flags.inflight);
  const serviceMs = f.num(flags.serviceMs);
  const originCapacity = f.num(flags.originCapacity);
  const derived = protectedMaxConcurrent(originCapacity, serviceMs, nodes);
  const maxConcurrent = f.int(flags.maxConcurrent) || derived;
  return {
    nodes,
    clients,
    keys: f.int(flags.keys),
    asksPerKey: f.int(flags.asksPerKey),
    inflight,
    serviceMs,
    originCapacity,
    originConcurrency: f.int(flags.originConcurrency, originConcurrencyFor(originCapacity, serviceMs)),
    maxConcurrent,
    // A node holds at most clients × inflight RPCs: a queue that long never refuses one.
    maxQueue: f.int(flags.maxQueue, Math.max(256, clients * inflight)),
    proxyTimeoutMs: f.int(flags.proxyTimeoutMs),
    rpcTimeoutMs: 15_000,
    maxSeconds: f.num(flags.maxSeconds),
    slack: f.num(flags.slackPercent) / 100,
    variants: parseVariants(f.str(flags.variants)),
    redisUrl: f.str(flags.redisUrl),
    shedding: f.bool(flags.shedding),
    connectConcurrency: 50,
  };
}
