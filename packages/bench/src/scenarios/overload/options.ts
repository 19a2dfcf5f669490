/**
 * The overload scenario's flags and the {@link OverloadOptions} they resolve to.
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';
import { type ScenarioContext } from '../../harness/scenario.js';
import { type OverloadOptions } from './types.js';

export const flags = {
  subscribers: { name: 'subscribers', arg: 'N', help: 'live-channel subscribers', default: 500, quick: 100, min: 1 },
  rate: { name: 'rate', arg: 'N', help: 'live pub/s', default: 50, min: 1 },
  duration: { name: 'duration', arg: 'S', help: 'seconds per run', default: 10, quick: 2, min: 1 },
  pollers: { name: 'pollers', arg: 'N', help: 'connections polling history', default: 200, quick: 50, min: 1 },
  page: { name: 'page', arg: 'N', help: 'publications per history reply, ~300 B each', default: 100, min: 1 },
  maxOffered: {
    name: 'max-offered',
    arg: 'N',
    help: 'cap on the offered polls/s, what the load generator can send',
    default: 50_000,
    min: 1,
  },
} satisfies Record<string, FlagSpec>;

/** overloadOptions resolves the flags (quick: shorter runs). */
export function overloadOptions(ctx: Pick<ScenarioContext, 'quick' | 'flags'>): OverloadOptions {
  const f = ctx.flags;
  const quick = ctx.quick;
  return {
    pollers: f.num(flags.pollers),
    subscribers: f.num(flags.subscribers),
    publishRate: f.num(flags.rate),
    page: f.num(flags.page),
    seconds: f.num(flags.duration),
    capacitySeconds: quick ? 1 : 3,
    depth: 4,
    multipliers: [1, 2, 10],
    maxOfferedRate: f.num(flags.maxOffered),
    warmupSeconds: quick ? 0.5 : 1,
    graceMs: quick ? 1000 : 2000,
    connectConcurrency: 100,
  };
}
