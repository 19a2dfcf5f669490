/**
 * The idle-connections scenario's flags and the {@link ConnectionsOptions} they resolve to.
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';
import { parseClientNames } from '../../load/session-clients.js';
import { type ScenarioContext } from '../../harness/scenario.js';
import { type ConnectionsOptions } from './run.js';

export const flags = {
  format: {
    name: 'format',
    arg: 'LIST',
    help: "Bulwark's clients: json, protobuf, http_stream, sse (comma-separated), both (json,protobuf) or all (one column each, fresh server each)",
    default: 'both',
  },
  connections: { name: 'connections', arg: 'N', help: '', default: 10_000, quick: 1000, min: 1 },
  concurrency: { name: 'concurrency', arg: 'N', help: 'connects in flight', default: 200, min: 1 },
  subscriptions: {
    name: 'subscriptions',
    arg: 'N',
    help: 'channels each connection subscribes to (Bulwark only beyond 1; the capacity model reads the extra ones)',
    default: 1,
    min: 1,
  },
  sourceIps: { name: 'source-ips', arg: 'N', help: 'spread over 127.0.0.1..N', default: 1, min: 1 },
  settle: { name: 'settle', arg: 'MS', help: 'idle time before reading RSS', default: 3000, quick: 1000 },
  repeat: {
    name: 'repeat',
    arg: 'N',
    help: 'runs per server, alternating servers; medians reported',
    default: 3,
    quick: 1,
    min: 1,
  },
} satisfies Record<string, FlagSpec>;

/** connectionsOptions resolves the flags. */
export function connectionsOptions(ctx: Pick<ScenarioContext, 'quick' | 'flags'>): ConnectionsOptions {
  const f = ctx.flags;
  const o: ConnectionsOptions = {
    formats: parseClientNames(f.str(flags.format)),
    connections: f.num(flags.connections),
    channels: 100,
    subscriptions: f.num(flags.subscriptions),
    concurrency: f.num(flags.concurrency),
    baselineSettleMs: ctx.quick ? 500 : 2000,
    settleMs: f.num(flags.settle),
    sourceIps: f.num(flags.sourceIps),
  };
  if (o.sourceIps > 254) throw new Error('--source-ips must be ≤ 254');
  if ((o.subscriptions ?? 1) > o.channels) throw new Error(`--subscriptions must be ≤ ${o.channels} (the channels)`);
  return o;
}
