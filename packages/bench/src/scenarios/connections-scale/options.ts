/**
 * FLAGS_DOC
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';

export const flags = {
  connections: { name: 'connections', arg: 'N', help: '', default: 100_000, quick: 5_000, min: 1 },
  workers: {
    name: 'workers',
    arg: 'N',
    help: 'Bulwark workers',
    defaultText: 'what the fd limit needs, ≥ 2; 7 for 100,000',
    min: 1,
  },
  loadProcesses: {
    name: 'load-processes',
    arg: 'N',
    help: 'load-generator processes, ≤ 18,000 sockets each',
    defaultText: 'N/18000, ≥ 2',
    min: 1,
  },
  sourceIps: {
    name: 'source-ips',
    arg: 'N',
    help: 'source addresses 127.A.B.1..N',
    defaultText: 'N/20000, ≥ 1',
    min: 1,
  },
  sourcePrefix: {
    name: 'source-prefix',
    arg: 'P',
    help: 'first three octets of the source addresses, 127.A.B',
    defaultText: 'random per run',
  },
  concurrency: {
    name: 'concurrency',
    arg: 'N',
    help: 'connects in flight, all processes',
    default: 200,
    quick: 100,
    min: 1,
  },
  channels: { name: 'channels', arg: 'N', help: 'channels the subscriptions spread over', default: 1000, min: 1 },
  hold: {
    name: 'hold',
    arg: 'S',
    help: 'idle hold, seconds',
    default: 30,
    quick: 3,
    defaultText: '30 > the 25 s ping interval; quick 3',
  },
  settle: { name: 'settle', arg: 'MS', help: 'idle time after the connects', default: 3000, quick: 1000 },
  retries: { name: 'retries', arg: 'N', help: 'retries of an HTTP 503 refusal', default: 3 },
  connectBudget: { name: 'connect-budget', arg: 'S', help: 'longest connect phase', default: 240, quick: 45, min: 1 },
  redisUrl: { name: 'redis-url', arg: 'URL', help: 'Redis for the engine', default: 'redis://127.0.0.1:6379' },
  rssLimit: {
    name: 'rss-limit',
    arg: 'KIB',
    help: 'pass: server RSS per connection ≤ KIB',
    default: 12,
    quick: 32,
    defaultText: '12; quick 32: fixed heap growth dominates',
  },
  handshakeP99: { name: 'handshake-p99', arg: 'MS', help: 'pass: handshake p99 ≤ MS', default: 1000 },
} satisfies Record<string, FlagSpec>;
