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
import { type ConnWorkerProgress } from '../../load/conn-worker-protocol.js';
import { ServerApi } from '../../harness/api.js';
import { ConnFleet } from '../../load/conn-fleet.js';
import { OrphanGuard } from '../../harness/orphans.js';
import {
  diffKernelNetCounters,
  readCpuMicros,
  readKernelNetCounters,
  readTreeCpuMicros,
  readTreeRssBytes,
  treePids,
} from '../../harness/proc.js';
import { fmt, fmtCounts } from '../../harness/format.js';
import { type ScenarioContext, type ScenarioOutput } from '../../harness/scenario.js';
import { LatencyRecorder, roundSummary } from '../../harness/stats.js';
import { onFreshBulwark, type RunningServer } from '../../harness/targets.js';
import { Timeline } from '../../harness/timeline.js';
import { round, sleep } from '../../harness/util.js';
import { FD_RESERVED, resolveOptions } from './options.js';
import { charts, peakRate, table } from './report.js';
import { type ConnectionsScaleOptions, type ConnectionsScaleResult, type Gauges } from './types.js';
import { judgeConnectionsScale, perConnection } from './verdict.js';

export const MiB = 2 ** 20;

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
export async function measure(
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
export function unfinished(errors: Record<string, number>, inFlight: number): Record<string, number> {
  return inFlight > 0 ? { ...errors, 'not finished in the connect budget': inFlight } : errors;
}

/** sumCpu is the CPU time of processes `pids` (0 for one that is gone). */
export function sumCpu(pids: number[]): number {
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
export async function clientsPerNode(server: RunningServer): Promise<number[]> {
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
