/**
 * The connections-scale scenario (issue 6: "100,000 idle connections from one machine"; incident
 * 5: a push server hit its file-descriptor limit at 10k sockets): N idle connections from this
 * machine, each with its own HS256 JWT and one subscription, held idle, then closed.
 *
 * One process cannot hold 100,000 sockets here (the open-file limit is 20,000 per process and
 * hard), on either side:
 * - Bulwark runs as `bulwark start --workers W` on the Redis engine. Its fd protection caps each
 *   worker at floor((limit − 64) / protection.fd_headroom) connections (15,948 at 20,000 and
 *   1.25), so W is the smallest count whose caps hold N with 10 % to spare (Node's cluster
 *   hands connections to workers round-robin), and at least 2.
 * - The load generator forks P connection workers (`load/conn-worker.ts`, ≤ 18,000 sockets
 *   each) that report counts and handshake times over IPC ({@link ConnFleet}).
 * - One source address has ~28,000 ephemeral ports (32768–60999) towards the server's port, so
 *   connections bind source addresses 127.A.B.1 … 127.A.B.S (S = N / 20,000 rounded up), with
 *   A.B random per run: addresses no other run uses, so sockets left in TIME_WAIT by an
 *   earlier run (or another bench) never take this run's ports.
 *
 * Measured: connected / failed (errors by kind) / HTTP 503 refusals retried; the connect rate
 * overall and per second; the handshake time (socket opened → subscribe confirmed) p50/p99;
 * Bulwark's resident memory summed over its process tree (primary + workers) before, after the
 * connects and after the hold, and per connection; the tree's CPU time per connect; the load
 * processes' memory; and the connections closed during an idle hold (30 s by default: longer
 * than Bulwark's 25 s ping interval, so every connection must also answer a server ping).
 *
 * Default thresholds, from runs on the 2-core development machine: server RSS per connection
 * ≤ 12 KiB (100,000 measured 7.3 KiB, 20,000 6.9 KiB; the figure includes the workers' fixed
 * heap growth, ~70 MB, which is why quick mode's 5,000 connections measure ~15.5 KiB and get
 * 32 KiB); handshake p99 ≤ 1 s (with 200 connects in flight it is mostly queueing: p99 680 ms
 * at 562 connects/s on a shared machine).
 *
 * @module
 */
import { randomInt } from 'node:crypto';
import { MAX_PER_SOURCE_ADDRESS, type ConnWorkerProgress } from '../../load/conn-worker-protocol.js';
import { ServerApi } from '../../harness/api.js';
import { ConnFleet } from '../../load/conn-fleet.js';
import { OrphanGuard } from '../../harness/orphans.js';
import {
  diffKernelNetCounters,
  readCpuMicros,
  readKernelNetCounters,
  readOpenFileLimits,
  readTreeCpuMicros,
  readTreeRssBytes,
  treePids,
  type KernelNetCounters,
} from '../../harness/proc.js';
import { fmt, fmtCounts, formatTable } from '../../harness/format.js';
import {
  check,
  type Chart,
  type Check,
  type ScenarioContext,
  type ScenarioOutput,
  type Series,
} from '../../harness/scenario.js';
import { LatencyRecorder, roundSummary, type LatencySummary } from '../../harness/stats.js';
import { onFreshBulwark, type RunningServer } from '../../harness/targets.js';
import { Timeline } from '../../harness/timeline.js';
import { round, sleep } from '../../harness/util.js';
import { flags } from './options.js';

/** Bulwark's default protection.fd_headroom: file descriptors reserved per connection. */
const DEFAULT_FD_HEADROOM = 1.25;
/** File descriptors Bulwark keeps for itself (logs, listener, engine connections). */
const FD_RESERVED = 64;
/** Share of a worker's cap the workers are sized to fill (round-robin is even, not exact). */
const WORKER_FILL = 0.9;
/** Most sockets one load process is given (its open-file limit is 20,000, its own fds aside). */
const MAX_SOCKETS_PER_LOAD_PROCESS = 18_000;
/**
 * Connections per source address by default: within the ~28,000 ephemeral ports a kernel-chosen
 * port would have (the scenario assigns ports itself, up to MAX_PER_SOURCE_ADDRESS, but
 * addresses cost nothing).
 */
const CONNECTIONS_PER_SOURCE_IP = 20_000;
/** Bulwark's default client.ping_interval, seconds (the scenario does not change it). */
const PING_INTERVAL_SECONDS = 25;

/** FdCapacity is how many connections one Bulwark worker may hold, and the workers N needs. */
export interface FdCapacity {
  /** Open-file limit of the server processes (Node raises the soft limit to the hard one). */
  openFileLimit: number;
  fdHeadroom: number;
  /** floor((openFileLimit − 64) / fdHeadroom): the connection limit Bulwark sets itself. */
  perWorkerCap: number;
  /** Workers whose caps hold the connections with 10 % to spare. */
  workersNeeded: number;
}

/**
 * fdCapacity computes Bulwark's per-worker connection cap from the open-file limit (as the
 * server does with client.connection_limit 0) and the workers `connections` need.
 */
export function fdCapacity(connections: number, openFileLimit: number, fdHeadroom = DEFAULT_FD_HEADROOM): FdCapacity {
  const perWorkerCap = Number.isFinite(openFileLimit)
    ? Math.max(0, Math.floor((openFileLimit - FD_RESERVED) / fdHeadroom))
    : Number.POSITIVE_INFINITY;
  const workersNeeded = perWorkerCap > 0 ? Math.max(1, Math.ceil(connections / (perWorkerCap * WORKER_FILL))) : NaN;
  return { openFileLimit, fdHeadroom, perWorkerCap, workersNeeded };
}

/** loadProcessesFor is how many load processes hold `connections` at ≤ 18,000 sockets each (≥ 2). */
export function loadProcessesFor(connections: number): number {
  return Math.max(2, Math.ceil(connections / MAX_SOCKETS_PER_LOAD_PROCESS));
}

/** sourceIpsFor is how many source addresses `connections` need (≤ 20,000 each). */
export function sourceIpsFor(connections: number): number {
  return Math.max(1, Math.ceil(connections / CONNECTIONS_PER_SOURCE_IP));
}

/** peakRate is the highest y of a rate series (0 when empty). */
export function peakRate(series: Series): number {
  return series.points.reduce((max, [, y]) => Math.max(max, y), 0);
}

/** perConnection is (after − before) / connections, rounded; NaN without connections. */
export function perConnection(before: number, after: number, connections: number): number {
  return connections > 0 ? Math.round((after - before) / connections) : Number.NaN;
}

/** ConnectionsScaleOptions size the scenario. */
export interface ConnectionsScaleOptions {
  connections: number;
  workers: number;
  loadProcesses: number;
  sourceIps: number;
  /** First three octets of the source addresses, e.g. "127.31.7". */
  sourcePrefix: string;
  /** Connects in flight at once, all load processes together. */
  concurrency: number;
  channels: number;
  holdSeconds: number;
  /** Idle time before the baseline reading, and after the connects before the next one, ms. */
  baselineMs: number;
  settleMs: number;
  /** Longest wait for each of handshake, connect reply and subscribe reply, ms. */
  timeoutMs: number;
  /** Retries of a connection refused with HTTP 503. */
  retries: number;
  /** Longest connect phase, seconds: then the run goes on with what connected. */
  connectBudgetSeconds: number;
  redis: string;
  redisPrefix: string;
  capacity: FdCapacity;
  limits: ConnectionsScaleLimits;
}

/** ConnectionsScaleLimits are the pass/fail thresholds. */
export interface ConnectionsScaleLimits {
  /** Most server RSS per idle connection, KiB. */
  rssPerConnectionKiB: number;
  /** Highest handshake p99, ms. */
  handshakeP99Ms: number;
}

/** ConnectionsScaleResult is everything one run measured. */
export interface ConnectionsScaleResult {
  requested: number;
  connected: number;
  failed: number;
  /** HTTP 503 refusals (admission) that were retried. */
  rejectedRetried: number;
  /** Final errors by kind. */
  errors: Record<string, number>;
  /** Load processes that died before being told to stop. */
  loadProcessDeaths: string[];
  connectSeconds: number;
  /** Connects per second over the whole connect phase. */
  connectRate: number;
  /** Highest connects in one second. */
  peakConnectRate: number;
  /** Socket opened → subscribe confirmed, per connection (successful attempt only). */
  handshakeMs: LatencySummary;
  server: {
    processes: number;
    /** Clients per worker from the info API at the end of the hold. */
    clientsPerWorker: number[];
    rssBeforeBytes: number;
    rssAfterConnectBytes: number;
    rssAfterHoldBytes: number;
    /** (RSS after the hold − RSS before) / connected. */
    rssPerConnectionBytes: number;
    cpuMicrosPerConnect: number;
    /** The primary's share: it accepts every connection and hands it to a worker (round-robin). */
    primaryCpuMicrosPerConnect: number;
    /** Tree CPU over the connect phase, % of one core. */
    cpuPercent: number;
    /** Tree CPU over the idle hold, % of one core: what holding the connections costs (pings). */
    holdCpuPercent: number;
  };
  loadgen: {
    processes: number;
    /** All load processes' RSS before connecting. */
    rssBeforeBytes: number;
    /** Each load process's RSS at the end of the hold. */
    rssBytes: number[];
    /** (RSS after the hold − RSS before) / connected, all load processes. */
    rssPerConnectionBytes: number;
    cpuMicrosPerConnect: number;
  };
  hold: {
    seconds: number;
    /** Established connections closed before the hold began (during connects and settle). */
    closedBefore: number;
    openAtStart: number;
    openAtEnd: number;
    closedDuring: number;
    closeCodes: Record<string, number>;
    /** Connections that answered at least one server ping / pings answered. */
    pinged: number;
    pings: number;
  };
  teardown: {
    /** Time for the load processes to destroy every socket and exit. */
    closeMs: number;
    killedLoadProcesses: number;
    /** Server processes still running after the server was stopped, SIGKILLed. */
    killedServerProcesses: number;
  };
  kernel: KernelNetCounters;
}

/**
 * judgeConnectionsScale turns a result into the verdicts: every connection established, none
 * closed during the idle hold, server memory per connection and handshake p99 within the
 * limits, and — when the hold outlasts the server's ping interval — every connection answered
 * a ping (it really is alive, not a half-open socket).
 */
export function judgeConnectionsScale(
  r: ConnectionsScaleResult,
  limits: ConnectionsScaleLimits,
  pingIntervalSeconds = PING_INTERVAL_SECONDS,
): Check[] {
  const checks = [
    check('connections established', r.connected, '==', r.requested, 'conns'),
    check(
      'established connections closed before the end of the hold',
      r.hold.closedDuring + r.hold.closedBefore,
      '==',
      0,
      'conns',
    ),
    check(
      'server RSS per idle connection (process tree)',
      round(r.server.rssPerConnectionBytes / 1024, 2),
      '<=',
      limits.rssPerConnectionKiB,
      'KiB',
    ),
    check('handshake p99 (open → subscribed)', r.handshakeMs.p99, '<=', limits.handshakeP99Ms, 'ms'),
  ];
  if (r.hold.seconds >= pingIntervalSeconds + 3) {
    checks.push(check('connections that answered a server ping', r.hold.pinged, '==', r.connected, 'conns'));
  }
  return checks;
}

/** Gauges sampled once a second for the charts (x = seconds since the connects began). */
interface Gauges {
  serverRssMiB: Array<[number, number]>;
  loadRssMiB: Array<[number, number]>;
  serverCpuPercent: Array<[number, number]>;
}

const MiB = 2 ** 20;

function resolveOptions(ctx: ScenarioContext): ConnectionsScaleOptions {
  const f = ctx.flags;
  const quick = ctx.quick;
  const connections = f.int(flags.connections);
  const userProtection = ctx.bulwark.bulwarkConfig?.protection as { fd_headroom?: unknown } | undefined;
  const headroom = typeof userProtection?.fd_headroom === 'number' ? userProtection.fd_headroom : DEFAULT_FD_HEADROOM;
  const limit = readOpenFileLimits()?.hard ?? Number.POSITIVE_INFINITY;
  const capacity = fdCapacity(connections, limit, headroom);
  const loadProcesses = f.int(flags.loadProcesses, loadProcessesFor(connections));
  const ownLimit = readOpenFileLimits()?.soft ?? Number.POSITIVE_INFINITY;
  if (Math.ceil(connections / loadProcesses) > Math.min(MAX_SOCKETS_PER_LOAD_PROCESS, ownLimit - 200)) {
    throw new Error(
      `--load-processes ${loadProcesses}: ${Math.ceil(connections / loadProcesses)} sockets per process is more ` +
        `than one process may hold (${MAX_SOCKETS_PER_LOAD_PROCESS}; open-file limit ${ownLimit}); ` +
        `use at least ${loadProcessesFor(connections)}`,
    );
  }
  const sourceIps = f.int(flags.sourceIps, sourceIpsFor(connections));
  if (sourceIps > 254) throw new Error('--source-ips must be ≤ 254');
  if (Math.ceil(connections / sourceIps) > MAX_PER_SOURCE_ADDRESS) {
    throw new Error(`--source-ips ${sourceIps}: more than ${MAX_PER_SOURCE_ADDRESS} connections per address`);
  }
  const sourcePrefix = f.str(flags.sourcePrefix, `127.${1 + randomInt(254)}.${randomInt(256)}`);
  const octets = /^127\.(\d{1,3})\.(\d{1,3})$/.exec(sourcePrefix);
  if (!octets || Number(octets[1]) > 255 || Number(octets[2]) > 255) {
    throw new Error('--source-prefix must be 127.A.B with A, B in 0..255');
  }
  return {
    connections,
    workers: f.int(flags.workers, Math.max(2, capacity.workersNeeded)),
    loadProcesses,
    sourceIps,
    sourcePrefix,
    concurrency: f.int(flags.concurrency),
    channels: f.int(flags.channels),
    holdSeconds: f.num(flags.hold),
    baselineMs: quick ? 500 : 2000,
    settleMs: f.int(flags.settle),
    timeoutMs: 15_000,
    retries: f.int(flags.retries),
    connectBudgetSeconds: f.num(flags.connectBudget),
    redis: f.str(flags.redisUrl),
    redisPrefix: `bench-conn-scale-${randomInt(2 ** 32).toString(36)}`,
    capacity,
    limits: {
      rssPerConnectionKiB: f.num(flags.rssLimit),
      handshakeP99Ms: f.num(flags.handshakeP99),
    },
  };
}

export async function runConnectionsScale(ctx: ScenarioContext): Promise<ScenarioOutput> {
  const o = resolveOptions(ctx);
  const cap = o.capacity;
  ctx.log(
    `connections-scale: open-file limit ${fmt(cap.openFileLimit)} → each Bulwark worker holds ≤ ` +
      `${fmt(cap.perWorkerCap)} connections (floor((${fmt(cap.openFileLimit)} − ${FD_RESERVED}) / fd_headroom ` +
      `${cap.fdHeadroom})); ${fmt(o.connections)} connections need ≥ ${cap.workersNeeded} worker(s) ` +
      `(with 10 % to spare); running ${o.workers} workers, ${o.loadProcesses} load processes ` +
      `(≤ ${fmt(Math.ceil(o.connections / o.loadProcesses))} sockets each), source addresses ` +
      `${o.sourcePrefix}.1–${o.sourceIps}`,
  );
  if (o.workers * cap.perWorkerCap < o.connections) {
    ctx.log(`  warning: ${o.workers} workers hold at most ${fmt(o.workers * cap.perWorkerCap)} connections`);
  }
  // Workers need the Redis engine. The bench namespace keeps no history and no presence, so
  // the run leaves no keys in Redis (pub/sub only): nothing to clean up under the prefix.
  const config = { engine: { type: 'redis', redis: { address: [o.redis], prefix: o.redisPrefix } } };
  const start = { ...ctx.bulwark, workers: o.workers, readyTimeoutMs: 60_000 };
  let guard: OrphanGuard | undefined;
  let measured: Awaited<ReturnType<typeof measure>>;
  let killed = 0;
  try {
    measured = await onFreshBulwark(start, config, 'connections-scale', ctx.log, (server) => {
      guard = new OrphanGuard(server.pid);
      return measure(ctx, server, o);
    });
  } finally {
    // Workers busy closing thousands of sockets may outlive the primary: wait, then kill.
    killed = (await guard?.release()) ?? 0;
    if (killed > 0) ctx.log(`connections-scale: ${killed} server process(es) outlived the stop; killed`);
  }
  const { result, timeline, gauges } = measured;
  result.teardown.killedServerProcesses = killed;
  const checks = judgeConnectionsScale(result, o.limits);
  return {
    options: o,
    results: result,
    checks,
    charts: charts(timeline, gauges),
    table: table(o, result),
  };
}

/** measure runs the connects, the hold and the teardown against a started Bulwark. */
async function measure(
  ctx: ScenarioContext,
  server: RunningServer,
  o: ConnectionsScaleOptions,
): Promise<{ result: ConnectionsScaleResult; timeline: Timeline; gauges: Gauges }> {
  const n = o.connections;
  const serverPids = treePids(server.pid).length;
  const recorder = new LatencyRecorder();
  const timeline = new Timeline(1000);
  const gauges: Gauges = { serverRssMiB: [], loadRssMiB: [], serverCpuPercent: [] };
  await sleep(o.baselineMs);
  const rssBefore = readTreeRssBytes(server.pid);
  const net0 = readKernelNetCounters();

  const onProgress = (p: ConnWorkerProgress) => {
    const now = performance.now();
    timeline.count('connected', p.connected, now);
    timeline.count('failed', p.failed, now);
    timeline.count('rejected', p.rejected, now);
    for (const v of p.handshakeMs) {
      recorder.add(v);
      timeline.sample('handshake', v, now);
    }
  };
  ctx.progress.begin('connections-scale: starting load processes');
  const fleet = await ConnFleet.start(
    {
      processes: o.loadProcesses,
      total: n,
      url: server.wsUrl,
      tokenSecret: server.tokenSecret,
      concurrency: o.concurrency,
      channels: o.channels,
      sourcePrefix: o.sourcePrefix,
      sourceIps: o.sourceIps,
      timeoutMs: o.timeoutMs,
      retries: o.retries,
    },
    onProgress,
  );
  let sampler: NodeJS.Timeout | undefined;
  try {
    const t0 = performance.now();
    timeline.restart(t0);
    const cpu0 = readTreeCpuMicros(server.pid);
    const primaryCpu0 = readCpuMicros(server.pid);
    const loadCpu0 = sumCpu(fleet.pids);
    // The load processes' own memory (node, ws, code) before any socket: subtracted per connection.
    const loadRssBefore = fleet.rssBytes().reduce((a, b) => a + b, 0);
    let lastCpu = cpu0;
    let lastAt = t0;
    sampler = setInterval(() => {
      try {
        const now = performance.now();
        const x = round((now - t0) / 1000, 1);
        const cpu = readTreeCpuMicros(server.pid);
        gauges.serverRssMiB.push([x, round(readTreeRssBytes(server.pid) / MiB, 1)]);
        gauges.loadRssMiB.push([x, round(fleet.rssBytes().reduce((a, b) => a + b, 0) / MiB, 1)]);
        gauges.serverCpuPercent.push([x, round(((cpu - lastCpu) / ((now - lastAt) * 1000)) * 100, 1)]);
        lastCpu = cpu;
        lastAt = now;
      } catch {
        // the server exited: the run reports it
      }
    }, 1000);

    ctx.progress.begin('connections-scale: connecting');
    const budgetEnd = t0 + o.connectBudgetSeconds * 1000;
    let finished = false;
    void fleet.done.then(() => (finished = true));
    while (!finished) {
      await Promise.race([fleet.done, sleep(250)]);
      const secs = (performance.now() - t0) / 1000;
      ctx.progress.update(
        (fleet.connected + fleet.failed) / n,
        `${fmt(fleet.connected)}/${fmt(n)} connected, ${fmt(fleet.failed)} failed, ` +
          `${fmt(fleet.rejected)} refused (503, retried), ${fmt(fleet.connected / Math.max(secs, 0.001))}/s`,
      );
      if (!finished && performance.now() >= budgetEnd) {
        ctx.log(`connections-scale: connect budget of ${o.connectBudgetSeconds} s spent; going on with what connected`);
        break;
      }
    }
    const t1 = performance.now();
    const cpu1 = readTreeCpuMicros(server.pid);
    const primaryCpu1 = readCpuMicros(server.pid);
    const loadCpu1 = sumCpu(fleet.pids);
    const kernel = diffKernelNetCounters(net0, readKernelNetCounters());
    const connected = fleet.connected;
    ctx.log(
      `connections-scale: ${fmt(connected)}/${fmt(n)} connected in ${((t1 - t0) / 1000).toFixed(1)} s` +
        (fleet.failed ? `, ${fmt(fleet.failed)} failed (${fmtCounts(fleet.errors)})` : '') +
        `; settling ${o.settleMs} ms`,
    );
    for (const d of fleet.deaths) ctx.log(`  ${d}`);
    await sleep(o.settleMs);
    const rssAfterConnect = readTreeRssBytes(server.pid);

    ctx.progress.begin(`connections-scale: idle hold ${o.holdSeconds} s`);
    const s0 = await fleet.snapshot();
    const h0 = performance.now();
    const holdCpu0 = readTreeCpuMicros(server.pid);
    while (performance.now() - h0 < o.holdSeconds * 1000) {
      await sleep(Math.min(250, Math.max(0, o.holdSeconds * 1000 - (performance.now() - h0))));
      const rss = gauges.serverRssMiB[gauges.serverRssMiB.length - 1]?.[1] ?? 0;
      ctx.progress.update((performance.now() - h0) / (o.holdSeconds * 1000), `server RSS ${fmt(rss)} MiB`);
    }
    const holdCpu = readTreeCpuMicros(server.pid) - holdCpu0;
    const holdWallMicros = (performance.now() - h0) * 1000;
    const s1 = await fleet.snapshot();
    // Extend the connection series over the hold (no new connects), so they span the memory chart.
    timeline.count('connected', 0);
    const rssAfterHold = readTreeRssBytes(server.pid);
    const loadRss = fleet.rssBytes();
    const clientsPerWorker = await clientsPerNode(server);
    ctx.progress.end();
    ctx.log(
      `connections-scale: after the hold ${fmt(s1.open)} open, ${fmt(s1.closed - s0.closed)} closed during it; ` +
        `closing every connection`,
    );
    clearInterval(sampler);
    sampler = undefined;
    const teardown = await fleet.close();
    ctx.log(`connections-scale: load processes closed their sockets and exited in ${fmt(teardown.ms)} ms`);

    const connectSeconds = (t1 - t0) / 1000;
    const result: ConnectionsScaleResult = {
      requested: n,
      connected,
      failed: n - connected,
      rejectedRetried: fleet.rejected,
      errors: unfinished(fleet.errors, n - connected - fleet.failed),
      loadProcessDeaths: fleet.deaths,
      connectSeconds: round(connectSeconds, 2),
      connectRate: round(connected / connectSeconds, 0),
      peakConnectRate: peakRate(timeline.rate('connected')),
      handshakeMs: roundSummary(recorder.summary(), 1),
      server: {
        processes: serverPids,
        clientsPerWorker,
        rssBeforeBytes: rssBefore,
        rssAfterConnectBytes: rssAfterConnect,
        rssAfterHoldBytes: rssAfterHold,
        rssPerConnectionBytes: perConnection(rssBefore, rssAfterHold, connected),
        cpuMicrosPerConnect: round(connected > 0 ? (cpu1 - cpu0) / connected : Number.NaN, 1),
        primaryCpuMicrosPerConnect: round(connected > 0 ? (primaryCpu1 - primaryCpu0) / connected : Number.NaN, 1),
        cpuPercent: round(((cpu1 - cpu0) / ((t1 - t0) * 1000)) * 100, 1),
        holdCpuPercent: round((holdCpu / holdWallMicros) * 100, 1),
      },
      loadgen: {
        processes: o.loadProcesses,
        rssBytes: loadRss,
        rssBeforeBytes: loadRssBefore,
        rssPerConnectionBytes: perConnection(
          loadRssBefore,
          loadRss.reduce((a, b) => a + b, 0),
          connected,
        ),
        cpuMicrosPerConnect: round(connected > 0 ? (loadCpu1 - loadCpu0) / connected : Number.NaN, 1),
      },
      hold: {
        seconds: o.holdSeconds,
        closedBefore: s0.closed,
        openAtStart: s0.open,
        openAtEnd: s1.open,
        closedDuring: s1.closed - s0.closed,
        closeCodes: s1.closeCodes,
        pinged: s1.pinged,
        pings: s1.pings,
      },
      teardown: { closeMs: Math.round(teardown.ms), killedLoadProcesses: teardown.killed, killedServerProcesses: 0 },
      kernel,
    };
    return { result, timeline, gauges };
  } finally {
    if (sampler) clearInterval(sampler);
    fleet.kill();
  }
}

/** unfinished adds the connections still in flight when the connect budget ran out to the tally. */
function unfinished(errors: Record<string, number>, inFlight: number): Record<string, number> {
  return inFlight > 0 ? { ...errors, 'not finished in the connect budget': inFlight } : errors;
}

/** sumCpu is the CPU time of processes `pids` (0 for one that is gone). */
function sumCpu(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      total += readCpuMicros(pid);
    } catch {
      // exited
    }
  }
  return total;
}

/** clientsPerNode reads each worker's client count from the info API (empty on failure). */
async function clientsPerNode(server: RunningServer): Promise<number[]> {
  const api = new ServerApi(server);
  try {
    const info = (await api.call('info', '{}')) as { nodes?: Array<{ num_clients?: number }> };
    return (info.nodes ?? []).map((x) => x.num_clients ?? 0).sort((a, b) => b - a);
  } catch {
    return [];
  } finally {
    api.close();
  }
}

function charts(t: Timeline, g: Gauges): Chart[] {
  return [
    {
      title: 'Connections established over time',
      xLabel: 's since the connects began',
      yLabel: 'connections',
      series: [t.total('connected', 'established'), t.total('failed', 'failed')],
    },
    {
      title: 'Connect rate over time',
      xLabel: 's since the connects began',
      yLabel: 'per second',
      series: [
        t.rate('connected', 'connects/s'),
        t.rate('rejected', '503 refusals/s (retried)'),
        t.rate('failed', 'failures/s'),
      ],
    },
    {
      title: 'Handshake time (open → subscribed) over time',
      xLabel: 's since the connects began',
      yLabel: 'ms',
      series: [t.quantile('handshake', 50, 'p50'), t.quantile('handshake', 99, 'p99')],
    },
    {
      title: 'Resident memory over time',
      xLabel: 's since the connects began',
      yLabel: 'MiB',
      series: [
        { label: 'Bulwark (primary + workers)', points: g.serverRssMiB },
        { label: 'load processes', points: g.loadRssMiB },
      ],
    },
    {
      title: 'Bulwark CPU over time (primary + workers)',
      xLabel: 's since the connects began',
      yLabel: '% of one core',
      series: [{ label: 'CPU', points: g.serverCpuPercent }],
    },
  ];
}

const kib = (bytes: number) => `${fmt(bytes / 1024, 1)} KiB`;
const mib = (bytes: number) => `${fmt(bytes / MiB, 0)} MiB`;

function table(o: ConnectionsScaleOptions, r: ConnectionsScaleResult): string {
  const cap = o.capacity;
  const loadTotal = r.loadgen.rssBytes.reduce((a, b) => a + b, 0);
  const rows: string[][] = [
    ['', ''],
    [
      'setup',
      `Bulwark --workers ${o.workers} (Redis engine), ${r.server.processes} processes; ` +
        `${o.loadProcesses} load processes; sources ${o.sourcePrefix}.1–${o.sourceIps}`,
    ],
    [
      'fd capacity',
      `limit ${fmt(cap.openFileLimit)} → ≤ ${fmt(cap.perWorkerCap)} conns/worker (fd_headroom ${cap.fdHeadroom}); ` +
        `${fmt(o.connections)} need ≥ ${cap.workersNeeded} workers`,
    ],
    [
      'clients per worker',
      r.server.clientsPerWorker.length ? r.server.clientsPerWorker.map((c) => fmt(c)).join(', ') : '—',
    ],
    ['connected / requested', `${fmt(r.connected)} / ${fmt(r.requested)}`],
    ['failed', r.failed ? `${fmt(r.failed)} (${fmtCounts(r.errors)})` : '0'],
    ['503 refusals retried', fmt(r.rejectedRetried)],
    ['connect time', `${fmt(r.connectSeconds, 1)} s`],
    ['connect rate (overall / peak 1 s)', `${fmt(r.connectRate)}/s / ${fmt(r.peakConnectRate)}/s`],
    [
      'handshake p50 / p99 / max',
      `${fmt(r.handshakeMs.p50, 1)} / ${fmt(r.handshakeMs.p99, 1)} / ${fmt(r.handshakeMs.max, 1)} ms`,
    ],
    [
      'server RSS before / connected / after hold',
      `${mib(r.server.rssBeforeBytes)} / ${mib(r.server.rssAfterConnectBytes)} / ${mib(r.server.rssAfterHoldBytes)}`,
    ],
    ['server RSS per connection', kib(r.server.rssPerConnectionBytes)],
    [
      'server CPU per connect (primary share)',
      `${fmt(r.server.cpuMicrosPerConnect)} µs (${fmt(r.server.primaryCpuMicrosPerConnect)} µs); ` +
        `${fmt(r.server.cpuPercent)} % of a core`,
    ],
    [
      'load processes RSS (total / per conn)',
      `${mib(loadTotal)} (${r.loadgen.rssBytes.map((b) => fmt(b / MiB)).join(' + ')} MiB) / ${kib(r.loadgen.rssPerConnectionBytes)}`,
    ],
    ['load CPU per connect', `${fmt(r.loadgen.cpuMicrosPerConnect)} µs`],
    [
      `idle hold ${fmt(r.hold.seconds)} s: open at start / end`,
      `${fmt(r.hold.openAtStart)} / ${fmt(r.hold.openAtEnd)}; server CPU ${fmt(r.server.holdCpuPercent)} % of a core`,
    ],
    [
      'closed before / during the hold',
      `${fmt(r.hold.closedBefore)} / ${fmt(r.hold.closedDuring)}` +
        (Object.keys(r.hold.closeCodes).length ? ` (codes ${fmtCounts(r.hold.closeCodes)})` : ''),
    ],
    ['answered a server ping', `${fmt(r.hold.pinged)} connections (${fmt(r.hold.pings)} pings)`],
    ['teardown (close all, exit)', `${fmt(r.teardown.closeMs)} ms`],
    ['kernel: listen drops / retrans', `${fmt(r.kernel.listenDrops)} / ${fmt(r.kernel.tcpRetransSegs)}`],
  ];
  if (r.loadProcessDeaths.length) rows.push(['load processes died', r.loadProcessDeaths.join('; ')]);
  rows[0] = ['connections-scale', `${fmt(o.connections)} idle connections, JWT + 1 subscription each`];
  return formatTable(rows);
}
