/**
 * The retry-storm scenario's flags (each declared once with its default, quick value and help) and the
 * options they resolve to.
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';
import { type RetryStormOptions, type VariantName, allVariants } from './types.js';
import { originQueueOf, callsOfWork, defaultOriginWorkers } from './plan.js';
import { originCapacity } from '../../servers/rpc-origin.js';
import type { ScenarioContext } from '../../harness/scenario.js';

export const flags = {
  clients: { name: 'clients', arg: 'N', help: 'players, one connection each', default: 1000, quick: 200, min: 1 },
  buggyPercent: { name: 'buggy-percent', arg: 'P', help: 'share of players on the buggy build', default: 10 },
  interval: {
    name: 'interval',
    arg: 'MS',
    help: "mean interval of everyone's match.state calls, ±50 %",
    default: 2000,
    min: 10,
  },
  buggyFactor: {
    name: 'buggy-factor',
    arg: 'K',
    help: 'the buggy build calls inbox.sync at K× that rate',
    default: 10,
    min: 1,
  },
  retries: { name: 'retries', arg: 'N', help: 'immediate retries of each failed inbox.sync', default: 3 },
  duration: { name: 'duration', arg: 'S', help: 'storm seconds per variant', default: 24, quick: 6, min: 1 },
  warmup: { name: 'warmup', arg: 'S', help: 'normal traffic before the storm', default: 5, quick: 1 },
  switchAfter: {
    name: 'switch-after',
    arg: 'S',
    help: 'kill-switch variant: seconds into the storm',
    defaultText: 'half of it',
  },
  originWorkers: {
    name: 'origin-workers',
    arg: 'N',
    help: 'origin calls worked on at once',
    defaultText: '1.6× the normal load; 16, quick 3',
    min: 1,
  },
  originServiceMs: { name: 'origin-service-ms', arg: 'MS', help: 'origin work per call', default: 20, min: 0.1 },
  originQueueMs: {
    name: 'origin-queue-ms',
    arg: 'MS',
    help: 'work the origin queues before it answers 503',
    default: 50,
  },
  rpcRate: {
    name: 'rpc-rate',
    arg: 'R',
    help: 'tuned variant: rpc limit per connection, calls/s',
    default: 1,
    min: 0.01,
  },
  rpcBurst: { name: 'rpc-burst', arg: 'N', help: 'tuned variant: its bucket size', default: 2, min: 1 },
  variants: {
    name: 'variants',
    arg: 'LIST',
    help: 'comma-separated: unprotected,defaults,tuned,kill-switch',
    defaultText: 'all',
  },
  successLimit: {
    name: 'success-limit',
    arg: 'P',
    help: 'well-behaved success the protected variants must reach, %',
    default: 99,
  },
  p99Limit: {
    name: 'p99-limit',
    arg: 'MS',
    help: 'well-behaved p99 the protected variants must stay under',
    default: 250,
  },
} satisfies Record<string, FlagSpec>;

/**
 * sizedProxy is proxy.max_concurrent and max_queue sized to the origin, as an operator would:
 * twice its workers in flight (so a worker never idles during the round trip between two
 * calls), never more than it holds without throttling (workers + its queue), and a queue
 * holding `proxyQueueMs` of its work.
 */
export function sizedProxy(
  o: Pick<RetryStormOptions, 'originWorkers' | 'originServiceMs' | 'originQueueMs' | 'proxyQueueMs'>,
): { max_concurrent: number; max_queue: number } {
  const capacity = originCapacity(o.originWorkers, o.originServiceMs);
  return {
    max_concurrent: Math.min(2 * o.originWorkers, o.originWorkers + originQueueOf(o)),
    max_queue: callsOfWork(capacity, o.proxyQueueMs),
  };
}

export function parseVariants(s: string): VariantName[] {
  const names = s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!(allVariants as readonly string[]).includes(n)) {
      throw new Error(`--variants: unknown variant "${n}" (choose from ${allVariants.join(', ')})`);
    }
  }
  if (names.length === 0) throw new Error('--variants: name at least one variant');
  return allVariants.filter((v) => names.includes(v));
}

/** optionsOf resolves the flags (defaults filled in). */
export function optionsOf(ctx: Pick<ScenarioContext, 'quick' | 'flags'>): RetryStormOptions {
  const f = ctx.flags;
  const clients = f.int(flags.clients);
  const intervalMs = f.num(flags.interval);
  const seconds = f.num(flags.duration);
  const originServiceMs = f.num(flags.originServiceMs);
  const normal = (clients * 1000) / intervalMs;
  return {
    clients,
    buggyPercent: f.num(flags.buggyPercent),
    intervalMs,
    buggyFactor: f.num(flags.buggyFactor),
    retries: f.int(flags.retries),
    warmupSeconds: f.num(flags.warmup),
    seconds,
    switchAfterSeconds: f.num(flags.switchAfter, seconds / 2),
    settleSeconds: ctx.quick ? 1 : 2,
    callTimeoutMs: 5000,
    originWorkers: f.int(flags.originWorkers, defaultOriginWorkers(normal, originServiceMs)),
    originServiceMs,
    originQueueMs: f.num(flags.originQueueMs),
    rpcRate: f.num(flags.rpcRate),
    rpcBurst: f.int(flags.rpcBurst),
    proxyQueueMs: 250,
    variants: parseVariants(f.str(flags.variants, allVariants.join(','))),
    successLimitPercent: f.num(flags.successLimit),
    p99LimitMs: f.num(flags.p99Limit),
    connectConcurrency: 100,
  };
}
