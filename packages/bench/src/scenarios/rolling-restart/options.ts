/**
 * The rolling-restart scenario's flags (each declared once with its default, quick value and help) and the
 * options they resolve to.
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';
import { type RollingOptions } from './types.js';
import { type ScenarioContext } from '../../harness/scenario.js';

export const flags = {
  clients: { name: 'clients', arg: 'N', help: 'players, all on node A at first', default: 5000, quick: 500, min: 1 },
  channels: {
    name: 'channels',
    arg: 'N',
    help: 'channels, player i on channel i mod N',
    default: 50,
    quick: 10,
    min: 1,
  },
  rate: { name: 'rate', arg: 'N', help: 'API publications/s over all channels', default: 200, quick: 100, min: 1 },
  drainWindow: { name: 'drain-window', arg: 'MS', help: 'Bulwark drain.window', default: 10_000, quick: 3000 },
  probeDelay: {
    name: 'probe-delay',
    arg: 'MS',
    help: 'load balancer keeps routing to a draining node this long',
    default: 1000,
  },
  restarts: { name: 'restarts', arg: 'N', help: "1: drain A; 2: then start A' and drain B", default: 2, min: 1 },
  steady: {
    name: 'steady',
    arg: 'S',
    help: 'publishing before the first and after the last restart',
    default: 5,
    quick: 2,
  },
  reconnectSlack: {
    name: 'reconnect-slack',
    arg: 'MS',
    help: 'all players back within drain.window + this',
    default: 5000,
  },
  maxPeakFactor: {
    name: 'max-peak-factor',
    arg: 'F',
    help: 'peak reconnects in 1 s at most F × players / drain window',
    default: 3,
  },
  redisUrl: { name: 'redis-url', arg: 'URL', help: 'Redis for the nodes', defaultText: 'redis://127.0.0.1:6379' },
} satisfies Record<string, FlagSpec>;

/** readOptions resolves the flags. */
export function readOptions(ctx: ScenarioContext): RollingOptions {
  const f = ctx.flags;
  const q = ctx.quick;
  const o: RollingOptions = {
    clients: f.int(flags.clients),
    channels: f.int(flags.channels),
    rate: f.num(flags.rate),
    drainWindowMs: f.int(flags.drainWindow),
    probeDelayMs: f.int(flags.probeDelay),
    restarts: f.int(flags.restarts),
    steadySeconds: f.num(flags.steady),
    slackMs: f.int(flags.reconnectSlack),
    maxPeakFactor: f.num(flags.maxPeakFactor),
    historySize: 1000,
    redisUrl: f.str(flags.redisUrl, process.env.BULWARK_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'),
    connectConcurrency: 200,
    bucketMs: q ? 500 : 1000,
  };
  if (o.restarts > 2) throw new Error('--restarts must be 1 or 2');
  if (o.clients > 15_000) throw new Error('--clients must be ≤ 15000 (one process holds them, file limit 20000)');
  return o;
}
