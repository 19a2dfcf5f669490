/**
 * The board-event scenario's flags (each declared once with its default, quick value and help) and the
 * options they resolve to.
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';
import { boardModes, type BoardMode, type BoardOptions } from './types.js';
import { round } from '../../harness/util.js';
import type { ScenarioContext } from '../../harness/scenario.js';

export const flags = {
  players: { name: 'players', arg: 'N', help: 'players, one connection each', default: 2000, quick: 300, min: 1 },
  teamSize: { name: 'team-size', arg: 'N', help: 'players per team board', default: 50, min: 1 },
  postInterval: { name: 'post-interval', arg: 'S', help: 'seconds between posts to one board', default: 2, min: 0.01 },
  postBytes: { name: 'post-bytes', arg: 'N', help: 'bytes of each post', default: 1500 },
  duration: { name: 'duration', arg: 'S', help: 'measured seconds of posting per mode', default: 30, quick: 4, min: 1 },
  warmup: {
    name: 'warmup',
    arg: 'S',
    help: 'seconds of posting before the measured window',
    defaultText: '--poll-interval',
  },
  pollInterval: { name: 'poll-interval', arg: 'S', help: "seconds between one player's polls", default: 5, min: 0.1 },
  page: { name: 'page', arg: 'N', help: 'history limit of each poll, posts prefilled per board', default: 20, min: 1 },
  historySize: { name: 'history-size', arg: 'N', help: 'posts each board keeps', default: 50, min: 1 },
  p99Limit: { name: 'p99-limit', arg: 'MS', help: 'push delivery latency p99 limit', default: 100, min: 1 },
  noPollSince: { name: 'no-poll-since', help: 'skip the third mode (polling since the last offset)' },
  modes: {
    name: 'modes',
    arg: 'LIST',
    help: 'modes to run, comma-separated (push and poll always run: the verdict compares them)',
    default: 'push,poll,poll-since,shared-poll',
  },
  refreshInterval: {
    name: 'refresh-interval',
    arg: 'S',
    help: 'shared-poll: seconds between refresh cycles (refresh_interval)',
    defaultText: '--poll-interval',
    min: 0.1,
  },
  refreshBatch: {
    name: 'refresh-batch',
    arg: 'N',
    help: 'shared-poll: items per refresh request (refresh_batch_size)',
    default: 1000,
    min: 1,
  },
  stalenessMargin: {
    name: 'staleness-margin',
    arg: 'MS',
    help: 'shared-poll: staleness p99 limit past the refresh interval',
    default: 1000,
  },
} satisfies Record<string, FlagSpec>;

/**
 * parseModes reads `--modes`: known names only, in the order they run; push and poll always
 * run (the verdict compares every mode with them); `--no-poll-since` drops poll-since.
 */
export function parseModes(list: string, noPollSince: boolean): BoardMode[] {
  const asked = new Set(
    list
      .split(',')
      .map((m) => m.trim())
      .filter(Boolean),
  );
  for (const m of asked) {
    if (!(boardModes as readonly string[]).includes(m)) {
      throw new Error(`board-event: --modes: unknown mode "${m}" (${boardModes.join(', ')})`);
    }
  }
  asked.add('push');
  asked.add('poll');
  if (noPollSince) asked.delete('poll-since');
  return boardModes.filter((m) => asked.has(m));
}

/** resolveOptions reads the scenario's flags. */
export function resolveOptions(ctx: ScenarioContext): BoardOptions {
  const f = ctx.flags;
  const players = f.int(flags.players);
  const teamSize = f.int(flags.teamSize);
  const opts: BoardOptions = {
    players,
    teamSize,
    teams: Math.ceil(players / teamSize),
    postIntervalS: f.num(flags.postInterval),
    postBytes: f.int(flags.postBytes),
    seconds: f.num(flags.duration),
    warmupS: 0,
    pollIntervalS: f.num(flags.pollInterval),
    page: f.int(flags.page),
    historySize: f.int(flags.historySize),
    p99LimitMs: f.num(flags.p99Limit),
    graceMs: ctx.quick ? 2000 : 3000,
    sampleMs: 500,
    connectConcurrency: 100,
    modes: parseModes(f.str(flags.modes), f.bool(flags.noPollSince)),
    refreshIntervalS: 0,
    refreshBatchSize: f.int(flags.refreshBatch),
    stalenessMarginMs: f.num(flags.stalenessMargin),
  };
  opts.warmupS = f.num(flags.warmup, opts.pollIntervalS);
  opts.refreshIntervalS = f.num(flags.refreshInterval, opts.pollIntervalS);
  if (opts.players > 15_000) throw new Error('board-event: --players must be ≤ 15000 (one process holds them all)');
  if (opts.page > opts.historySize) throw new Error('board-event: --page must be ≤ --history-size');
  const postsPerPoll = opts.pollIntervalS / opts.postIntervalS;
  if (postsPerPoll > opts.page) {
    ctx.log(
      `board-event: ${round(postsPerPoll, 1)} posts arrive per poll interval but a page holds ${opts.page}: ` +
        'newest-page pollers will miss posts',
    );
  }
  return opts;
}
