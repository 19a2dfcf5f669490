/**
 * The api-publish scenario's flags and the {@link ApiPublishOptions} they resolve to (quick:
 * two seconds measured after half a second of warm-up).
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';
import { type ScenarioContext } from '../../harness/scenario.js';
import { API_RUNS, type ApiPublishOptions, type ApiRunName } from './types.js';

export const flags = {
  runs: {
    name: 'runs',
    arg: 'LIST',
    help: 'which runs, comma-separated: floor (the Node http floor), bulwark (POST /api/publish), batch (POST /api/batch)',
    default: API_RUNS.join(','),
  },
  connections: { name: 'connections', arg: 'N', help: 'keep-alive HTTP connections', default: 50, min: 1 },
  channels: {
    name: 'channels',
    arg: 'N',
    help: 'channels of the history namespace, published round robin',
    default: 100,
    min: 1,
  },
  batchSize: { name: 'batch-size', arg: 'N', help: 'publishes per batch request', default: 50, min: 1 },
  batchParallel: { name: 'batch-parallel', help: 'send batches with "parallel": true' },
  duration: { name: 'duration', arg: 'S', help: 'seconds measured per run', default: 10, quick: 2, min: 1 },
  warmup: { name: 'warmup', arg: 'S', help: 'seconds of unmeasured load first', default: 3, quick: 0.5 },
  pad: { name: 'pad', arg: 'N', help: "padding bytes in each publication's data", default: 0 },
  historySize: { name: 'history-size', arg: 'N', help: 'history_size of the namespace', default: 100, min: 1 },
  historyTtl: { name: 'history-ttl', arg: 'D', help: 'history_ttl of the namespace', default: '300s' },
  verifySubscribers: {
    name: 'verify-subscribers',
    help: 'one subscriber per channel on Bulwark counts deliveries (adds their cost to the CPU figures)',
  },
  ratioTarget: {
    name: 'ratio-target',
    arg: 'X',
    help: 'Bulwark/floor publishes per server CPU-second must be ≥ X',
    default: 0.8,
  },
  batchRatioTarget: {
    name: 'batch-ratio-target',
    arg: 'X',
    help: 'batch/floor publishes per server CPU-second must be ≥ X',
    default: 2,
  },
} satisfies Record<string, FlagSpec>;

/** parseRuns reads --runs: known names, each once, put in {@link API_RUNS} order. */
export function parseRuns(arg: string): ApiRunName[] {
  const asked = arg
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const r of asked) {
    if (!(API_RUNS as readonly string[]).includes(r)) {
      throw new Error(`--runs: unknown run "${r}" (floor, bulwark, batch)`);
    }
  }
  if (asked.length === 0) throw new Error('--runs: name at least one run (floor, bulwark, batch)');
  return API_RUNS.filter((r) => asked.includes(r));
}

/** apiPublishOptions resolves the flags. */
export function apiPublishOptions(ctx: Pick<ScenarioContext, 'flags'>): ApiPublishOptions {
  const f = ctx.flags;
  const historyTtl = f.str(flags.historyTtl);
  // Checked here, not by Bulwark's config loader at start: a typo should not cost a server start.
  if (!/^\d+(ms|s|m|h)$/.test(historyTtl) || /^0+[a-z]+$/.test(historyTtl)) {
    throw new Error(`--history-ttl must be a positive duration such as 300s or 5m, got "${historyTtl}"`);
  }
  return {
    runs: parseRuns(f.str(flags.runs)),
    connections: f.int(flags.connections),
    channels: f.int(flags.channels),
    batchSize: f.int(flags.batchSize),
    batchParallel: f.bool(flags.batchParallel),
    seconds: f.num(flags.duration),
    warmupSeconds: f.num(flags.warmup),
    padBytes: f.int(flags.pad),
    historySize: f.int(flags.historySize),
    historyTtl,
    verifySubscribers: f.bool(flags.verifySubscribers),
    ratioTarget: f.num(flags.ratioTarget),
    batchRatioTarget: f.num(flags.batchRatioTarget),
  };
}
