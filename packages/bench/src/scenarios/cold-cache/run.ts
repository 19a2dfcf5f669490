/**
 * The cold-cache scenario (incident 2: after a deploy, 50 servers each missing on ~3k unique
 * stickers would have sent ~150k lookups to a database tuned for 1–2k/s): M Bulwark processes
 * start cold on one Redis, and their clients ask for K unique keys through a cacheable RPC
 * (`proxy.cache.rpc`) at once. What reaches the origin — how many calls, how many per key, at
 * what peak rate — is counted by an origin in the bench process ({@link RpcOrigin}).
 *
 * Variants, each on fresh processes, a fresh origin and a fresh Redis prefix:
 * - `shared`: the RPC cache with its shared Redis tier (`proxy.cache.shared`, the default with
 *   the Redis engine): about one origin call per key for the whole cluster;
 * - `local`: per-node caches only (`proxy.cache.shared: false`): one call per key per node;
 * - `none`: no cache rule, every RPC goes to the origin — but through Bulwark's protections;
 * - `naive`: no cache and the protections lifted (concurrency limit and breaker out of the
 *   way): the incident's per-server path, every lookup straight to the database.
 *
 * The protection that keeps the origin under its capacity is the proxy's concurrency limit
 * (`proxy.max_concurrent` per node, see {@link protectedMaxConcurrent} for the arithmetic);
 * the cache decides how many calls there are, the limit how fast they may come.
 *
 * Load: on every node N clients connect first; then, at once on all nodes, they ask for the K
 * keys, each key C times (`--asks-per-key`, by C different clients, back to back: concurrent
 * asks of one key on one node, which single flight coalesces), in the same order on every node
 * (every server warms the same keys at the same moment: the worst case). Each client keeps
 * `--inflight` RPCs outstanding. Each reply is checked (it must carry the key asked for) and
 * timed.
 *
 * Origin peak rate: the most calls arriving in any 1 s window (sliding, exact timestamps; see
 * harness/arrivals.ts) — what "a database tuned for 2k/s" is compared with. The most in any 100 ms
 * window × 10 is reported too, to show bursts inside the second, but not judged.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { outcomeLabel, RpcClient } from '../../load/rpc-client.js';
import { peakRate, slidingRateSeries } from '../../harness/arrivals.js';
import { fetchMetrics, metricSeries } from '../../harness/api.js';
import { deleteKeysWithPrefix } from '../../harness/redis-keys.js';
import { RpcOrigin } from '../../servers/rpc-origin.js';
import { fmt } from '../../harness/format.js';
import { type ScenarioContext, type Series } from '../../harness/scenario.js';
import { LatencyRecorder, roundSummary } from '../../harness/stats.js';
import { startCluster } from '../../harness/cluster.js';
import { ServerRunError, type RunningServer } from '../../harness/targets.js';
import { Timeline } from '../../harness/timeline.js';
import { mapLimit, round, sleep } from '../../harness/util.js';
import { type Variant, type ColdCacheOptions, METHOD, type VariantResult, type VariantRun } from './types.js';
import { perKeySummary } from './verdict.js';

/** keyName is the i-th key's id. */
export const keyName = (i: number): string => `s${i}`;

/** askKey is the key index of ask `i` of a node's plan: each key `asksPerKey` times, back to back. */
export const askKey = (i: number, asksPerKey: number): number => Math.floor(i / asksPerKey);

/** variantConfig is the Bulwark config of one variant (merged over the bench's base config). */
export function variantConfig(
  v: Variant,
  o: ColdCacheOptions,
  originUrl: string,
  prefix: string,
): Record<string, unknown> {
  const cached = v === 'shared' || v === 'local';
  const proxy: Record<string, unknown> = {
    max_concurrent: o.maxConcurrent,
    max_queue: o.maxQueue,
    cache: {
      rpc: cached ? [{ method: METHOD, ttl: '5m', per_user: false }] : [],
      shared: v === 'shared',
      // Every key fits: an eviction would be a reload, counted against the cache.
      max_entries: Math.max(10_000, o.keys),
    },
  };
  if (v === 'naive') {
    // Protections out of the way: more slots than calls can ever be in flight, a breaker that
    // never judges. What is left is the incident's per-server path.
    proxy.max_concurrent = 1_000_000;
    proxy.max_queue = 0;
    proxy.breaker = { min_requests: 1_000_000_000 };
  }
  return {
    engine: { type: 'redis', redis: { address: [o.redisUrl], prefix } },
    rpc: {
      proxy: { endpoint: `${originUrl}/rpc`, timeout: `${o.proxyTimeoutMs}ms` },
      without_namespace: { proxy_enabled: true },
    },
    protection: {
      // The clients are players warming their sticker cache, not abusers: lift the RPC rate limits.
      rate_limit: { connection: { rpc: { rate: 0 } }, user: { rpc: { rate: 0 } } },
      // Load shedding reacts to this process's event-loop lag, which on a machine shared with the
      // load generator says more about the machine than about the origin path measured here
      // (the overload scenario measures shedding). Off unless --shedding.
      shedding: { enabled: o.shedding },
    },
    proxy,
  };
}

/** The origin's answer: the sticker, and the fallback text old clients show (the incident's "upgrade" message). */
export function stickerAnswer(key: string): { result: { data: unknown } } {
  const n = Number(key.slice(1));
  return { result: { data: { id: key, animated: n % 3 === 0, fallback: `Update the app to see sticker ${key}` } } };
}

/** roundPoints rounds a series' y values to 0.1 (ms) for a readable results file. */
export function roundPoints(s: Series): Series {
  return { label: s.label, points: s.points.map(([x, y]) => [x, round(y, 1)]) };
}

/** connectClients connects N clients to a node, retrying a refused connection a few times. */
export async function connectClients(
  server: RunningServer,
  node: number,
  o: ColdCacheOptions,
  secret: string,
): Promise<RpcClient[]> {
  const clients: RpcClient[] = [];
  let lastError: unknown;
  await mapLimit(
    o.clients,
    o.connectConcurrency,
    async (i) => {
      for (let attempt = 1; ; attempt++) {
        const c = new RpcClient(server.wsUrl);
        try {
          await c.connect(`n${node}-p${i}`, secret);
          clients[i] = c;
          return;
        } catch (err) {
          c.terminate();
          if (attempt >= 3) throw err;
          await sleep(200 * attempt); // e.g. refused while the fresh process sheds connections
        }
      }
    },
    (_i, err) => (lastError = err),
  );
  if (lastError !== undefined) {
    for (const c of clients) c?.terminate();
    throw new Error(`node ${node}: could not connect every client: ${(lastError as Error).message}`);
  }
  return clients;
}

/** readBulwarkCounters sums the RPC cache and protection counters of every node. */
export async function readBulwarkCounters(servers: RunningServer[]): Promise<VariantResult['bulwark']> {
  const out: VariantResult['bulwark'] = { cache: {}, protections: {}, rejections: {} };
  const add = (into: Record<string, number>, text: string, metric: string, label: string): void => {
    for (const [k, v] of metricSeries(text, metric, label)) if (k !== '') into[k] = (into[k] ?? 0) + v;
  };
  for (const s of servers) {
    try {
      const text = await fetchMetrics(s);
      add(out.cache, text, 'bulwark_rpc_cache', 'stat');
      add(out.protections, text, 'bulwark_proxy_protected_calls_total', 'outcome');
      add(out.rejections, text, 'bulwark_rejections_total', 'reason');
    } catch {
      // Counters are for the record only; a node that does not answer leaves them partial.
    }
  }
  return out;
}

export async function runVariant(ctx: ScenarioContext, v: Variant, o: ColdCacheOptions): Promise<VariantRun> {
  const log = ctx.log;
  const prefix = `bench-cold-${v}-${randomBytes(4).toString('hex')}`;
  // A database that holds originConcurrency queries at once and fails the next one (no queue).
  const origin = await RpcOrigin.start({
    serviceMs: o.serviceMs,
    workers: o.originConcurrency > 0 ? o.originConcurrency : undefined,
    queueLimit: 0,
    answer: (_req, key) => stickerAnswer(key),
  });
  let servers: RunningServer[] = [];
  const clients: RpcClient[][] = [];
  try {
    const cluster = await startCluster(ctx.bulwark, variantConfig(v, o, origin.url, prefix), o.nodes, log);
    servers = cluster.servers;
    ctx.progress.begin(`cold-cache ${v}: connecting`);
    for (let n = 0; n < o.nodes; n++) {
      clients.push(await connectClients(servers[n] as RunningServer, n, o, cluster.tokenSecret));
      ctx.progress.update((n + 1) / o.nodes, `${fmt((n + 1) * o.clients)} clients`);
    }
    origin.reset(); // nothing should have called it yet; start the count at the load

    const perNode = o.keys * o.asksPerKey;
    const total = perNode * o.nodes;
    const latency = new LatencyRecorder();
    const failed: Record<string, number> = {};
    let ok = 0;
    let wrong = 0;
    let done = 0;
    let lastReplyAt = 0;
    const t0 = performance.now();
    const deadline = t0 + o.maxSeconds * 1000;
    const timeline = new Timeline(250, t0);
    const originTimeline = new Timeline(100, t0);
    origin.onArrival = (call) => originTimeline.count('calls', 1, call.atMs);
    ctx.progress.begin(`cold-cache ${v}: ${fmt(total)} RPCs`);

    // Per node, one cursor over the plan; worker w asks through client w mod N, so the
    // back-to-back asks of one key go out on different connections at about the same time.
    const nodeLoad = async (n: number): Promise<void> => {
      const cs = clients[n] as RpcClient[];
      let next = 0;
      const worker = async (w: number): Promise<void> => {
        const client = cs[w % cs.length] as RpcClient;
        while (next < perNode) {
          if (performance.now() >= deadline) {
            const unsent = perNode - next;
            next = perNode;
            failed['not sent'] = (failed['not sent'] ?? 0) + unsent;
            done += unsent;
            return;
          }
          const key = keyName(askKey(next++, o.asksPerKey));
          const sentAt = performance.now();
          const out = await client.call(METHOD, { id: key }, o.rpcTimeoutMs);
          const at = performance.now();
          lastReplyAt = at;
          done++;
          if (out.outcome === 0) {
            ok++;
            latency.add(at - sentAt);
            timeline.sample('rpc', at - sentAt, at);
            if ((out.data as { id?: unknown } | undefined)?.id !== key) wrong++;
          } else {
            const label = outcomeLabel(out.outcome);
            failed[label] = (failed[label] ?? 0) + 1;
          }
          ctx.progress.update(
            done / total,
            `${fmt(ok)} ok, ${fmt(done - ok)} failed, origin ${fmt(origin.stats().calls)} calls`,
          );
        }
      };
      await Promise.all(Array.from({ length: cs.length * o.inflight }, (_, w) => worker(w)));
    };
    await Promise.all(Array.from({ length: o.nodes }, (_, n) => nodeLoad(n)));
    const serveSeconds = (Math.max(lastReplyAt, t0) - t0) / 1000;
    origin.onArrival = undefined;
    ctx.progress.end();

    const times = origin.arrivals.times();
    const stats = origin.stats();
    const keys = perKeySummary(origin.perKey);
    const bulwark = await readBulwarkCounters(servers);
    for (const s of servers) if (s.exited()) throw new Error(`server pid ${s.pid} exited during the run`);
    const result: VariantResult = {
      variant: v,
      proxy: {
        cache: v === 'shared' ? 'shared' : v === 'local' ? 'per node' : 'none',
        maxConcurrent: v === 'naive' ? 1_000_000 : o.maxConcurrent,
        maxQueue: v === 'naive' ? 0 : o.maxQueue,
        breaker: v !== 'naive',
      },
      rpcs: total,
      ok,
      wrong,
      failed,
      latencyMs: roundSummary(latency.summary(), 2),
      serveSeconds: round(serveSeconds, 2),
      origin: {
        calls: stats.calls,
        keys: keys.keys,
        maxPerKey: keys.maxPerKey,
        keysCalledAgain: keys.keysCalledAgain,
        peakPerSec: peakRate(times, 1000),
        peak100msPerSec: peakRate(times, 100),
        rejected: stats.throttled,
        aborted: stats.abandoned,
        maxInFlight: stats.maxInFlight,
      },
      bulwark,
    };
    const end = t0 + Math.max(serveSeconds * 1000, 1000);
    return {
      result,
      originRate: slidingRateSeries(times, v, t0, end, 1000, 100),
      originTotal: originTimeline.total('calls', v),
      p99: roundPoints(timeline.quantile('rpc', 99, v)),
    };
  } catch (err) {
    if (err instanceof ServerRunError) throw err;
    const tail = servers.flatMap((s) => s.logTail().slice(-5));
    throw new ServerRunError(`cold-cache ${v}: ${(err as Error).message}`, tail);
  } finally {
    ctx.progress.end();
    for (const cs of clients) for (const c of cs) c?.terminate();
    await Promise.all(servers.map((s) => s.stop()));
    await origin.close();
    try {
      const removed = await deleteKeysWithPrefix(o.redisUrl, prefix);
      log(`  ${v}: removed ${removed} Redis keys under ${prefix}`);
    } catch (err) {
      log(`  ${v}: could not remove Redis keys under ${prefix}: ${(err as Error).message}`);
    }
  }
}
