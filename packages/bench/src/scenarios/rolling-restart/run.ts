/**
 * The rolling-restart scenario: a deploy restarts the node holding the players. Every player
 * must come back (to another node, spread over `drain.window` rather than as one storm) and get
 * every publication it missed while away, from history, in its resubscribe reply.
 *
 * Setup: Bulwark nodes A and B on the Redis engine (one fresh key prefix, shared token secret
 * and API key), namespace `rr` with history and `force_recovery`. C simulated players
 * ({@link RecoveringClient}: SDK-like reconnect with backoff and jitter, resubscribe with
 * `recover: true, offset, epoch`), all connected to A, player i subscribed to channel
 * `rr:ch{i mod K}`. A publisher sends numbered publications through the HTTP API of a node that
 * stays up, at a fixed rate, round-robin over the channels.
 *
 * The restart, as an orchestrator does it:
 * 1. SIGTERM A. A turns unready and disconnects its players with 3001 spread over drain.window;
 *    they reconnect through the "load balancer" ({@link AddressPool}), which keeps routing to A
 *    (its upgrades answer 503) until the probe delay has passed, then only to B.
 * 2. (with --restarts 2) Start a fresh A', add it to the pool, move the publisher to it, and
 *    SIGTERM B the same way: everyone moves to A'.
 *
 * Measured: every player's received sequence numbers (exact loss and duplicates per player and
 * channel over the whole run, {@link SeqTracker}), every subscribe reply (recovered or not, how
 * many publications it carried), disconnect and reconnect times (the reconnect rate over time and
 * its peak against N / W), each player's time offline, live delivery latency inside and outside
 * the restart windows, and how old recovered publications were when they arrived. After the
 * run, the counters of the nodes that stayed up (upgrades refused by reason: `overload` is load
 * shedding) tell why a reconnect attempt was refused.
 *
 * With CPU pinning every node shares the server CPU (the load generator has the other one).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { AddressPool } from '../../load/address-pool.js';
import { SDK_MAX_RECONNECT_DELAY_MS } from '../../load/backoff.js';
import { RecoveringClient, type RecoveringClientEvents, type SubscribeOutcome } from '../../load/recovering-client.js';
import { fetchMetrics, metricSeries, ServerApi } from '../../harness/api.js';
import { NumberedPublisher } from '../../load/numbered-publisher.js';
import { connectionToken } from '../../harness/jwt.js';
import { deleteKeysWithPrefix, redisPing } from '../../harness/redis-keys.js';
import { fmt, fmtCounts, formatTable } from '../../harness/format.js';
import { check, type Chart, type Check, type ScenarioContext, type Series } from '../../harness/scenario.js';
import { LatencyRecorder, roundSummary, SeqTracker, type LatencySummary } from '../../harness/stats.js';
import { bulwarkAvailable, deepMerge, ServerRunError, startServer, type RunningServer } from '../../harness/targets.js';
import { Timeline } from '../../harness/timeline.js';
import { mapLimit, nowMicros, round, sleep, waitFor } from '../../harness/util.js';
import { flags } from './options.js';

/** RollingOptions size the scenario. */
export interface RollingOptions {
  clients: number;
  channels: number;
  /** API publications per second, all channels together. */
  rate: number;
  /** Bulwark's drain.window, ms. */
  drainWindowMs: number;
  /** How long the load balancer keeps routing to a draining node (its readiness probe), ms. */
  probeDelayMs: number;
  /** 1: drain A (players move to B); 2: then start a fresh A' and drain B (players move to A'). */
  restarts: number;
  /** Publishing before the first restart and after the last, seconds. */
  steadySeconds: number;
  /** How much longer than drain.window a restart may take until every player is back, ms. */
  slackMs: number;
  /** The peak reconnect rate may be at most this × players / drain.window. */
  maxPeakFactor: number;
  /** history_size of the namespace. */
  historySize: number;
  redisUrl: string;
  connectConcurrency: number;
  /** Chart bucket width, ms. */
  bucketMs: number;
}

/** RestartResult is what one restart (one node drained) did to the players. */
export interface RestartResult {
  label: string;
  /** Players connected to the drained node when the drain began. */
  affected: number;
  /** Of them, disconnected by the drain with 3001. */
  drained: number;
  /** Of them, subscribed again on another node by the end of the wait. */
  back: number;
  /** Seconds after the drain began of the first and last 3001 disconnect. */
  disconnectsS: { first: number; last: number } | null;
  /** Seconds from the drain's start until the last affected player was subscribed again; null if not all were. */
  allBackS: number | null;
  /** Highest number of reconnects (resubscribes) in any 1 s interval. */
  reconnectPeakPerSec: number;
  /** What the drain window should give: affected / window. */
  expectedPerSec: number;
  /** Connect attempts that failed during the restart, by reason (503 from the draining node, …). */
  failedAttempts: Record<string, number>;
  /** Per player: time from its disconnect to its resubscribe reply. */
  offlineMs: LatencySummary;
  resubscribes: number;
  /** Resubscribes answered `recovered: false`. */
  notRecovered: number;
  /** Publications carried in resubscribe replies. */
  recoveredPublications: number;
  /**
   * The server's own counters on the nodes that stayed up, read once the players were back
   * (cumulative since each node started): upgrades refused by reason (`overload` is load
   * shedding, `draining` only happens on a draining node) and recoveries by result.
   */
  nodeCounters: Record<string, NodeCounters>;
  /** How the drained process exited: "code/signal", "0/null" when clean. */
  exit: string;
}

/** NodeCounters are a node's /metrics counters that matter here. */
export interface NodeCounters {
  rejections: Record<string, number>;
  recoveries: Record<string, number>;
}

/** MissingExample shows one player's missing publications, for a report of a real loss. */
export interface MissingExample {
  client: number;
  channel: string;
  missingSeqs: number[];
  /** The stream offsets the API gave those publications (0: unknown). */
  missingOffsets: number[];
  /** Every subscribe reply the player got (what it asked to recover from, what it got). */
  subscribes: SubscribeOutcome[];
}

/** Completeness is the exact delivery account over the whole run. */
export interface Completeness {
  /** Deliveries owed: Σ over players of the publications the API accepted on their channel. */
  expected: number;
  /** Owed deliveries that never arrived, live or recovered, at players subscribed at the end. */
  missing: number;
  /** Owed deliveries not received by players that were not subscribed at the end (they never came back). */
  missingAway: number;
  clientsWithLoss: number;
  duplicates: number;
  /** Arrivals of a sequence number below one already received (publisher-side reordering included). */
  outOfOrder: number;
  /** Publications whose API call failed (not owed; a received one is not counted as missing or extra). */
  unconfirmed: number;
}

/** RollingResult is the scenario's outcome. */
export interface RollingResult {
  restarts: RestartResult[];
  published: number;
  apiFailures: number;
  apiLastError?: string;
  liveDeliveries: number;
  recoveredDeliveries: number;
  completeness: Completeness;
  /** Deliveries that went back in stream offset (see Observer.offsetRegressions); must be 0. */
  offsetRegressions: number;
  missingExamples: MissingExample[];
  notRecoveredExamples: Array<SubscribeOutcome & { client: number; channel: string }>;
  /** Players not subscribed at the end, and those that gave up (terminal close or refusal). */
  notSubscribedAtEnd: number;
  gaveUp: number;
  /** Failed connect attempts outside the restart windows (the first connect to A included), by reason. */
  failedAttemptsOutsideRestarts: Record<string, number>;
  /** Close codes of every accepted connection that closed during the run. */
  closeCodes: Record<string, number>;
  /** Live delivery latency outside and inside the restart windows (drain start → all back). */
  liveLatencyMs: { outside: LatencySummary; during: LatencySummary };
  /** Age (now − publish time) of recovered publications when their resubscribe reply arrived. */
  recoveredAgeMs: LatencySummary;
}

const NAMESPACE = 'rr';
const channelName = (ch: number) => `${NAMESPACE}:ch${ch}`;
const MAX_API_IN_FLIGHT = 512;
/** Failed attempts a player may retry (with the backoff) while everyone first connects to A. */
const START_RETRIES = 10;

// ---------------------------------------------------------------- pure measurement functions

/**
 * peakPerWindow is the largest number of `timesMs` in any half-open interval [t, t + windowMs):
 * the peak rate over a sliding window, which fixed buckets would split and understate.
 */
export function peakPerWindow(timesMs: readonly number[], windowMs = 1000): number {
  const t = [...timesMs].sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < t.length; hi++) {
    while ((t[hi] as number) - (t[lo] as number) >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

/**
 * rateSeries buckets `timesMs` (ms, same clock as `startMs`) into `bucketMs` buckets from
 * `startMs` to `endMs` and returns events per second per bucket, x = bucket start in seconds.
 * Events outside [startMs, endMs) are left out.
 */
export function rateSeries(
  timesMs: readonly number[],
  startMs: number,
  endMs: number,
  bucketMs: number,
  label: string,
): Series {
  const n = Math.max(0, Math.ceil((endMs - startMs) / bucketMs));
  const counts = new Array<number>(n).fill(0);
  for (const t of timesMs) {
    const i = Math.floor((t - startMs) / bucketMs);
    if (i >= 0 && i < n) counts[i] = (counts[i] as number) + 1;
  }
  return {
    label,
    points: counts.map((c, i) => [round((i * bucketMs) / 1000, 3), round((c * 1000) / bucketMs, 2)]),
  };
}

/** spanOf is the first and last of `timesMs`, in seconds after `originMs`; null when empty. */
export function spanOf(timesMs: readonly number[], originMs: number): { first: number; last: number } | null {
  if (timesMs.length === 0) return null;
  let lo = Infinity;
  let hi = -Infinity;
  for (const t of timesMs) {
    lo = Math.min(lo, t);
    hi = Math.max(hi, t);
  }
  return { first: round((lo - originMs) / 1000, 3), last: round((hi - originMs) / 1000, 3) };
}

/** CompletenessInput is one player's account: its channel, what it received, whether it is back. */
export interface CompletenessInput {
  channel: number;
  tracker: SeqTracker;
  /** Subscribed at the end: everything owed should have arrived. */
  subscribed: boolean;
}

/**
 * judgeCompleteness counts, over every player, the publications owed to it that never arrived
 * (separately for players that never came back: their loss is unavailability, not a recovery
 * failure).
 * Channel `ch` was sent sequence numbers 1 … `sentPerChannel[ch]`; those in `unconfirmed[ch]`
 * (API call failed: maybe published, maybe not) are owed by nobody, so neither their absence nor
 * their arrival counts.
 */
export function judgeCompleteness(
  players: readonly CompletenessInput[],
  sentPerChannel: readonly number[],
  unconfirmed: ReadonlyArray<ReadonlySet<number>>,
): Completeness {
  const out: Completeness = {
    expected: 0,
    missing: 0,
    missingAway: 0,
    clientsWithLoss: 0,
    duplicates: 0,
    outOfOrder: 0,
    unconfirmed: unconfirmed.reduce((n, s) => n + s.size, 0),
  };
  for (const p of players) {
    const sent = sentPerChannel[p.channel] ?? 0;
    const skip = unconfirmed[p.channel] ?? new Set<number>();
    let skippedMissing = 0;
    for (const seq of skip) if (seq >= 1 && seq <= sent && !p.tracker.has(seq)) skippedMissing++;
    const miss = p.tracker.missing(sent) - skippedMissing;
    out.expected += sent - skip.size;
    if (!p.subscribed) out.missingAway += miss;
    else if (miss > 0) {
      out.missing += miss;
      out.clientsWithLoss++;
    }
    out.duplicates += p.tracker.duplicates;
    out.outOfOrder += p.tracker.outOfOrder;
  }
  return out;
}

/** rollingChecks turns a result into the scenario's pass/fail verdicts. */
export function rollingChecks(r: RollingResult, o: RollingOptions): Check[] {
  const checks: Check[] = [
    check('players not subscribed at the end', r.notSubscribedAtEnd, '==', 0, 'players'),
    check(
      'missing publications at players back (not live, not recovered)',
      r.completeness.missing,
      '==',
      0,
      'deliveries',
    ),
    check('duplicate deliveries', r.completeness.duplicates, '==', 0, 'deliveries'),
    check('deliveries out of stream-offset order', r.offsetRegressions, '==', 0, 'deliveries'),
    check(
      'resubscribes answered recovered: false',
      r.restarts.reduce((n, x) => n + x.notRecovered, 0),
      '==',
      0,
      'replies',
    ),
    check('API publications failed', r.apiFailures, '==', 0, 'calls'),
    // SIGTERM must drain and exit 0 within shutdown.timeout; the bench SIGKILLs after that.
    check(
      'drained nodes not exiting cleanly (code 0)',
      r.restarts.filter((x) => x.exit !== '0/null').length,
      '==',
      0,
      'nodes',
    ),
  ];
  const windowS = o.drainWindowMs / 1000;
  r.restarts.forEach((x, i) => {
    const n = i + 1;
    checks.push(check(`restart ${n}: players back`, x.back, '==', x.affected, 'players'));
    checks.push(
      check(
        `restart ${n}: drain start → all back`,
        x.allBackS ?? Number.NaN,
        '<=',
        round(windowS + o.slackMs / 1000, 3),
        's',
      ),
    );
    // With no window everyone is disconnected at once: there is no spread to check.
    if (o.drainWindowMs <= 0) return;
    checks.push(
      check(
        `restart ${n}: peak reconnects in 1 s`,
        x.reconnectPeakPerSec,
        '<=',
        Math.ceil(o.maxPeakFactor * x.expectedPerSec),
        '/s',
      ),
    );
  });
  return checks;
}

// ---------------------------------------------------------------- the observer

/** RestartAcc accumulates one restart's events. */
interface RestartAcc {
  label: string;
  drainedUrl: string;
  startMs: number;
  /** Affected players and their subscribe count when the drain began. */
  affected: Map<number, number>;
  disconnects: number[];
  drained: number;
  reconnects: number[];
  failedAttempts: Record<string, number>;
  offline: LatencyRecorder;
  resubscribes: number;
  notRecovered: number;
  recoveredPublications: number;
  allBackAtMs: number | undefined;
  /** Affected players back when the wait for them ended. */
  back: number;
  /** How the drained process exited: "code/signal" (0/null is a clean exit). */
  exit: string;
  /** Counters of the nodes that stayed up, read when the wait ended. */
  nodeCounters: Record<string, NodeCounters>;
}

/** failureKind shortens an attempt failure to a reason worth tallying. */
function failureKind(why: string): string {
  const http = /Unexpected server response: (\d+)/.exec(why);
  if (http) return `HTTP ${http[1]}`;
  if (why.includes('ECONNREFUSED')) return 'connection refused';
  if (why.startsWith('no subscription within')) return 'timeout';
  if (why.startsWith('no address')) return 'no address';
  return why.length > 60 ? `${why.slice(0, 60)}…` : why;
}

/** Observer receives every player's events and keeps the accounts. */
class Observer implements RecoveringClientEvents {
  readonly trackers: SeqTracker[];
  /** When each player's connection closed, until it is subscribed again (0: not offline). */
  private readonly disconnectedAt: Float64Array;
  /** Highest stream offset each player has received. */
  private readonly lastOffset: Float64Array;
  /**
   * Deliveries whose stream offset was not above the player's highest so far (duplicates
   * excluded): the server broke offset order. Sequence numbers may legitimately arrive out of
   * order (the publisher's concurrent API calls can reach Redis in another order), offsets not.
   */
  offsetRegressions = 0;
  readonly history: SubscribeOutcome[][];
  readonly timeline: Timeline;
  readonly liveOutside = new LatencyRecorder();
  readonly liveDuring = new LatencyRecorder();
  readonly recoveredAge = new LatencyRecorder();
  liveDeliveries = 0;
  recoveredDeliveries = 0;
  readonly closeCodes: Record<string, number> = {};
  /** Failed connect attempts outside the restart windows (the first connect included), by reason. */
  readonly failedOutsideRestarts: Record<string, number> = {};
  readonly notRecovered: Array<SubscribeOutcome & { client: number; channel: string }> = [];
  readonly restarts: RestartAcc[] = [];
  /** A restart is in progress (drain start until every affected player is back). */
  restarting = false;

  constructor(
    clients: number,
    private readonly channelOf: (client: number) => number,
    /** The node name of a WebSocket URL, for failure tallies. */
    private readonly nodeOf: (url: string) => string,
    bucketMs: number,
  ) {
    this.trackers = Array.from({ length: clients }, () => new SeqTracker(1));
    this.lastOffset = new Float64Array(clients);
    this.disconnectedAt = new Float64Array(clients);
    this.history = Array.from({ length: clients }, () => []);
    this.timeline = new Timeline(bucketMs);
  }

  private get cur(): RestartAcc | undefined {
    return this.restarts[this.restarts.length - 1];
  }

  publication(c: RecoveringClient, seq: number, sentAtMicros: number, offset: number, recovered: boolean): void {
    const tracker = this.trackers[c.id] as SeqTracker;
    const dups = tracker.duplicates;
    tracker.record(seq);
    if (tracker.duplicates === dups && offset > 0) {
      if (offset <= (this.lastOffset[c.id] as number)) this.offsetRegressions++;
      else this.lastOffset[c.id] = offset;
    }
    const ms = (nowMicros() - sentAtMicros) / 1000;
    if (recovered) {
      this.recoveredDeliveries++;
      this.recoveredAge.add(ms);
      this.timeline.count('recovered');
    } else {
      this.liveDeliveries++;
      (this.restarting ? this.liveDuring : this.liveOutside).add(ms);
      this.timeline.count('live');
      this.timeline.sample('live', ms);
    }
  }

  subscribed(c: RecoveringClient, o: SubscribeOutcome): void {
    (this.history[c.id] as SubscribeOutcome[]).push(o);
    if (!o.recovering) return;
    this.timeline.count('reconnect');
    const r = this.cur;
    if (!o.recovered && this.notRecovered.length < 20) {
      this.notRecovered.push({ ...o, client: c.id, channel: channelName(this.channelOf(c.id)) });
    }
    if (!r) return;
    r.reconnects.push(o.atMs);
    r.resubscribes++;
    if (!o.recovered) r.notRecovered++;
    r.recoveredPublications += o.publications;
    const gone = this.disconnectedAt[c.id] as number;
    if (gone > 0) r.offline.add(o.atMs - gone);
    this.disconnectedAt[c.id] = 0;
  }

  disconnected(c: RecoveringClient, code: number): void {
    this.closeCodes[code] = (this.closeCodes[code] ?? 0) + 1;
    this.disconnectedAt[c.id] = performance.now();
    this.timeline.count('disconnect');
    const r = this.cur;
    if (!r || !r.affected.has(c.id)) return;
    r.disconnects.push(performance.now());
    if (code === 3001) r.drained++;
  }

  attemptFailed(c: RecoveringClient, why: string): void {
    this.timeline.count('failed attempt');
    const tally = this.restarting ? this.cur?.failedAttempts : this.failedOutsideRestarts;
    if (!tally) return;
    const k = `${failureKind(why)} from ${this.nodeOf(c.url)}`;
    tally[k] = (tally[k] ?? 0) + 1;
  }

  /** beginRestart starts accounting a drain of the node at `drainedUrl`. */
  beginRestart(label: string, drainedUrl: string, clients: readonly RecoveringClient[]): RestartAcc {
    const affected = new Map<number, number>();
    for (const c of clients) if (c.url === drainedUrl && c.state === 'subscribed') affected.set(c.id, c.subscribes);
    const acc: RestartAcc = {
      label,
      drainedUrl,
      startMs: performance.now(),
      affected,
      disconnects: [],
      drained: 0,
      reconnects: [],
      failedAttempts: {},
      offline: new LatencyRecorder(),
      resubscribes: 0,
      notRecovered: 0,
      recoveredPublications: 0,
      allBackAtMs: undefined,
      back: 0,
      exit: 'running',
      nodeCounters: {},
    };
    this.restarts.push(acc);
    this.restarting = true;
    return acc;
  }

  /** backCount is how many affected players are subscribed again on another node. */
  backCount(acc: RestartAcc, clients: readonly RecoveringClient[]): number {
    let n = 0;
    for (const [id, subs] of acc.affected) {
      const c = clients[id] as RecoveringClient;
      if (c.state === 'subscribed' && c.subscribes > subs && c.url !== acc.drainedUrl) n++;
    }
    return n;
  }
}

// ---------------------------------------------------------------- the run

type NodeName = 'A' | 'B' | "A'";

/** The servers of one run, stopped on every way out. */
interface Fleet {
  nodes: Map<NodeName, RunningServer>;
  apis: Map<NodeName, ServerApi>;
}

/** readNodeCounters reads a node's rejection and recovery counters (empty when /metrics does not answer). */
async function readNodeCounters(server: RunningServer): Promise<NodeCounters> {
  try {
    const text = await fetchMetrics(server, 3000);
    return {
      rejections: Object.fromEntries(metricSeries(text, 'bulwark_rejections_total', 'reason')),
      recoveries: Object.fromEntries(metricSeries(text, 'bulwark_recoveries_total', 'result')),
    };
  } catch {
    return { rejections: {}, recoveries: {} };
  }
}

/** nodeConfig is one node's Bulwark config: Redis engine, the `rr` namespace, the drain window. */
function nodeConfig(name: NodeName, prefix: string, o: RollingOptions): Record<string, unknown> {
  return {
    node: { name: `rr-${name === "A'" ? 'A2' : name}` },
    engine: { type: 'redis', redis: { address: [o.redisUrl], prefix } },
    drain: { window: `${o.drainWindowMs}ms` },
    shutdown: { timeout: `${o.drainWindowMs + 10_000}ms` },
    channel: {
      namespaces: [
        {
          name: NAMESPACE,
          history_size: o.historySize,
          history_ttl: '300s',
          // Positions outlive the run a little; the run deletes its keys anyway.
          history_meta_ttl: '600s',
          force_recovery: true,
          allow_subscribe_for_client: true,
        },
      ],
    },
  };
}

/** readOptions resolves the flags. */
export function readOptions(ctx: ScenarioContext): RollingOptions {
  const f = ctx.flags;
  const q = ctx.quick;
  const o: RollingOptions = {
    clients: f.int(flags.clients),
    channels: f.int(flags.channels),
    rate: f.num(flags.rate),
    drainWindowMs: f.int(flags.drainWindow),
    probeDelayMs: f.int(flags.probeDelay),
    restarts: f.int(flags.restarts),
    steadySeconds: f.num(flags.steady),
    slackMs: f.int(flags.reconnectSlack),
    maxPeakFactor: f.num(flags.maxPeakFactor),
    historySize: 1000,
    redisUrl: f.str(flags.redisUrl, process.env.BULWARK_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'),
    connectConcurrency: 200,
    bucketMs: q ? 500 : 1000,
  };
  if (o.restarts > 2) throw new Error('--restarts must be 1 or 2');
  if (o.clients > 15_000) throw new Error('--clients must be ≤ 15000 (one process holds them, file limit 20000)');
  return o;
}

/** runRolling runs the scenario; `ctx` gives flags, logging and how to start Bulwark. */
export async function runRolling(
  ctx: ScenarioContext,
  o: RollingOptions,
): Promise<{ result: RollingResult; charts: Chart[] }> {
  if (!bulwarkAvailable(ctx.bulwark.bulwarkMain)) throw new Error('Bulwark is not built (npm run build)');
  await redisPing(o.redisUrl).catch((err: unknown) => {
    throw new Error(`rolling-restart needs Redis (--redis-url URL): ${(err as Error).message}`);
  });
  const prefix = `bench-rolling-${randomBytes(6).toString('hex')}`;
  const tokenSecret = randomBytes(32).toString('hex');
  const apiKey = randomBytes(16).toString('hex');
  const fleet: Fleet = { nodes: new Map(), apis: new Map() };
  const start = async (name: NodeName): Promise<RunningServer> => {
    const s = await startServer('bulwark', {
      ...ctx.bulwark,
      tokenSecret,
      apiKey,
      readyTimeoutMs: 30_000,
      bulwarkConfig: deepMerge(ctx.bulwark.bulwarkConfig ?? {}, nodeConfig(name, prefix, o)),
    });
    fleet.nodes.set(name, s);
    fleet.apis.set(name, new ServerApi(s, MAX_API_IN_FLIGHT));
    ctx.log(`  node ${name}: pid ${s.pid}, port ${s.port}`);
    return s;
  };
  const clients: RecoveringClient[] = [];
  let sampler: NodeJS.Timeout | undefined;
  let publisher: NumberedPublisher | undefined;
  try {
    ctx.log(`rolling-restart: Redis prefix ${prefix}`);
    const [a, b] = await Promise.all([start('A'), start('B')]);
    const labelOf = new Map<string, NodeName>([
      [a.wsUrl, 'A'],
      [b.wsUrl, 'B'],
    ]);
    const channelOf = (i: number) => i % o.channels;
    const obs = new Observer(o.clients, channelOf, (url) => labelOf.get(url) ?? url, o.bucketMs);
    const pool = new AddressPool([a.wsUrl, b.wsUrl]);

    // Every player on A, as if A had been the only node for a while.
    ctx.progress.begin('rolling-restart: connecting to A');
    const failures: string[] = [];
    for (let i = 0; i < o.clients; i++) {
      clients.push(
        new RecoveringClient({
          id: i,
          token: connectionToken(`player-${i}`, tokenSecret),
          channel: channelName(channelOf(i)),
          channelIndex: channelOf(i),
          pool,
          events: obs,
        }),
      );
    }
    let connected = 0;
    await mapLimit(
      o.clients,
      o.connectConcurrency,
      async (i) => {
        // Retried: a loaded node may shed a few upgrades (503) while thousands connect at once.
        await (clients[i] as RecoveringClient).start(a.wsUrl, START_RETRIES);
        connected++;
        ctx.progress.update(connected / o.clients, `${fmt(connected)} / ${fmt(o.clients)} players`);
      },
      (_i, err) => failures.push((err as Error).message),
    );
    ctx.progress.end();
    if (failures.length) throw new Error(`${failures.length}/${o.clients} players failed to connect: ${failures[0]}`);
    ctx.log(`  ${fmt(o.clients)} players on A over ${o.channels} channels`);

    // From here on, time zero of the charts.
    obs.timeline.restart();
    const t0 = performance.now();
    const perNode: Record<string, Array<[number, number]>> = {};
    sampler = setInterval(() => {
      const counts: Record<string, number> = {};
      for (const label of labelOf.values()) counts[label] = 0;
      let subscribed = 0;
      for (const c of clients) {
        if (c.state !== 'subscribed') continue;
        subscribed++;
        const l = labelOf.get(c.url);
        if (l) counts[l] = (counts[l] ?? 0) + 1;
      }
      const x = round((performance.now() - t0) / 1000, 3);
      (perNode.all ??= []).push([x, subscribed]);
      for (const [l, n] of Object.entries(counts)) (perNode[l] ??= []).push([x, n]);
      const r = obs.restarts[obs.restarts.length - 1];
      ctx.progress.update(
        undefined,
        `${fmt(subscribed)} subscribed; ${fmt(obs.liveDeliveries)} live, ${fmt(obs.recoveredDeliveries)} recovered` +
          (r && obs.restarting ? `; ${r.label}: ${fmt(obs.backCount(r, clients))}/${fmt(r.affected.size)} back` : ''),
      );
    }, 250);

    publisher = new NumberedPublisher(
      fleet.apis.get('B') as ServerApi,
      o.channels,
      channelName,
      {
        sent: () => obs.timeline.count('published'),
        answered: (ok, ms) => {
          obs.timeline.count(ok ? 'accepted' : 'api failed');
          obs.timeline.sample('api', ms);
        },
      },
      MAX_API_IN_FLIGHT,
    );
    ctx.progress.begin('rolling-restart: steady');
    publisher.start(o.rate);
    await sleep(o.steadySeconds * 1000);

    /** restart drains `node` with SIGTERM and waits until its players are back elsewhere. */
    const restart = async (label: string, name: NodeName): Promise<void> => {
      const node = fleet.nodes.get(name) as RunningServer;
      ctx.progress.begin(`rolling-restart: ${label}`);
      const acc = obs.beginRestart(label, node.wsUrl, clients);
      // SIGTERM now; stop() resolves once the process has drained and exited.
      const exited = node.stop(o.drainWindowMs + 15_000);
      const unroute = setTimeout(() => pool.remove(node.wsUrl), o.probeDelayMs);
      const limitMs = o.drainWindowMs + o.slackMs + 10_000;
      const allBack = await waitFor(() => obs.backCount(acc, clients) === acc.affected.size, limitMs, 20);
      if (allBack) acc.allBackAtMs = performance.now();
      obs.restarting = false;
      acc.back = obs.backCount(acc, clients);
      for (const [other, server] of fleet.nodes) {
        if (other !== name && !server.exited()) acc.nodeCounters[other] = await readNodeCounters(server);
      }
      ctx.log(
        `  ${label}: ${fmt(obs.backCount(acc, clients))}/${fmt(acc.affected.size)} players back` +
          (allBack
            ? ` after ${fmt(((acc.allBackAtMs as number) - acc.startMs) / 1000, 1)} s`
            : ` (gave up after ${limitMs} ms)`),
      );
      await exited;
      clearTimeout(unroute);
      pool.remove(node.wsUrl);
      drainedNodes.add(name);
      // startServer's log tail ends with "[process exited: code=… signal=…]".
      acc.exit =
        /code=(\S+) signal=(\S+)\]/
          .exec(node.logTail().at(-1) ?? '')
          ?.slice(1)
          .join('/') ?? 'unknown';
    };
    const drainedNodes = new Set<NodeName>();

    await restart('drain A → B', 'A');
    if (o.restarts >= 2) {
      ctx.progress.begin("rolling-restart: starting A'");
      const a2 = await start("A'");
      labelOf.set(a2.wsUrl, "A'");
      pool.add(a2.wsUrl);
      publisher.setTarget(fleet.apis.get("A'") as ServerApi);
      await restart("drain B → A'", 'B');
    }
    ctx.progress.begin('rolling-restart: steady');
    await sleep(o.steadySeconds * 1000);
    // Players still away (e.g. backing off after refused upgrades) may take up to the SDK's
    // longest delay to return: wait for them, so that completeness covers every player that
    // comes back at all (the restart checks already fail a slow return).
    const settled = () => clients.every((c) => c.state === 'subscribed' || c.state === 'failed');
    if (!settled()) {
      const away = clients.filter((c) => c.state !== 'subscribed').length;
      ctx.log(`  waiting for ${away} players still away`);
      await waitFor(settled, SDK_MAX_RECONNECT_DELAY_MS + 15_000, 50);
    }
    await publisher.stop();
    for (const [name, server] of fleet.nodes) {
      if (!drainedNodes.has(name) && server.exited()) {
        throw new ServerRunError(`node ${name} exited during the run`, server.logTail());
      }
    }
    // The last deliveries: every player has everything accepted, or the wait ends.
    const pub = publisher;
    await waitFor(
      () => clients.every((_c, i) => (obs.trackers[i] as SeqTracker).distinct >= pub.owed(channelOf(i))),
      5000,
      20,
    );
    clearInterval(sampler);
    sampler = undefined;
    const endMs = performance.now();
    ctx.progress.end();

    const result = summarize(obs, clients, publisher, o, channelOf);
    const charts = buildCharts(obs, perNode, t0, endMs, o);
    return { result, charts };
  } finally {
    if (sampler) clearInterval(sampler);
    await publisher?.stop(2000);
    for (const c of clients) c.stop();
    for (const api of fleet.apis.values()) api.close();
    await Promise.all([...fleet.nodes.values()].map((s) => s.stop(2000)));
    const removed = await deleteKeysWithPrefix(o.redisUrl, prefix).catch((err: unknown) => {
      ctx.log(`  could not remove Redis keys ${prefix}.*: ${(err as Error).message}`);
      return 0;
    });
    ctx.log(`  removed ${removed} Redis keys under ${prefix}`);
  }
}

/** summarize builds the result from the observer's accounts. */
function summarize(
  obs: Observer,
  clients: readonly RecoveringClient[],
  pub: NumberedPublisher,
  o: RollingOptions,
  channelOf: (i: number) => number,
): RollingResult {
  const players = clients.map((c) => ({
    channel: channelOf(c.id),
    tracker: obs.trackers[c.id] as SeqTracker,
    subscribed: c.state === 'subscribed',
  }));
  const completeness = judgeCompleteness(players, pub.sent, pub.failed);
  const missingExamples: MissingExample[] = [];
  for (const [i, { channel, tracker, subscribed }] of players.entries()) {
    if (missingExamples.length >= 5) break;
    if (!subscribed) continue;
    const sent = pub.sent[channel] as number;
    const seqs = tracker.missingSeqs(sent, 20).filter((s) => !(pub.failed[channel] as Set<number>).has(s));
    if (seqs.length === 0) continue;
    missingExamples.push({
      client: i,
      channel: channelName(channel),
      missingSeqs: seqs,
      missingOffsets: seqs.map((s) => (pub.offsets[channel] as number[])[s] ?? 0),
      subscribes: obs.history[i] as SubscribeOutcome[],
    });
  }
  const restarts: RestartResult[] = obs.restarts.map((r) => ({
    label: r.label,
    affected: r.affected.size,
    drained: r.drained,
    back: r.back,
    disconnectsS: spanOf(r.disconnects, r.startMs),
    allBackS: r.allBackAtMs === undefined ? null : round((r.allBackAtMs - r.startMs) / 1000, 3),
    reconnectPeakPerSec: peakPerWindow(r.reconnects, 1000),
    expectedPerSec: round(r.affected.size / Math.max(0.001, o.drainWindowMs / 1000), 1),
    failedAttempts: r.failedAttempts,
    offlineMs: roundSummary(r.offline.summary(), 1),
    resubscribes: r.resubscribes,
    notRecovered: r.notRecovered,
    recoveredPublications: r.recoveredPublications,
    nodeCounters: r.nodeCounters,
    exit: r.exit,
  }));
  return {
    restarts,
    published: pub.published,
    apiFailures: pub.failures,
    ...(pub.lastError ? { apiLastError: pub.lastError } : {}),
    liveDeliveries: obs.liveDeliveries,
    recoveredDeliveries: obs.recoveredDeliveries,
    completeness,
    offsetRegressions: obs.offsetRegressions,
    missingExamples,
    notRecoveredExamples: obs.notRecovered,
    notSubscribedAtEnd: clients.filter((c) => c.state !== 'subscribed').length,
    gaveUp: clients.filter((c) => c.state === 'failed').length,
    failedAttemptsOutsideRestarts: obs.failedOutsideRestarts,
    closeCodes: obs.closeCodes,
    liveLatencyMs: {
      outside: roundSummary(obs.liveOutside.summary(), 2),
      during: roundSummary(obs.liveDuring.summary(), 2),
    },
    recoveredAgeMs: roundSummary(obs.recoveredAge.summary(), 1),
  };
}

/** buildCharts draws the time series of the run (x = seconds since publishing began). */
function buildCharts(
  obs: Observer,
  perNode: Record<string, Array<[number, number]>>,
  t0: number,
  endMs: number,
  o: RollingOptions,
): Chart[] {
  const tl = obs.timeline;
  const reconnects = obs.restarts.flatMap((r) => r.reconnects);
  const disconnects = obs.restarts.flatMap((r) => r.disconnects);
  return [
    {
      title: 'Subscribed players (total and per node)',
      xLabel: 's',
      yLabel: 'players',
      series: Object.entries(perNode).map(([label, points]) => ({
        label: label === 'all' ? 'all nodes' : `node ${label}`,
        points,
      })),
    },
    {
      title: 'Disconnects and reconnects per second (drain window spreads them)',
      xLabel: 's',
      yLabel: 'per second',
      series: [
        rateSeries(disconnects, t0, endMs, o.bucketMs, 'disconnects (drained node)'),
        rateSeries(reconnects, t0, endMs, o.bucketMs, 'reconnects (resubscribed)'),
        tl.rate('failed attempt', 'failed connect attempts (503, …)'),
      ],
    },
    {
      title: 'Live delivery latency (publish call → push), and the API publish call alone',
      xLabel: 's',
      yLabel: 'ms',
      series: [
        tl.quantile('live', 50, 'delivery p50'),
        tl.quantile('live', 99, 'delivery p99'),
        tl.quantile('api', 99, 'API publish call p99'),
      ],
    },
    {
      title: 'Recovered publications per second (in resubscribe replies)',
      xLabel: 's',
      yLabel: 'per second',
      series: [tl.rate('recovered', 'recovered publications')],
    },
    {
      title: 'Throughput',
      xLabel: 's',
      yLabel: 'per second',
      series: [
        tl.rate('published', 'API publications sent'),
        tl.rate('accepted', 'API publications accepted'),
        tl.rate('live', 'live deliveries'),
      ],
    },
  ];
}

/** rollingTable renders the final table. */
export function rollingTable(r: RollingResult, o: RollingOptions): string {
  const lat = (s: LatencySummary, d = 1) => `${fmt(s.p50, d)} / ${fmt(s.p99, d)} / ${fmt(s.max, d)}`;
  const col = (label: string, f: (x: RestartResult) => string): string[] => [label, ...r.restarts.map(f)];
  const perRestart = [
    ['restart', ...r.restarts.map((x) => x.label)],
    col('players on the drained node', (x) => fmt(x.affected)),
    col('disconnected with 3001', (x) => fmt(x.drained)),
    col('3001 disconnects from → to (s)', (x) =>
      x.disconnectsS ? `${fmt(x.disconnectsS.first, 2)} → ${fmt(x.disconnectsS.last, 2)}` : '-',
    ),
    col('players back on another node', (x) => `${fmt(x.back)} / ${fmt(x.affected)}`),
    col('drain start → all back and recovered (s)', (x) => (x.allBackS === null ? 'not all' : fmt(x.allBackS, 2))),
    col('peak reconnects in 1 s (players / window)', (x) => `${fmt(x.reconnectPeakPerSec)} (${fmt(x.expectedPerSec)})`),
    col('failed connect attempts', (x) => fmtCounts(x.failedAttempts)),
    col('offline per player p50 / p99 / max (ms)', (x) => lat(x.offlineMs, 0)),
    col('resubscribes / recovered: false', (x) => `${fmt(x.resubscribes)} / ${fmt(x.notRecovered)}`),
    col('publications recovered', (x) => fmt(x.recoveredPublications)),
    col('drained process exit (code/signal)', (x) => x.exit),
    col('other nodes: upgrades refused (metric)', (x) =>
      Object.entries(x.nodeCounters)
        .map(([n, c]) => `${n}: ${fmtCounts(c.rejections)}`)
        .join('; '),
    ),
  ];
  const c = r.completeness;
  const overall = [
    ['whole run', ''],
    ['API publications sent / failed', `${fmt(r.published)} / ${fmt(r.apiFailures)}`],
    [
      'deliveries owed / live / recovered',
      `${fmt(c.expected)} / ${fmt(r.liveDeliveries)} / ${fmt(r.recoveredDeliveries)}`,
    ],
    ['missing at players back / duplicates', `${fmt(c.missing)} / ${fmt(c.duplicates)}`],
    ['out of order: by offset / by seq (publisher)', `${fmt(r.offsetRegressions)} / ${fmt(c.outOfOrder)}`],
    ['players back with loss', fmt(c.clientsWithLoss)],
    ['players not subscribed at end / deliveries they missed', `${fmt(r.notSubscribedAtEnd)} / ${fmt(c.missingAway)}`],
    ['live latency outside restarts p50 / p99 / max (ms)', lat(r.liveLatencyMs.outside, 2)],
    ['live latency during restarts p50 / p99 / max (ms)', lat(r.liveLatencyMs.during, 2)],
    ['recovered publications age p50 / p99 / max (ms)', lat(r.recoveredAgeMs, 0)],
    ['close codes seen', fmtCounts(r.closeCodes)],
    ['failed connect attempts outside restarts', fmtCounts(r.failedAttemptsOutsideRestarts)],
  ];
  const lines = [
    `rolling-restart: ${fmt(o.clients)} players on node A over ${o.channels} channels (Redis engine, history ` +
      `${o.historySize}, force_recovery); ${fmt(o.rate)} API pub/s to a node staying up; drain.window ` +
      `${fmt(o.drainWindowMs / 1000, 1)} s, load balancer probe delay ${fmt(o.probeDelayMs)} ms; SDK backoff 0.5–20 s with jitter`,
    formatTable(perRestart),
    '',
    formatTable(overall),
  ];
  for (const m of r.missingExamples) {
    lines.push(
      `  MISSING: player ${m.client} on ${m.channel}: seqs ${m.missingSeqs.join(',')} (offsets ${m.missingOffsets.join(',')}); ` +
        `subscribes: ${m.subscribes
          .map((s) =>
            s.recovering
              ? `recover from ${s.sentOffset}@${s.sentEpoch} → recovered=${s.recovered}, ` +
                (s.publications ? `pubs ${s.firstOffset}..${s.lastOffset}` : 'no pubs') +
                `, offset ${s.offset}`
              : `first at offset ${s.offset}`,
          )
          .join('; ')}`,
    );
  }
  for (const n of r.notRecoveredExamples.slice(0, 5)) {
    lines.push(
      `  NOT RECOVERED: player ${n.client} on ${n.channel}: asked from ${n.sentOffset}@${n.sentEpoch}, ` +
        `reply epoch ${n.epoch} offset ${n.offset}, ${n.publications} publications`,
    );
  }
  if (r.apiLastError) lines.push(`  last API error: ${r.apiLastError}`);
  return lines.join('\n');
}
