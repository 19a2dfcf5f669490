/**
 * The fan-out scenario's flags and the {@link FanoutOptions} they resolve to (quick: smaller,
 * shorter, and a ramp of three quick steps).
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';
import { parseClientNames } from '../../load/session-clients.js';
import { type ScenarioContext } from '../../harness/scenario.js';
import { type FanoutOptions } from './types.js';

export const flags = {
  format: {
    name: 'format',
    arg: 'LIST',
    help: "Bulwark's clients: json, protobuf, http_stream, sse (comma-separated), both (json,protobuf) or all (one column each, fresh server each)",
    default: 'both',
  },
  subscribers: { name: 'subscribers', arg: 'N', help: '', default: 2000, quick: 200, min: 1 },
  channels: { name: 'channels', arg: 'N', help: '', default: 20, min: 1 },
  rate: { name: 'rate', arg: 'N', help: 'fixed publications/s, all channels', default: 400, quick: 100, min: 1 },
  duration: { name: 'duration', arg: 'S', help: 'fixed-rate seconds', default: 15, quick: 2, min: 1 },
  pad: { name: 'pad', arg: 'N', help: "padding bytes in each publication's data", default: 64 },
  noRamp: { name: 'no-ramp', help: 'skip the ramp' },
  rampStart: { name: 'ramp-start', arg: 'N', help: 'first ramp rate, pub/s', default: 200, min: 1 },
  p99Limit: { name: 'p99-limit', arg: 'MS', help: 'ramp pass criterion', default: 100, min: 1 },
} satisfies Record<string, FlagSpec>;

/** fanoutOptions resolves the flags. */
export function fanoutOptions(ctx: Pick<ScenarioContext, 'quick' | 'flags'>): FanoutOptions {
  const f = ctx.flags;
  const quick = ctx.quick;
  const o: FanoutOptions = {
    formats: parseClientNames(f.str(flags.format)),
    subscribers: f.num(flags.subscribers),
    channels: f.num(flags.channels),
    padBytes: f.num(flags.pad),
    fixedRate: f.num(flags.rate),
    fixedSeconds: f.num(flags.duration),
    warmupSeconds: quick ? 0 : 3,
    ramp: !f.bool(flags.noRamp),
    rampStartRate: f.num(flags.rampStart),
    rampFactor: quick ? 2 : 1.5,
    rampStepSeconds: quick ? 1 : 4,
    rampMaxSteps: quick ? 3 : 14,
    rampRefineSteps: quick ? 0 : 2,
    rampRetryLatencyFailures: !quick,
    rampBudgetSeconds: quick ? 8 : 75,
    p99LimitMs: f.num(flags.p99Limit),
    drainTimeoutMs: quick ? 1000 : 3000,
    connectConcurrency: 100,
  };
  if (o.subscribers % o.channels !== 0) {
    throw new Error('--subscribers must be a multiple of --channels (equal subscribers per channel)');
  }
  return o;
}
