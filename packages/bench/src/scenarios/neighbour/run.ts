/**
 * The neighbour scenario (issue 12 item 5: load shedding fired on an idle node because another
 * process had the CPU). A nearly idle Bulwark shares its core with CPU-hungry neighbours — N
 * busy-loop processes pinned to the server's CPU (harness/cpu-hogs.ts) — while a prober loads it
 * as a demo page or a few arriving players would: at a modest rate, each probe opens a
 * WebSocket, connects, subscribes and reads history (probe.ts).
 *
 * Two variants, each on a fresh server with its own hogs, with the same shedding thresholds
 * (`--connect-lag`, `--read-lag`; the server defaults unless given):
 * - default: a shedding level needs the loop busy with its own work beside the lag
 *   (protection.shedding.utilization 0.8 and min_cpu 0.25) — the node's own overload, not a
 *   neighbour's;
 * - lag-only: `protection.shedding.utilization: 0` and `min_cpu: 0`, the lag alone decides (the old behaviour).
 *
 * Each variant: history filled through the API, a short warm-up of probes without neighbours
 * (not measured), then the hogs start and, once they spin, the window: probes for `--duration`
 * seconds. Measured per variant: attempts, refused upgrades (503), refused reads (111), other
 * failures, handshake and history latency, the server's CPU (/proc) and lag p99 (/metrics, each
 * second), the hogs' CPU, and from /metrics the change over the window of
 * bulwark_shedding_started_total and bulwark_rejections_total{reason=~"overload.*"}.
 *
 * Bulwark only: the reference servers have no shedding.
 *
 * @module
 */
import type { Log } from '../../harness/scenario.js';
import { fetchMetrics, metricSeries, ServerApi } from '../../harness/api.js';
import { startHogs, type CpuHogs } from '../../harness/cpu-hogs.js';
import { watchCpu } from '../../harness/proc.js';
import { type Progress } from '../../harness/progress.js';
import { type ScenarioReport } from '../../harness/report.js';
import { ServerWatch } from '../../harness/server-watch.js';
import { percentile, roundSummary } from '../../harness/stats.js';
import {
  bulwarkAvailable,
  onFreshBulwark,
  ServerRunError,
  type RunningServer,
  type StartOptions,
} from '../../harness/targets.js';
import { round, sleep, tally } from '../../harness/util.js';
import { Prober } from './probe.js';
import type { NeighbourOptions, NeighbourResult, NeighbourVariant, SheddingLogLine, VariantKey } from './types.js';
import { judgeNeighbour } from './verdict.js';

/** The demo page's channel: a namespace keeping history, readable and subscribable by clients. */
export const DEMO_NAMESPACE = 'demo';
export const DEMO_CHANNEL = `${DEMO_NAMESPACE}:lobby`;

/** VariantPlan is one variant to run: its shedding settings. */
export interface VariantPlan {
  key: VariantKey;
  label: string;
  shedding: Record<string, unknown>;
}

/** variantPlans are the two variants, with the thresholds of `o`. */
export function variantPlans(o: Pick<NeighbourOptions, 'connectLag' | 'readLag'>): VariantPlan[] {
  const lags = { connect_lag: o.connectLag, read_lag: o.readLag };
  return [
    { key: 'default', label: 'default (lag and a busy loop)', shedding: { ...lags } },
    {
      key: 'lag-only',
      label: 'lag alone (utilization 0, min_cpu 0)',
      shedding: { ...lags, utilization: 0, min_cpu: 0 },
    },
  ];
}

/** serverConfig is a variant's Bulwark config, merged over the bench's own. */
export function serverConfig(o: Pick<NeighbourOptions, 'historySize'>, plan: VariantPlan): Record<string, unknown> {
  return {
    channel: {
      namespaces: [
        {
          name: DEMO_NAMESPACE,
          history_size: o.historySize,
          history_ttl: '300s',
          allow_subscribe_for_client: true,
          allow_history_for_client: true,
        },
      ],
    },
    protection: { shedding: plan.shedding },
  };
}

/**
 * counterDelta is how much each series of counter `name` (keyed by `label`) grew between two
 * /metrics texts, for the keys `keep` accepts; series that did not grow are left out.
 */
export function counterDelta(
  before: string,
  after: string,
  name: string,
  label: string,
  keep: (key: string) => boolean = () => true,
): Record<string, number> {
  const b = metricSeries(before, name, label);
  const out: Record<string, number> = {};
  for (const [key, v] of metricSeries(after, name, label)) {
    const d = v - (b.get(key) ?? 0);
    if (keep(key) && d > 0) out[key] = d;
  }
  return out;
}

/** sheddingLogLines picks the server's `load shedding…` lines (pino JSON) out of its output. */
export function sheddingLogLines(lines: readonly string[]): SheddingLogLine[] {
  const out: SheddingLogLine[] = [];
  for (const line of lines) {
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (typeof o.msg !== 'string' || !o.msg.startsWith('load shedding')) continue;
    const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
    out.push({
      msg: o.msg,
      level: typeof o.shedLevel === 'string' ? o.shedLevel : undefined,
      lagMs: num(o.lagMs),
      utilization: num(o.utilization),
    });
  }
  return out;
}

/** VariantTrace is what a variant's charts draw: the probes' timeline and the server's readings. */
export interface VariantTrace {
  key: VariantKey;
  label: string;
  prober: Prober;
  lagMs: Array<[number, number]>;
  cpuPercent: Array<[number, number]>;
}

/** runVariant runs one variant on `server`. */
export async function runVariant(
  server: RunningServer,
  o: NeighbourOptions,
  plan: VariantPlan,
  log: Log,
  progress?: Progress,
): Promise<{ variant: NeighbourVariant; trace: VariantTrace }> {
  const api = new ServerApi(server);
  try {
    for (let i = 0; i < o.historySize; i++) await api.publish(DEMO_CHANNEL, `{"n":${i},"text":"welcome"}`);
  } finally {
    api.close();
  }
  const proberOpts = { channel: DEMO_CHANNEL, historyLimit: o.historySize, replyTimeoutMs: o.replyTimeoutMs };
  const warm = new Prober(server, { ...proberOpts, userPrefix: `warm-${plan.key}` });
  await warm.run(o.rate, o.warmupSeconds, 3000);
  warm.terminate();

  const before = await fetchMetrics(server);
  let hogs: CpuHogs | undefined;
  let watch: ServerWatch | undefined;
  const prober = new Prober(server, { ...proberOpts, userPrefix: `player-${plan.key}` });
  try {
    if (o.hogs > 0) {
      hogs = await startHogs({
        count: o.hogs,
        cpu: o.hogsCpu ?? undefined,
        maxSeconds: o.seconds + (o.settleMs + o.settleProbesMs) / 1000 + 30,
      });
      log(`  ${o.hogs} CPU hogs running${hogs.pinnedCpu === undefined ? '' : ` on CPU ${hogs.pinnedCpu}`}`);
    }
    await sleep(o.settleMs);
    const t0 = performance.now();
    prober.tl.restart(t0);
    watch = new ServerWatch(server, t0);
    watch.start();
    const cpu = watchCpu(server.pid);
    const hogCpu0 = hogs?.cpuMicros() ?? 0;
    progress?.begin(`neighbour / ${plan.key}`);
    await prober.run(o.rate, o.seconds, o.settleProbesMs, (started, total) =>
      progress?.update(
        started / total,
        `${prober.attempts} probes, ${prober.refusedUpgrades} upgrades and ${prober.refusedReads} reads refused`,
      ),
    );
    progress?.end();
    const reading = cpu();
    const wallMicros = (performance.now() - t0) * 1000;
    const hogsCpuPercent = hogs ? round(((hogs.cpuMicros() - hogCpu0) / wallMicros) * 100, 1) : 0;
    const hogsRunning = hogs?.running ?? 0;
    await watch.stop();
    await hogs?.stop();
    const after = await fetchMetrics(server);
    const lags = watch.lagMs.map(([, y]) => y).sort((a, b) => a - b);
    const variant: NeighbourVariant = {
      key: plan.key,
      label: plan.label,
      shedding: plan.shedding,
      attempts: prober.attempts,
      completed: prober.completed,
      refusedUpgrades: prober.refusedUpgrades,
      refusedByStatus: tally(prober.refusedByStatus),
      refusedReads: prober.refusedReads,
      failed: prober.failed + prober.unfinished,
      failedByKind: tally([...prober.failedByKind, ...Array<string>(prober.unfinished).fill('unfinished')]),
      firstFailure: prober.firstFailure,
      handshakeMs: roundSummary(prober.handshake.summary(), 2),
      historyMs: roundSummary(prober.history.summary(), 2),
      sheddingStarted: counterDelta(before, after, 'bulwark_shedding_started_total', 'level'),
      overloadRejections: counterDelta(before, after, 'bulwark_rejections_total', 'reason', (r) =>
        r.startsWith('overload'),
      ),
      sheddingLog: sheddingLogLines(server.logTail()),
      serverLagP99Ms: {
        max: lags.length ? round(lags[lags.length - 1] as number, 2) : Number.NaN,
        median: round(percentile(lags, 50), 2),
      },
      hogsCpuPercent,
      hogsRunning,
      ...reading,
    };
    return {
      variant,
      trace: { key: plan.key, label: plan.label, prober, lagMs: watch.lagMs, cpuPercent: watch.cpuPercent },
    };
  } finally {
    progress?.end();
    await watch?.stop();
    await hogs?.stop();
    prober.terminate();
  }
}

/** runNeighbour runs both variants, each on a fresh Bulwark started with `start`. */
export async function runNeighbour(
  start: StartOptions,
  o: NeighbourOptions,
  log: Log,
  progress?: Progress,
): Promise<{ results: ScenarioReport<NeighbourResult>['results']; traces: VariantTrace[] }> {
  if (!bulwarkAvailable(start.bulwarkMain))
    return { results: { bulwark: { skipped: 'Bulwark is not built' } }, traces: [] };
  const traces: VariantTrace[] = [];
  try {
    const variants: NeighbourVariant[] = [];
    for (const plan of variantPlans(o)) {
      const { variant: v, trace } = await onFreshBulwark(
        start,
        serverConfig(o, plan),
        `neighbour / ${plan.label}`,
        log,
        (s) => runVariant(s, o, plan, log, progress),
      );
      variants.push(v);
      traces.push(trace);
      log(
        `  ${v.attempts} probes: ${v.refusedUpgrades} upgrades refused, ${v.refusedReads} reads refused, ${v.failed} failed; ` +
          `shedding started ${JSON.stringify(v.sheddingStarted)}; server lag p99 ≤ ${v.serverLagP99Ms.max} ms, ` +
          `server ${v.serverCpuPercent}% CPU, hogs ${v.hogsCpuPercent}%`,
      );
    }
    return { results: { bulwark: { result: { variants, verdict: judgeNeighbour(variants) } } }, traces };
  } catch (err) {
    log(`neighbour: ERROR: ${(err as Error).message}`);
    return {
      results: {
        bulwark: {
          error: (err as Error).message,
          ...(err instanceof ServerRunError ? { serverLog: err.serverLog } : {}),
        },
      },
      traces,
    };
  }
}
