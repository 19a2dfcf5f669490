/**
 * The fan-out scenario's flags and the {@link FanoutOptions} they resolve to (quick: smaller,
 * shorter, and a ramp of three quick steps).
 *
 * @module
 */
import os from 'node:os';
import { type FlagSpec } from '../../harness/flags.js';
import { parseClientNames, type ReaderName } from '../../load/session-clients.js';
import { type ScenarioContext } from '../../harness/scenario.js';
import { type FanoutOptions } from './types.js';

export const flags = {
  format: {
    name: 'format',
    arg: 'LIST',
    help: "Bulwark's clients: json, protobuf, http_stream, sse (comma-separated), both (json,protobuf) or all (one column each, fresh server each)",
    default: 'both',
  },
  reader: {
    name: 'reader',
    arg: 'R',
    help: "how subscribers read: raw (hand-rolled frames on a bare TCP socket), ws (the ws library's clients) or compare (half the worker processes each: CPU per delivery of both in one run)",
    default: 'raw',
  },
  subProcs: {
    name: 'sub-procs',
    arg: 'P',
    help: "subscriber processes (0: in the publisher's process), pinned to every CPU but the server's",
    defaultText: 'CPUs − 1 (the server has one): 1 on 2 cores',
  },
  subscribers: { name: 'subscribers', arg: 'N', help: '', default: 2000, quick: 200, min: 1 },
  channels: { name: 'channels', arg: 'N', help: '', default: 20, min: 1 },
  rate: { name: 'rate', arg: 'N', help: 'fixed publications/s, all channels', default: 400, quick: 100, min: 1 },
  duration: { name: 'duration', arg: 'S', help: 'fixed-rate seconds', default: 15, quick: 2, min: 1 },
  pad: { name: 'pad', arg: 'N', help: "padding bytes in each publication's data", default: 64 },
  noRamp: { name: 'no-ramp', help: 'skip the ramp' },
  rampStart: { name: 'ramp-start', arg: 'N', help: 'first ramp rate, pub/s', default: 200, min: 1 },
  p99Limit: { name: 'p99-limit', arg: 'MS', help: 'ramp pass criterion', default: 100, min: 1 },
  apiPublish: {
    name: 'api-publish',
    help: 'publish through the server HTTP API instead of a client (Bulwark only; the baseline for --tags-filter)',
  },
  tagsFilter: {
    name: 'tags-filter',
    help: 'subscribers filter by tags (region eq and tier gte, which every publication matches); publishes through the API with tags (Bulwark only; json, protobuf)',
  },
  variants: {
    name: 'pub-variants',
    help: 'publications carry one variant that every other subscriber (declaring version 1.0) gets; publishes through the API (Bulwark only; json, protobuf)',
  },
} satisfies Record<string, FlagSpec>;

/**
 * The filter of --tags-filter: a region and a numeric level, as a game would filter a shared
 * channel; every publication matches it, so deliveries equal a plain run's and only the cost of
 * evaluating it differs.
 */
const benchTagsFilter = {
  filter: {
    op: 'and',
    nodes: [
      { key: 'region', cmp: 'eq', val: 'eu' },
      { key: 'tier', cmp: 'gte', val: '2' },
    ],
  },
  tags: { region: 'eu', tier: '3', kind: 'move' },
};

/** fanoutOptions resolves the flags. */
export function fanoutOptions(ctx: Pick<ScenarioContext, 'quick' | 'flags'>): FanoutOptions {
  const f = ctx.flags;
  const quick = ctx.quick;
  const o: FanoutOptions = {
    formats: parseClientNames(f.str(flags.format)),
    reader: parseReader(f.str(flags.reader)),
    // The server has a CPU of its own; the publisher (this process) shares the workers' CPUs.
    subscriberProcesses: f.int(flags.subProcs, Math.max(1, os.cpus().length - 1)),
    subscribers: f.num(flags.subscribers),
    channels: f.num(flags.channels),
    padBytes: f.num(flags.pad),
    fixedRate: f.num(flags.rate),
    fixedSeconds: f.num(flags.duration),
    warmupSeconds: quick ? 0 : 3,
    ramp: !f.bool(flags.noRamp),
    rampStartRate: f.num(flags.rampStart),
    rampFactor: quick ? 2 : 1.5,
    rampStepSeconds: quick ? 1 : 4,
    rampMaxSteps: quick ? 3 : 14,
    rampRefineSteps: quick ? 0 : 2,
    rampRetryLatencyFailures: !quick,
    rampBudgetSeconds: quick ? 8 : 75,
    p99LimitMs: f.num(flags.p99Limit),
    drainTimeoutMs: quick ? 1000 : 3000,
    connectConcurrency: 100,
    apiPublish: f.bool(flags.apiPublish) || f.bool(flags.tagsFilter) || f.bool(flags.variants),
    variants: f.bool(flags.variants),
    tagsFilter: f.bool(flags.tagsFilter) ? benchTagsFilter : undefined,
  };
  if (o.tagsFilter && o.formats.some((k) => k !== 'json' && k !== 'protobuf')) {
    throw new Error('--tags-filter: only the json and protobuf formats send a tags filter');
  }
  if (o.variants && o.formats.some((k) => k !== 'json' && k !== 'protobuf')) {
    throw new Error('--pub-variants: only the json and protobuf formats declare a client version');
  }
  if (o.subscribers % o.channels !== 0) {
    throw new Error('--subscribers must be a multiple of --channels (equal subscribers per channel)');
  }
  // compare: the two readers in as many processes each.
  if (o.reader === 'compare') o.subscriberProcesses = 2 * Math.max(1, Math.ceil(o.subscriberProcesses / 2));
  return o;
}

/** parseReader reads --reader. */
function parseReader(arg: string): ReaderName | 'compare' {
  if (arg !== 'raw' && arg !== 'ws' && arg !== 'compare') {
    throw new Error(`--reader must be raw, ws or compare, got "${arg}"`);
  }
  return arg;
}
