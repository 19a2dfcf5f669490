/**
 * The lobby scenario's run: players joining and leaving map-backed lobbies on Bulwark, racing
 * for slots with conditional writes, then a settle and the end state compared.
 *
 * - Bulwark: one process on the memory engine, or with --nodes M > 1, M processes on one Redis
 *   (`engine.type: redis`, a fresh key prefix, removed after). The `lobby` namespace is a
 *   durable map (`client_key_mode: if_new`, `max_keys` = slots, so the server itself bounds a
 *   lobby), writable and removable by its subscribers. Players connect round-robin to the nodes.
 * - The players (player.ts) join, take slots, stay, leave and rejoin for the duration; every
 *   write is timed to its reply, to the push that brings it back to the writer, and to each
 *   other member's push (the slot's value carries its send time).
 * - Settle: once every player's loop has ended (players in a lobby stay in it), the server's
 *   map of every lobby is read through `map_read_state` (paged), and every player's mirror must
 *   come to equal it, at the same stream position, within --settle-seconds.
 * - CPU: the server process(es) over the active window (/proc), and sampled every 500 ms.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { fetchMetrics, metricSeries, ServerApi } from '../../harness/api.js';
import { startCluster } from '../../harness/cluster.js';
import { CpuSampler, cpuPercentPoints } from '../../harness/cpu-sampler.js';
import { fmt } from '../../harness/format.js';
import { watchCpu, type CpuReading } from '../../harness/proc.js';
import { deleteKeysWithPrefix } from '../../harness/redis-keys.js';
import { watchRunQueueWait } from '../../harness/run-queue.js';
import type { ScenarioContext } from '../../harness/scenario.js';
import { roundSummary } from '../../harness/stats.js';
import { ServerRunError, type RunningServer } from '../../harness/targets.js';
import { mapLimit, round, tally, waitFor } from '../../harness/util.js';
import { judgeExactness, sameEntries, type PlayerView, type ServerLobby } from './exactness.js';
import { LobbyPlayer } from './player.js';
import { channelOf, NAMESPACE } from './slots.js';
import { LobbyTallies } from './tallies.js';
import type { LobbyOptions, LobbyResult } from './types.js';

/** What the server says when it refuses map namespaces on the Redis engine (config/cross-key-rules.ts). */
export const REDIS_MAP_REFUSAL = /map channels need engine\.type memory[^\n]*/;

/** lobbyConfig is the Bulwark config of the run (plus the Redis engine with --nodes > 1). */
export function lobbyConfig(o: LobbyOptions, prefix: string): Record<string, unknown> {
  // Entries must outlive the run: an expiry would be a removal no player made.
  const keyTtl = Math.max(300, Math.ceil((o.durationSeconds + o.settleSeconds) * 3));
  const config: Record<string, unknown> = {
    channel: {
      namespaces: [
        {
          name: NAMESPACE,
          subscription_type: 'map',
          allow_subscribe_for_client: true,
          map: {
            mode: 'durable',
            key_ttl: `${keyTtl}s`,
            // A subscribe catches up from its first page; a busy lobby must not outrun the stream meanwhile.
            stream_size: 1000,
            stream_ttl: '300s',
            allow_publish_for_subscriber: true,
            allow_remove_for_subscriber: true,
            client_key_mode: 'if_new',
            max_keys: o.slots,
            min_page_size: 1,
            default_page_size: o.pageSize,
          },
        },
      ],
    },
    // Load shedding reacts to the event-loop lag of a machine shared with the load generator. Off.
    protection: { shedding: { enabled: false } },
  };
  if (o.nodes > 1) config['engine'] = { type: 'redis', redis: { address: [o.redisUrl], prefix } };
  return config;
}

/** readLobby reads lobby `channel`'s whole map through the server API, `limit` entries a page. */
export async function readLobby(api: ServerApi, channel: string, limit: number): Promise<ServerLobby> {
  const entries = new Map<string, unknown>();
  let cursor = '';
  let first: { offset: number; epoch: string } | undefined;
  do {
    const r = (await api.call('map_read_state', JSON.stringify({ channel, cursor, limit }))) as {
      publications?: Array<{ key: string; data: unknown }>;
      cursor?: string;
      offset?: number;
      epoch?: string;
    };
    first ??= { offset: r.offset ?? 0, epoch: r.epoch ?? '' };
    for (const p of r.publications ?? []) entries.set(p.key, p.data);
    cursor = r.cursor ?? '';
  } while (cursor !== '');
  return { entries, offset: first?.offset ?? 0, epoch: first?.epoch ?? '' };
}

/** readBulwarkCounts sums the map counters of every node's /metrics; undefined when a node does not answer. */
export async function readBulwarkCounts(servers: readonly RunningServer[]): Promise<LobbyResult['bulwark']> {
  const out = { writes: {} as Record<string, number>, suppressed: {} as Record<string, number>, catchUpTimeouts: 0 };
  const add = (into: Record<string, number>, m: Map<string, number>) => {
    for (const [k, v] of m) into[k] = (into[k] ?? 0) + v;
  };
  try {
    for (const s of servers) {
      const text = await fetchMetrics(s);
      add(out.writes, metricSeries(text, 'bulwark_map_writes_total', 'op'));
      add(out.suppressed, metricSeries(text, 'bulwark_map_writes_suppressed_total', 'reason'));
      out.catchUpTimeouts += metricSeries(text, 'bulwark_rejections_total', 'reason').get('map_catch_up_timeout') ?? 0;
    }
    return out;
  } catch {
    return undefined;
  }
}

/** viewOf is what a player holds and believes now. */
function viewOf(p: LobbyPlayer): PlayerView {
  const channel = p.lobby === undefined ? undefined : channelOf(p.lobby);
  const m = channel === undefined ? undefined : p.client.mirror(channel);
  return {
    user: p.user,
    ...(channel !== undefined ? { channel } : {}),
    ...(m !== undefined ? { mirror: { entries: m.entries, offset: m.offset, epoch: m.epoch } } : {}),
    ...(p.held !== undefined ? { held: p.held } : {}),
  };
}

/** RunOutcome is the result and the series for the charts. */
export interface RunOutcome {
  result: LobbyResult;
  tallies: LobbyTallies;
  cpu: Array<{ label: string; points: Array<[number, number]> }>;
}

/** runLobby runs the scenario once; a refusal of the config (Redis engine) comes back as a string. */
export async function runLobby(ctx: ScenarioContext, o: LobbyOptions): Promise<RunOutcome | string> {
  const log = ctx.log;
  const prefix = `bench-lobby-${randomBytes(4).toString('hex')}`;
  let servers: RunningServer[] = [];
  const players: LobbyPlayer[] = [];
  const apis: ServerApi[] = [];
  try {
    let cluster;
    try {
      cluster = await startCluster(ctx.bulwark, lobbyConfig(o, prefix), o.nodes, log);
    } catch (err) {
      const refusal = REDIS_MAP_REFUSAL.exec((err as Error).message);
      if (refusal !== null) return refusal[0];
      throw err;
    }
    servers = cluster.servers;
    const t = new LobbyTallies();

    ctx.progress.begin('lobby: connecting');
    const failures: string[] = [];
    await mapLimit(
      o.players,
      o.connectConcurrency,
      async (i) => {
        const server = servers[i % servers.length] as RunningServer;
        const p = new LobbyPlayer(`p${i}`, server.wsUrl, cluster.tokenSecret, o, t);
        players.push(p);
        await p.client.connect();
        ctx.progress.update(players.length / o.players, `${fmt(players.length)} players`);
      },
      (_i, err) => failures.push((err as Error).message),
    );
    ctx.progress.end();
    if (failures.length)
      throw new Error(`${failures.length}/${o.players} players failed to connect; first: ${failures[0]}`);

    const samplers = servers.map((s) => new CpuSampler(s.pid, 500));
    const cpuDone = servers.map((s) => watchCpu(s.pid));
    const waitDone = servers.map((s) => watchRunQueueWait(s.pid));
    const ownWaitDone = watchRunQueueWait(process.pid);
    const t0 = performance.now();
    t.timeline.restart(t0);
    const clock = {
      startAt: t0,
      endAt: t0 + o.durationSeconds * 1000,
      retryUntil: t0 + (o.durationSeconds + o.settleSeconds) * 1000,
    };
    ctx.progress.begin(`lobby: ${fmt(o.players)} players, ${fmt(o.lobbies)} lobbies of ${o.slots}`);
    const ticker = setInterval(() => {
      const s = (performance.now() - t0) / 1000;
      ctx.progress.update(
        Math.min(1, s / o.durationSeconds),
        `${fmt(t.joined)} slots taken, ${fmt(t.conflicts)} conflicts, ${fmt(t.leaves)} left`,
      );
    }, 250);
    let cpu: CpuReading[];
    let cpuWait: number[];
    let ownWait: number;
    try {
      await Promise.all(players.map((p) => p.play(clock)));
    } finally {
      clearInterval(ticker);
      cpu = cpuDone.map((done) => done());
      cpuWait = waitDone.map((done) => done());
      ownWait = ownWaitDone();
      ctx.progress.end();
    }
    const seconds = (performance.now() - t0) / 1000;

    // Settle: own writes back, then every mirror equal to the server's map at its position.
    const settleStart = performance.now();
    await waitFor(() => players.every((p) => p.client.ownPending === 0), o.settleSeconds * 1000, 50);
    const api = new ServerApi(servers[0] as RunningServer);
    apis.push(api);
    const server = new Map<string, ServerLobby>();
    const readFailures: string[] = [];
    await mapLimit(
      o.lobbies,
      16,
      async (n) => {
        server.set(channelOf(n), await readLobby(api, channelOf(n), o.pageSize));
      },
      (n, err) => readFailures.push(`${channelOf(n)}: ${(err as Error).message}`),
    );
    if (readFailures.length)
      throw new Error(`map_read_state failed for ${readFailures.length} lobbies; first: ${readFailures[0]}`);
    const matches = () =>
      players.every((p) => {
        const v = viewOf(p);
        const s = v.channel === undefined ? undefined : server.get(v.channel);
        return (
          v.mirror === undefined ||
          (s !== undefined && sameEntries(v.mirror.entries, s.entries) && v.mirror.offset === s.offset)
        );
      });
    await waitFor(matches, Math.max(0, o.settleSeconds * 1000 - (performance.now() - settleStart)), 50);
    const settleMs = performance.now() - settleStart;
    const exactness = judgeExactness(players.map(viewOf), server, o.slots);
    const bulwark = await readBulwarkCounts(servers);
    const cpuPoints = samplers.map((s, i) => ({
      label: servers.length > 1 ? `node ${i + 1}` : 'Bulwark',
      points: cpuPercentPoints(s.stop(), t0),
    }));
    for (const s of servers) if (s.exited()) throw new Error(`server pid ${s.pid} exited during the run`);

    const anomalies = { gaps: 0, stale: 0, overwrites: 0 };
    for (const p of players) {
      const a = p.client.anomalies();
      anomalies.gaps += a.gaps;
      anomalies.stale += a.stale;
      anomalies.overwrites += a.overwrites;
    }
    const lat = (r: { summary(): ReturnType<typeof roundSummary> }) => roundSummary(r.summary(), 2);
    const result: LobbyResult = {
      engine: o.nodes > 1 ? 'redis' : 'memory',
      seconds: round(seconds, 2),
      joins: {
        attempts: t.joinAttempts,
        subscribed: t.subscribed,
        succeeded: t.joined,
        fullOnArrival: t.fullOnArrival,
        fullAfterConflict: t.fullAfterConflict,
        subscribeErrors: Object.fromEntries(t.subscribeErrors),
        writeErrors: Object.fromEntries(t.writeErrors),
      },
      conflicts: {
        total: t.conflicts,
        lastSlot: t.lastSlotConflicts,
        perSlotTaken: t.joined > 0 ? round(t.conflicts / t.joined, 3) : 0,
      },
      leaves: { ok: t.leaves, errors: Object.fromEntries(t.leaveErrors) },
      players: {
        gotSlot: players.filter((p) => p.gotSlot).length,
        sawFree: players.filter((p) => p.sawFree).length,
        starved: players.filter((p) => p.last === 'lost' && !p.gotSlot).length,
        gone: players.filter((p) => p.gone).length,
      },
      latencyMs: {
        own: lat(t.own),
        others: lat(t.others),
        writeReply: lat(t.writeReply),
        subscribe: lat(t.subscribeMs),
      },
      ownTakes: { ok: t.ownTakesOk, delivered: t.ownTakesDelivered },
      snapshot: {
        entries: lat(t.snapshotEntries),
        bytes: lat(t.snapshotBytes),
        requests: lat(t.snapshotRequests),
        restarts: t.snapshotRestarts,
      },
      stream: anomalies,
      exactness,
      settleMs: Math.round(settleMs),
      cpu: {
        serverPercent: cpu.map((c) => c.serverCpuPercent),
        serverWaitPercent: cpuWait,
        loadgenPercent: cpu[0]?.loadgenCpuPercent ?? NaN,
        loadgenWaitPercent: ownWait,
        loadgenLoopDelayMs: cpu[0]?.loadgenLoopDelayMs ?? { p99: NaN, max: NaN },
      },
      ...(bulwark !== undefined ? { bulwark } : {}),
      ownDropped: players.reduce((n, p) => n + p.client.ownDropped, 0),
      disconnected: tally(players.map((p) => p.client.closeCode)),
      serverUnsubscribes: players.reduce((n, p) => n + p.client.serverUnsubscribes, 0),
      bytesReceived: players.reduce((n, p) => n + p.client.bytesReceived, 0),
    };
    return { result, tallies: t, cpu: cpuPoints };
  } catch (err) {
    if (err instanceof ServerRunError) throw err;
    throw new ServerRunError(
      `lobby: ${(err as Error).message}`,
      servers.flatMap((s) => s.logTail().slice(-5)),
    );
  } finally {
    ctx.progress.end();
    for (const p of players) p.client.terminate();
    for (const a of apis) a.close();
    await Promise.all(servers.map((s) => s.stop()));
    if (o.nodes > 1) {
      try {
        const removed = await deleteKeysWithPrefix(o.redisUrl, prefix);
        log(`  removed ${removed} Redis keys under ${prefix}`);
      } catch (err) {
        log(`  could not remove Redis keys under ${prefix}: ${(err as Error).message}`);
      }
    }
  }
}
