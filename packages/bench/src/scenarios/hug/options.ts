/**
 * The hug scenario's flags (each declared once with its default, quick value and help) and the
 * options they resolve to.
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';
import { type HugOptions } from './types.js';
import { type ScenarioContext } from '../../harness/scenario.js';
import { fmt } from '../../harness/format.js';

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

/** The load generator's own open-file limit is 20,000 on the benchmark machine; keep clear of it. */
export const LOADGEN_FD_BUDGET = 19_000;

/** hugOptions resolves the flags (quick: smaller, shorter). */
export function hugOptions(ctx: ScenarioContext): HugOptions {
  const f = ctx.flags;
  const q = ctx.quick;
  const rate = f.num(flags.rate);
  const sessionSeconds = f.num(flags.session);
  // Capacity the normal load fits comfortably: twice the players online at the normal rate, and
  // new connections at twice the normal arrival rate (so the rate limit refuses first, the count
  // limit once the node has filled up).
  const normalOnline = rate * sessionSeconds;
  const o: HugOptions = {
    rate,
    sessionSeconds,
    warmupSeconds: f.num(flags.warmup),
    steps: f.int(flags.steps),
    stepSeconds: f.num(flags.stepSeconds),
    top: f.num(flags.top),
    tailSeconds: f.num(flags.tail),
    connectionLimit: f.int(flags.connectionLimit, normalOnline > 0 ? Math.ceil(2 * normalOnline) : q ? 1200 : 8000),
    connectionRateLimit: f.int(flags.rateLimit, Math.ceil(2 * rate)),
    retries: f.int(flags.retries),
    maxInFlight: f.int(flags.maxInFlight),
    maxAttempts: f.int(flags.maxAttempts),
    channels: 100,
    p99LimitMs: f.num(flags.p99Limit),
    maxRssMiB: f.num(flags.maxRssMib),
    maxFailedPercent: f.num(flags.maxFailedPercent),
    readyTimeoutMs: f.int(flags.readyTimeout),
    bucketMs: q ? 500 : 1000,
  };
  // The server needs ceil(limit × fd_headroom 1.25) + 64 descriptors of its 20,000; the load
  // generator holds every admitted socket plus those in flight.
  if (o.connectionLimit > 15_900) throw new Error('hug: --connection-limit must be ≤ 15,900 (open-file limit 20,000)');
  if (o.connectionLimit + o.maxInFlight > LOADGEN_FD_BUDGET) {
    throw new Error(
      `hug: --connection-limit + --max-in-flight must be ≤ ${fmt(LOADGEN_FD_BUDGET)} (one process's sockets)`,
    );
  }
  return o;
}

/** How often the client-side counts are sampled for the charts. */
export const SAMPLE_MS = 500;
