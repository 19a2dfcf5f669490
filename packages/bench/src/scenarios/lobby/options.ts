/**
 * The lobby scenario's flags (each declared once with its default, quick value and help) and the
 * options they resolve to.
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';
import type { ScenarioContext } from '../../harness/scenario.js';
import type { LobbyOptions, SlotPick } from './types.js';

export const flags = {
  nodes: {
    name: 'nodes',
    arg: 'M',
    help: 'Bulwark processes (M > 1: on one Redis, which needs the Redis map broker)',
    default: 1,
    min: 1,
  },
  players: { name: 'players', arg: 'N', help: 'players, one connection each', default: 2000, quick: 200, min: 1 },
  lobbies: { name: 'lobbies', arg: 'K', help: 'lobbies (map channels lobby:<n>)', default: 200, quick: 20, min: 1 },
  slots: { name: 'slots', arg: 'S', help: 'slots per lobby (the namespace map.max_keys)', default: 8, min: 1 },
  duration: {
    name: 'duration',
    arg: 'S',
    help: 'seconds players join and leave lobbies',
    default: 20,
    quick: 4,
    min: 0.5,
  },
  ramp: { name: 'ramp', arg: 'S', help: "seconds the players' first joins are spread over", default: 3, quick: 1 },
  holdMin: { name: 'hold-min', arg: 'S', help: 'shortest stay in a lobby', default: 2, quick: 0.5 },
  holdMax: { name: 'hold-max', arg: 'S', help: 'longest stay in a lobby', default: 6, quick: 1.5 },
  pause: { name: 'pause', arg: 'S', help: 'longest pause between two lobbies', default: 1, quick: 0.3 },
  rejoinPercent: {
    name: 'rejoin-percent',
    arg: 'P',
    help: 'players who join another lobby after leaving one (the rest leave the game)',
    default: 80,
  },
  pageSize: {
    name: 'page-size',
    arg: 'N',
    help: 'entries per state page (small: snapshots take pages)',
    default: 4,
    min: 1,
  },
  pick: {
    name: 'pick',
    arg: 'HOW',
    help: 'which free slot a player takes: lowest (races) or random',
    default: 'lowest',
  },
  settleSeconds: {
    name: 'settle-seconds',
    arg: 'S',
    help: 'bound on the settle at the end, and on the retries of a player who lost every race',
    default: 10,
    quick: 5,
    min: 1,
  },
  p99Limit: { name: 'p99-limit', arg: 'MS', help: 'own write → delivery p99 limit', default: 250, min: 1 },
  redisUrl: {
    name: 'redis-url',
    arg: 'URL',
    help: 'Redis for the engine (--nodes > 1)',
    default: 'redis://127.0.0.1:6379',
  },
} satisfies Record<string, FlagSpec>;

/** parsePick reads --pick. */
export function parsePick(text: string): SlotPick {
  if (text === 'lowest' || text === 'random') return text;
  throw new Error(`--pick must be lowest or random, got "${text}"`);
}

/** options reads the scenario's flags. */
export function options(ctx: ScenarioContext): LobbyOptions {
  const f = ctx.flags;
  const o: LobbyOptions = {
    nodes: f.int(flags.nodes),
    players: f.int(flags.players),
    lobbies: f.int(flags.lobbies),
    slots: f.int(flags.slots),
    durationSeconds: f.num(flags.duration),
    rampSeconds: f.num(flags.ramp),
    holdMinSeconds: f.num(flags.holdMin),
    holdMaxSeconds: f.num(flags.holdMax),
    pauseSeconds: f.num(flags.pause),
    rejoinPercent: f.num(flags.rejoinPercent),
    pageSize: f.int(flags.pageSize),
    pick: parsePick(f.str(flags.pick)),
    settleSeconds: f.num(flags.settleSeconds),
    p99LimitMs: f.num(flags.p99Limit),
    redisUrl: f.str(flags.redisUrl),
    connectConcurrency: 100,
  };
  if (o.holdMaxSeconds < o.holdMinSeconds) throw new Error('--hold-max must be at least --hold-min');
  if (o.rejoinPercent > 100) throw new Error('--rejoin-percent must be at most 100');
  if (o.players > 15_000) throw new Error('lobby: --players must be ≤ 15000 (one process holds them all)');
  return o;
}
