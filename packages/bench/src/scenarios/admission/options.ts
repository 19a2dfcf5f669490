/**
 * The admission scenario's flags and the {@link AdmissionOptions} they resolve to.
 *
 * @module
 */
/**
 * The admission scenario's flags and the {@link AdmissionOptions} they resolve to.
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';
import { type ScenarioContext } from '../../harness/scenario.js';
import { type AdmissionOptions } from './run.js';

export const flags = {
  accepted: {
    name: 'accepted',
    arg: 'N',
    help: 'client.connection_limit: connections accepted first',
    default: 1000,
    quick: 200,
    min: 1,
  },
  attempts: {
    name: 'attempts',
    arg: 'N',
    help: 'upgrade attempts at the full node',
    default: 10_000,
    quick: 1000,
    min: 1,
  },
  concurrency: { name: 'concurrency', arg: 'N', help: 'connects and attempts in flight', default: 100, min: 1 },
  repeat: {
    name: 'repeat',
    arg: 'N',
    help: 'runs, each on a fresh server; medians reported',
    default: 3,
    quick: 1,
    min: 1,
  },
} satisfies Record<string, FlagSpec>;

/** admissionOptions resolves the flags. */
export function admissionOptions(ctx: Pick<ScenarioContext, 'quick' | 'flags'>): AdmissionOptions {
  const f = ctx.flags;
  return {
    accepted: f.num(flags.accepted),
    attempts: f.num(flags.attempts),
    concurrency: f.num(flags.concurrency),
    repeat: f.num(flags.repeat),
    idleMs: ctx.quick ? 500 : 1000,
  };
}
