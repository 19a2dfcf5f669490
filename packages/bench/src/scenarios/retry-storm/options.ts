/**
 * FLAGS_DOC
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';

export const flags = {
  clients: { name: 'clients', arg: 'N', help: 'players, one connection each', default: 1000, quick: 200, min: 1 },
  buggyPercent: { name: 'buggy-percent', arg: 'P', help: 'share of players on the buggy build', default: 10 },
  interval: {
    name: 'interval',
    arg: 'MS',
    help: "mean interval of everyone's match.state calls, ±50 %",
    default: 2000,
    min: 10,
  },
  buggyFactor: {
    name: 'buggy-factor',
    arg: 'K',
    help: 'the buggy build calls inbox.sync at K× that rate',
    default: 10,
    min: 1,
  },
  retries: { name: 'retries', arg: 'N', help: 'immediate retries of each failed inbox.sync', default: 3 },
  duration: { name: 'duration', arg: 'S', help: 'storm seconds per variant', default: 24, quick: 6, min: 1 },
  warmup: { name: 'warmup', arg: 'S', help: 'normal traffic before the storm', default: 5, quick: 1 },
  switchAfter: {
    name: 'switch-after',
    arg: 'S',
    help: 'kill-switch variant: seconds into the storm',
    defaultText: 'half of it',
  },
  originWorkers: {
    name: 'origin-workers',
    arg: 'N',
    help: 'origin calls worked on at once',
    defaultText: '1.6× the normal load; 16, quick 3',
    min: 1,
  },
  originServiceMs: { name: 'origin-service-ms', arg: 'MS', help: 'origin work per call', default: 20, min: 0.1 },
  originQueueMs: {
    name: 'origin-queue-ms',
    arg: 'MS',
    help: 'work the origin queues before it answers 503',
    default: 50,
  },
  rpcRate: {
    name: 'rpc-rate',
    arg: 'R',
    help: 'tuned variant: rpc limit per connection, calls/s',
    default: 1,
    min: 0.01,
  },
  rpcBurst: { name: 'rpc-burst', arg: 'N', help: 'tuned variant: its bucket size', default: 2, min: 1 },
  variants: {
    name: 'variants',
    arg: 'LIST',
    help: 'comma-separated: unprotected,defaults,tuned,kill-switch',
    defaultText: 'all',
  },
  successLimit: {
    name: 'success-limit',
    arg: 'P',
    help: 'well-behaved success the protected variants must reach, %',
    default: 99,
  },
  p99Limit: {
    name: 'p99-limit',
    arg: 'MS',
    help: 'well-behaved p99 the protected variants must stay under',
    default: 250,
  },
} satisfies Record<string, FlagSpec>;
