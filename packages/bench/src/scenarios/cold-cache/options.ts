/**
 * FLAGS_DOC
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';

export const flags = {
  nodes: { name: 'nodes', arg: 'M', help: 'Bulwark processes on one Redis', default: 3, quick: 2, min: 1 },
  clients: { name: 'clients', arg: 'N', help: 'clients per process', default: 200, quick: 50, min: 1 },
  keys: { name: 'keys', arg: 'K', help: 'unique keys', default: 10_000, quick: 1000, min: 1 },
  asksPerKey: { name: 'asks-per-key', arg: 'C', help: 'asks of each key per process', default: 2, min: 1 },
  inflight: { name: 'inflight', arg: 'N', help: 'RPCs each client keeps outstanding', default: 2, min: 1 },
  serviceMs: { name: 'service-ms', arg: 'MS', help: 'origin service time per call', default: 20, min: 1 },
  originCapacity: {
    name: 'origin-capacity',
    arg: 'R',
    help: 'origin calls/s it sustains; the peak-rate check',
    default: 2000,
    min: 1,
  },
  originConcurrency: {
    name: 'origin-concurrency',
    arg: 'N',
    help: 'origin answers 503 over N in flight',
    defaultText: '⌈capacity × service⌉ = 40; 0 off',
  },
  maxConcurrent: {
    name: 'max-concurrent',
    arg: 'N',
    help: 'proxy.max_concurrent per node',
    default: 0,
    defaultText: '⌊capacity / (M × ⌈1000/service⌉)⌋',
  },
  maxQueue: {
    name: 'max-queue',
    arg: 'N',
    help: 'proxy.max_queue per node',
    defaultText: 'max(256, clients × inflight)',
  },
  proxyTimeoutMs: { name: 'proxy-timeout-ms', arg: 'MS', help: 'rpc.proxy.timeout', default: 3000, min: 1 },
  maxSeconds: { name: 'max-seconds', arg: 'S', help: 'bound on each variant’s load', default: 90, quick: 30, min: 1 },
  slackPercent: {
    name: 'slack-percent',
    arg: 'P',
    help: 'origin calls allowed over 1/key (shared), 1/key/node (local)',
    default: 5,
  },
  variants: {
    name: 'variants',
    arg: 'LIST',
    help: 'of shared,local,none,naive',
    default: 'shared,local,none,naive',
    defaultText: 'all',
  },
  redisUrl: { name: 'redis-url', arg: 'URL', help: 'Redis for the engine', default: 'redis://127.0.0.1:6379' },
  shedding: { name: 'shedding', help: 'keep load shedding on', defaultText: 'off: it would measure the machine' },
} satisfies Record<string, FlagSpec>;
