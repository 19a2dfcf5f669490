/**
 * FLAGS_DOC
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';

export const flags = {
  rate: { name: 'rate', arg: 'N', help: 'normal arrival rate, new players/s', default: 200, quick: 100, min: 1 },
  session: {
    name: 'session',
    arg: 'S',
    help: 'mean seconds a player stays (0.5–1.5×; 0: to the end)',
    default: 20,
    quick: 6,
  },
  warmup: { name: 'warmup', arg: 'S', help: 'seconds at the normal rate first', default: 20, quick: 6 },
  steps: { name: 'steps', arg: 'N', help: 'ramp steps from 1x to --top', default: 10, min: 1 },
  stepSeconds: { name: 'step-seconds', arg: 'S', help: 'seconds per step', default: 3, quick: 1.5, min: 0.1 },
  top: { name: 'top', arg: 'X', help: 'highest multiple of the normal rate', default: 10, min: 1 },
  tail: { name: 'tail', arg: 'S', help: 'seconds without new players after the ramp', default: 15, quick: 6 },
  connectionLimit: {
    name: 'connection-limit',
    arg: 'N',
    help: 'client.connection_limit',
    defaultText: '2 × rate × session: 8000; quick 1200',
    min: 1,
  },
  rateLimit: {
    name: 'rate-limit',
    arg: 'N',
    help: 'client.connection_rate_limit per s, 0 off',
    defaultText: '2 × rate: 400; quick 200',
  },
  retries: { name: 'retries', arg: 'N', help: 'retries per player after refusals', default: 3 },
  maxInFlight: { name: 'max-in-flight', arg: 'N', help: 'attempts in flight at most', default: 2000, min: 1 },
  maxAttempts: {
    name: 'max-attempts',
    arg: 'N',
    help: 'attempts at most, arrivals and retries',
    default: 200_000,
    min: 1,
  },
  p99Limit: { name: 'p99-limit', arg: 'MS', help: 'admitted handshake p99 after the warm-up', default: 500 },
  maxRssMib: { name: 'max-rss-mib', arg: 'N', help: 'peak server RSS', default: 512, min: 1 },
  maxFailedPercent: { name: 'max-failed-percent', arg: 'P', help: 'attempts failed without a refusal', default: 1 },
  readyTimeout: { name: 'ready-timeout', arg: 'MS', help: '/ready probe timeout', default: 2000, min: 1 },
} satisfies Record<string, FlagSpec>;
