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
import { RecoveringClient, type SubscribeOutcome } from '../../load/recovering-client.js';
import { fetchMetrics, metricSeries, ServerApi } from '../../harness/api.js';
import { NumberedPublisher } from '../../load/numbered-publisher.js';
import { connectionToken } from '../../harness/jwt.js';
import { deleteKeysWithPrefix, redisPing } from '../../harness/redis-keys.js';
import { fmt } from '../../harness/format.js';
import { type Chart, type ScenarioContext } from '../../harness/scenario.js';
import type { SeqTracker } from '../../harness/stats.js';
import { roundSummary } from '../../harness/stats.js';
import { bulwarkAvailable, deepMerge, ServerRunError, startServer, type RunningServer } from '../../harness/targets.js';
import { mapLimit, round, sleep, waitFor } from '../../harness/util.js';
import { Observer } from './observer.js';
import { buildCharts } from './report.js';
import {
  type NodeCounters,
  type NodeName,
  type RollingOptions,
  type RollingResult,
  type Fleet,
  type MissingExample,
  type RestartResult,
  channelName,
  NAMESPACE,
} from './types.js';
import { judgeCompleteness, spanOf, peakPerWindow } from './verdict.js';

export const MAX_API_IN_FLIGHT = 512;
/** Failed attempts a player may retry (with the backoff) while everyone first connects to A. */
export const START_RETRIES = 10;

// ---------------------------------------------------------------- pure measurement functions

// ---------------------------------------------------------------- the observer

// ---------------------------------------------------------------- the run

/** readNodeCounters reads a node's rejection and recovery counters (empty when /metrics does not answer). */
export async function readNodeCounters(server: RunningServer): Promise<NodeCounters> {
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
export function nodeConfig(name: NodeName, prefix: string, o: RollingOptions): Record<string, unknown> {
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
export function summarize(
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
