/**
 * The stalled-clients scenario: what clients that stop reading (a phone in a tunnel, a frozen
 * tab) cost the server's memory and the healthy clients' latency, with and without Bulwark's
 * write-queue cap (`client.queue_max_size`: over it a client is disconnected with 3008 "slow").
 *
 * Three runs, each on a fresh Bulwark, with the same healthy subscribers (subscriber i on
 * channel `bench:ch{i mod channels}`) and the same API publications (fixed rate, ~1 KB each,
 * round-robin over the channels):
 * (a) no stalled clients;
 * (b) plus stalled clients (5 % of all subscribers) that stop reading their sockets, so TCP
 *     backpressure builds up in the server, with the default queue_max_size (1 MiB);
 * (c) the same with queue_max_size 1 GiB: the cap is effectively off.
 *
 * Each stalled client subscribes to every channel. Why: a stalled socket first fills the
 * kernel's buffers (the server's send buffer grows to a few MB on loopback) before anything
 * queues in the server; at one channel's share (25 KB/s at the defaults) that takes minutes,
 * longer than a run, while all channels' (~500 KB/s) cross it and the 1 MiB cap in seconds.
 *
 * Reported: server RSS (sampled from /proc), slow disconnects from the server's /metrics and
 * as seen by the stalled clients once they read again, and the healthy clients' delivery
 * latency and loss.
 *
 * @module
 */
import type { Log } from '../../harness/scenario.js';
import { LeanClient } from '../../load/lean-client.js';
import { fetchMetrics, metricSeries, ServerApi } from '../../harness/api.js';
import { connectionToken } from '../../harness/jwt.js';
import { LiveFeed } from '../../load/live-feed.js';
import { readRssBytes, watchCpu } from '../../harness/proc.js';
import { type ScenarioReport } from '../../harness/report.js';
import {
  bulwarkAvailable,
  onFreshBulwark,
  ServerRunError,
  type RunningServer,
  type StartOptions,
} from '../../harness/targets.js';
import { mapLimit, round, sleep, tally, waitFor } from '../../harness/util.js';
import { judgeStalled } from './verdict.js';
import type { StalledOptions, StalledRun, StalledResult } from './types.js';

export const MiB = 2 ** 20;

export const channelName = (ch: number) => `bench:ch${ch}`;

/** stalledCount is how many of `subscribers` stall at `percent` %. */
export function stalledCount(subscribers: number, percent: number): number {
  return Math.round((subscribers * percent) / 100);
}

/** connectStalled connects `count` clients subscribed to every channel. */
export async function connectStalled(
  server: RunningServer,
  count: number,
  opts: StalledOptions,
): Promise<LeanClient[]> {
  const clients: LeanClient[] = [];
  const failures: string[] = [];
  await mapLimit(
    count,
    opts.connectConcurrency,
    async (i) => {
      // A no-op push handler keeps the JSON.parse-free path when they read their backlog at the end.
      const c = new LeanClient({ url: server.wsUrl, protocol: 'centrifugo', onPush: () => undefined });
      clients.push(c);
      await c.open();
      await c.connect(connectionToken(`stalled-${i}`, server.tokenSecret));
      for (let ch = 0; ch < opts.channels; ch++) await c.subscribe(channelName(ch));
    },
    (_i, err) => failures.push((err as Error).message),
  );
  if (failures.length) {
    for (const c of clients) c.terminate();
    throw new Error(`${failures.length}/${count} stalled clients failed; first: ${failures[0]}`);
  }
  return clients;
}

export const slowCount = (metrics: string) => metricSeries(metrics, 'bulwark_slow_disconnects_total').get('') ?? 0;

/**
 * sampleServer samples the server's RSS every `sampleMs` and its slow-disconnect counter once a
 * second (a /metrics scrape costs the server about a millisecond) until stopped.
 */
export function sampleServer(server: RunningServer, sampleMs: number) {
  const t0 = performance.now();
  let peak = readRssBytes(server.pid);
  const bySecond: { first: number | null; last: number | null } = { first: null, last: null };
  let seen = 0;
  let scraping = false;
  const rss = setInterval(() => {
    try {
      peak = Math.max(peak, readRssBytes(server.pid));
    } catch {
      // The server exited; the run reports that once the window is over.
    }
  }, sampleMs);
  const scrape = setInterval(() => {
    if (scraping) return;
    scraping = true;
    fetchMetrics(server)
      .then((text) => {
        const n = slowCount(text);
        if (n <= seen) return;
        seen = n;
        const t = Math.ceil((performance.now() - t0) / 1000);
        bySecond.first ??= t;
        bySecond.last = t;
      })
      .catch(() => undefined)
      .finally(() => {
        scraping = false;
      });
  }, 1000);
  return {
    /** stop ends sampling (idempotent) and returns the peak RSS and the slow-disconnect times. */
    stop() {
      clearInterval(rss);
      clearInterval(scrape);
      return { peak, slowDisconnectsBySecond: { ...bySecond } };
    },
  };
}

/** runOnce runs one of the three runs on a fresh server. */
export async function runOnce(
  server: RunningServer,
  opts: StalledOptions,
  stalled: number,
  log: Log,
): Promise<Omit<StalledRun, 'label' | 'queueMaxSize'>> {
  const api = new ServerApi(server);
  const feed = new LiveFeed(server, api, channelName, opts.channels, opts.padBytes);
  let stalledClients: LeanClient[] = [];
  let sampler: ReturnType<typeof sampleServer> | undefined;
  try {
    const healthy = opts.subscribers - stalledCount(opts.subscribers, opts.stalledPercent);
    await feed.subscribe(healthy, (i) => i % opts.channels, opts.connectConcurrency);
    if (opts.warmupSeconds > 0) {
      await feed.publish(opts.publishRate, opts.warmupSeconds * 1000);
      await feed.drain(opts.drainMs);
    }
    stalledClients = await connectStalled(server, stalled, opts);
    log(`  ${healthy} healthy + ${stalled} stalled subscribers connected`);
    await sleep(500);
    const baseline = readRssBytes(server.pid);

    for (const c of stalledClients) c.ws.pause();
    feed.startPhase();
    sampler = sampleServer(server, opts.sampleMs);
    const done = watchCpu(server.pid);
    await feed.publish(opts.publishRate, opts.seconds * 1000);
    await feed.drain(opts.drainMs);
    const cpu = done();
    const { peak, slowDisconnectsBySecond } = sampler.stop();
    const final = readRssBytes(server.pid);
    const metrics = await fetchMetrics(server);

    // Let the stalled clients read again: what reaches them tells whether a close frame did.
    for (const c of stalledClients) c.ws.resume();
    await waitFor(() => stalledClients.every((c) => c.closeCode !== undefined), opts.drainMs);
    return {
      stalledClients: stalled,
      rssMiB: {
        baseline: round(baseline / MiB, 1),
        peak: round(Math.max(peak, final) / MiB, 1),
        final: round(final / MiB, 1),
      },
      slowDisconnects: slowCount(metrics),
      slowDisconnectsBySecond,
      disconnectsByCode: Object.fromEntries(metricSeries(metrics, 'bulwark_disconnects_total', 'code')),
      stalledCloseCodes: tally(stalledClients.map((c) => c.closeCode)),
      stalledStillOpen: stalledClients.filter((c) => c.closeCode === undefined).length,
      healthy: feed.result(),
      ...cpu,
    };
  } finally {
    sampler?.stop();
    for (const c of stalledClients) c.terminate();
    feed.terminate();
    api.close();
  }
}

/** runStalled runs (a), (b) and (c), each on a fresh Bulwark started with `start`. */
export async function runStalled(
  start: StartOptions,
  opts: StalledOptions,
  log: Log,
): Promise<ScenarioReport<StalledResult>['results']> {
  if (!bulwarkAvailable(start.bulwarkMain)) return { bulwark: { skipped: 'Bulwark is not built' } };
  const stalled = stalledCount(opts.subscribers, opts.stalledPercent);
  const plan: { label: string; stalled: number; queueMaxSize: number | undefined }[] = [
    { label: '(a) none stalled', stalled: 0, queueMaxSize: undefined },
    { label: `(b) ${opts.stalledPercent}% stalled, default queue cap`, stalled, queueMaxSize: undefined },
    { label: `(c) ${opts.stalledPercent}% stalled, queue cap off`, stalled, queueMaxSize: opts.uncappedQueueBytes },
  ];
  try {
    const runs: StalledRun[] = [];
    for (const p of plan) {
      const config = p.queueMaxSize === undefined ? {} : { client: { queue_max_size: p.queueMaxSize } };
      const r = await onFreshBulwark(start, config, `stalled / ${p.label}`, log, (s) =>
        runOnce(s, opts, p.stalled, log),
      );
      runs.push({ label: p.label, queueMaxSize: p.queueMaxSize, ...r });
      log(
        `  RSS ${r.rssMiB.baseline} → peak ${r.rssMiB.peak} MiB; slow disconnects ${r.slowDisconnects}; ` +
          `healthy p99 ${r.healthy.latencyMs.p99} ms, loss ${r.healthy.loss.missing}; server ${r.serverCpuPercent}% CPU`,
      );
    }
    const [none, capped, uncapped] = runs as [StalledRun, StalledRun, StalledRun];
    return { bulwark: { result: { runs, verdict: judgeStalled(none, capped, uncapped) } } };
  } catch (err) {
    log(`stalled: ERROR: ${(err as Error).message}`);
    return {
      bulwark: {
        error: (err as Error).message,
        ...(err instanceof ServerRunError ? { serverLog: err.serverLog } : {}),
      },
    };
  }
}
