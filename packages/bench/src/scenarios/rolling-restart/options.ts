/**
 * FLAGS_DOC
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';

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
