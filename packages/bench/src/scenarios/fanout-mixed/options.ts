/**
 * The fanout-mixed scenario's flags (each declared once with its default, quick value and help) and the
 * options they resolve to.
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';
import type { FanoutMixedOptions } from './types.js';
import { round } from '../../harness/util.js';
import type { ScenarioContext } from '../../harness/scenario.js';

export const flags = {
  players: { name: 'players', arg: 'N', help: 'players, one connection each', default: 5000, quick: 500, min: 1 },
  teamSize: { name: 'team-size', arg: 'N', help: 'players per team channel', default: 50, min: 1 },
  worldRate: { name: 'world-rate', arg: 'N', help: 'publications/s to bench:world', default: 3 },
  teamRate: { name: 'team-rate', arg: 'N', help: 'publications/s to each team channel', default: 2 },
  personalRate: {
    name: 'personal-rate',
    arg: 'N',
    help: 'publications/s over all personal channels, random players',
    defaultText: '0.4 × players',
  },
  duration: { name: 'duration', arg: 'S', help: 'measured seconds', default: 20, quick: 3, min: 1 },
  pad: { name: 'pad', arg: 'N', help: "padding bytes in each publication's data", default: 64 },
  p99Limit: { name: 'p99-limit', arg: 'MS', help: 'p99 latency limit per class', default: 100, min: 1 },
  concurrency: { name: 'concurrency', arg: 'N', help: 'players set up in flight', default: 100, min: 1 },
} satisfies Record<string, FlagSpec>;

/** optionsFrom reads the scenario's flags. */
export function optionsFrom(ctx: ScenarioContext): FanoutMixedOptions {
  const f = ctx.flags;
  const players = f.int(flags.players);
  return {
    players,
    teamSize: f.int(flags.teamSize),
    worldRate: f.num(flags.worldRate),
    teamRate: f.num(flags.teamRate),
    personalRate: f.num(flags.personalRate, round(0.4 * players, 1)),
    seconds: f.num(flags.duration),
    // Even quick runs warm up: the first second's JIT compilation otherwise dominates a 3 s p99.
    warmupSeconds: ctx.quick ? 1 : 2,
    padBytes: f.int(flags.pad),
    p99LimitMs: f.num(flags.p99Limit),
    drainTimeoutMs: ctx.quick ? 2000 : 3000,
    concurrency: f.int(flags.concurrency),
  };
}
