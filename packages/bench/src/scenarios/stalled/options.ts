/**
 * The stalled-clients scenario's flags and the {@link StalledOptions} they resolve to.
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';
import { type ScenarioContext } from '../../harness/scenario.js';
import { type StalledOptions } from './types.js';

export const flags = {
  subscribers: { name: 'subscribers', arg: 'N', help: '', default: 2000, quick: 200, min: 2 },
  channels: { name: 'channels', arg: 'N', help: '', default: 20, min: 1 },
  rate: { name: 'rate', arg: 'N', help: 'API pub/s', default: 500, min: 1 },
  pad: { name: 'pad', arg: 'N', help: "padding bytes in each publication's data", default: 1000 },
  duration: { name: 'duration', arg: 'S', help: 'seconds per run', default: 20, quick: 12, min: 1 },
  stalledPercent: {
    name: 'stalled-percent',
    arg: 'P',
    help: 'share of subscribers that stop reading',
    default: 5,
  },
} satisfies Record<string, FlagSpec>;

/** stalledOptions resolves the flags. */
export function stalledOptions(ctx: Pick<ScenarioContext, 'quick' | 'flags'>): StalledOptions {
  const f = ctx.flags;
  const quick = ctx.quick;
  const o: StalledOptions = {
    subscribers: f.num(flags.subscribers),
    channels: f.num(flags.channels),
    stalledPercent: f.num(flags.stalledPercent),
    publishRate: f.num(flags.rate),
    padBytes: f.num(flags.pad),
    seconds: f.num(flags.duration),
    warmupSeconds: quick ? 0 : 1,
    drainMs: quick ? 1000 : 3000,
    sampleMs: 100,
    uncappedQueueBytes: 2 ** 30,
    connectConcurrency: 100,
  };
  // The bench config's client.channel_limit is 128, and every stalled client subscribes to every channel.
  if (o.channels > 128) throw new Error('stalled: --channels must be ≤ 128');
  if (o.stalledPercent > 50) throw new Error('stalled: --stalled-percent must be ≤ 50');
  return o;
}
