/**
 * FLAGS_DOC
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';

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
} satisfies Record<string, FlagSpec>;
