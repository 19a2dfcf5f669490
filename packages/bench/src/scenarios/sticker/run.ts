/**
 * One run of the sticker scenario (incident 2, end to end) in one cache mode: M Bulwark
 * processes start cold on one Redis (a fresh prefix), with the RPC proxy pointed at an origin
 * in the bench that answers `sticker.fallback` (the upgrade text of a sticker) after a service
 * time and counts calls per sticker. Players on a new build (token feature
 * `animated_stickers`, version 5.3.0) and an old one (no feature, 5.1.0) join one chat channel
 * with history, spread over the nodes. The backend posts K stickers many times each through the
 * server API of the node each post names, every post with a variant for clients that lack the
 * feature whose payload is the RPC's answer; first a cold burst (each sticker once per node, at
 * once), then a steady chat.
 *
 * Measured: what each client received at each offset (the ledger: right payload, the other
 * build's, missing, duplicated, and the latency from the post), a sample of clients' history
 * reads (their own variant), the origin's calls per sticker, and Bulwark's own counters.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { fetchMetrics, metricSeries } from '../../harness/api.js';
import { startCluster } from '../../harness/cluster.js';
import { fmt } from '../../harness/format.js';
import { deleteKeysWithPrefix } from '../../harness/redis-keys.js';
import type { ScenarioContext } from '../../harness/scenario.js';
import { ServerRunError, type RunningServer } from '../../harness/targets.js';
import { Timeline } from '../../harness/timeline.js';
import { mapLimit, sleep, waitFor } from '../../harness/util.js';
import { ChatClient } from '../../load/chat-client.js';
import { RpcOrigin } from '../../servers/rpc-origin.js';
import { type AcceptedPosts, ReceiptLedger } from './ledger.js';
import { runPosts } from './posting.js';
import { CHANNEL, fallbackAnswer, identityOf, kindOf, METHOD, planPosts, readPayload } from './stickers.js';
import type {
  CacheMode,
  ClientKind,
  HistoryCheck,
  ModeResult,
  ModeRun,
  OriginCounts,
  StickerOptions,
} from './types.js';

/** modeConfig is the Bulwark config of one cache mode (merged over the bench's base config). */
export function modeConfig(
  mode: CacheMode,
  o: StickerOptions,
  originUrl: string,
  prefix: string,
): Record<string, unknown> {
  const posts = o.stickers * o.postsPerSticker;
  return {
    engine: { type: 'redis', redis: { address: [o.redisUrl], prefix } },
    channel: {
      namespaces: [
        {
          name: 'chat',
          // The whole chat stays in history, so a history read can be checked post by post.
          history_size: posts,
          history_ttl: '10m',
          force_recovery: true,
          allow_subscribe_for_client: true,
          allow_history_for_subscriber: true,
        },
      ],
    },
    client: { history_max_publication_limit: posts },
    rpc: {
      // Under proxy.cache.shared_wait and the shared tier's 5 s lock (docs/CONFIG.md), so a node
      // waiting for another's load never gives up on one that is still running; well over the
      // origin's 20 ms, since the cold burst on a busy machine queues the calls.
      proxy: { endpoint: `${originUrl}/rpc`, timeout: '3s' },
      without_namespace: { proxy_enabled: true },
    },
    proxy: {
      cache: {
        rpc: mode === 'none' ? [] : [{ method: METHOD, ttl: '10m', per_user: false }],
        shared: mode === 'shared',
      },
    },
    // Load shedding reacts to this process's event-loop lag, which on a machine shared with the
    // load generator says more about the machine than about the path measured here. Off unless --shedding.
    protection: { shedding: { enabled: o.shedding } },
  };
}

/** originCounts summarises the origin's calls per sticker. */
export function originCounts(perKey: ReadonlyMap<string, number>, failed: number): OriginCounts {
  let calls = 0;
  let maxPerSticker = 0;
  let again = 0;
  for (const n of perKey.values()) {
    calls += n;
    maxPerSticker = Math.max(maxPerSticker, n);
    if (n > 1) again++;
  }
  return { calls, stickers: perKey.size, maxPerSticker, stickersCalledAgain: again, failed };
}

/** connectPlayers joins every player to the chat on its node (player i on node i mod M), retrying a refused one. */
async function connectPlayers(
  servers: readonly RunningServer[],
  kinds: readonly ClientKind[],
  secret: string,
  ledger: ReceiptLedger,
  onDelivery: (atMs: number) => void,
  concurrency: number,
  onJoined: (n: number) => void,
): Promise<ChatClient[]> {
  const clients: ChatClient[] = [];
  let lastError: unknown;
  let joined = 0;
  await mapLimit(
    kinds.length,
    concurrency,
    async (i) => {
      const server = servers[i % servers.length] as RunningServer;
      for (let attempt = 1; ; attempt++) {
        const c = new ChatClient(server.wsUrl, CHANNEL, (pub, atMs) => {
          ledger.record(i, pub.offset, readPayload(pub.data), atMs);
          onDelivery(atMs);
        });
        try {
          await c.join(identityOf(i, kinds[i] as ClientKind), secret);
          clients[i] = c;
          onJoined(++joined);
          return;
        } catch (err) {
          c.terminate();
          if (attempt >= 3) throw err;
          await sleep(200 * attempt); // e.g. refused while a fresh process still starts up
        }
      }
    },
    (_i, err) => (lastError = err),
  );
  if (lastError !== undefined) {
    for (const c of clients) c?.terminate();
    throw new Error(`could not join every player: ${(lastError as Error).message}`);
  }
  return clients;
}

/**
 * checkHistory has the first `sample` clients of each kind read the whole history and checks
 * that every publication is theirs: their build's payload of the sticker posted at that offset.
 */
async function checkHistory(
  clients: readonly ChatClient[],
  kinds: readonly ClientKind[],
  sample: number,
  accepted: AcceptedPosts,
  acceptedCount: number,
): Promise<HistoryCheck> {
  const out: HistoryCheck = { clients: 0, publications: 0, wrong: 0, short: 0 };
  const picked: number[] = [];
  for (const kind of ['new', 'old'] as const) {
    picked.push(...kinds.flatMap((k, i) => (k === kind ? [i] : [])).slice(0, sample));
  }
  await Promise.all(
    picked.map(async (i) => {
      out.clients++;
      try {
        const pubs = await (clients[i] as ChatClient).history(accepted.stickerAt.length - 1);
        out.publications += pubs.length;
        if (pubs.length < acceptedCount) out.short++;
        for (const p of pubs) {
          const got = readPayload(p.data);
          if (got.kind !== kinds[i] || got.sticker !== accepted.stickerAt[p.offset]) out.wrong++;
        }
      } catch {
        out.short++;
      }
    }),
  );
  return out;
}

/** readBulwarkCounters sums the variant deliveries, RPC cache and HTTP close counters of every node. */
async function readBulwarkCounters(servers: readonly RunningServer[]): Promise<ModeResult['bulwark']> {
  const out: ModeResult['bulwark'] = { variantDeliveries: {}, rpcCache: {}, rpcCacheShared: {}, httpSocketsClosed: {} };
  const add = (into: Record<string, number>, text: string, metric: string, label: string): void => {
    for (const [k, v] of metricSeries(text, metric, label)) if (k !== '') into[k] = (into[k] ?? 0) + v;
  };
  for (const s of servers) {
    try {
      const text = await fetchMetrics(s);
      add(out.variantDeliveries, text, 'bulwark_variant_deliveries_total', 'variant');
      add(out.rpcCache, text, 'bulwark_rpc_cache', 'stat');
      add(out.rpcCacheShared, text, 'bulwark_rpc_cache_shared', 'stat');
      add(out.httpSocketsClosed, text, 'bulwark_http_sockets_closed_total', 'reason');
    } catch {
      // Counters are for the record only; a node that does not answer leaves them partial.
    }
  }
  return out;
}

export async function runMode(ctx: ScenarioContext, mode: CacheMode, o: StickerOptions): Promise<ModeRun> {
  const log = ctx.log;
  const prefix = `bench-sticker-${mode}-${randomBytes(4).toString('hex')}`;
  const origin = await RpcOrigin.start({ serviceMs: o.serviceMs, answer: (_req, id) => fallbackAnswer(id) });
  const posts = planPosts(o.stickers, o.postsPerSticker, o.nodes);
  const kinds = Array.from({ length: o.clients }, (_, i) => kindOf(i, o.oldPercent));
  const ledger = new ReceiptLedger(kinds, posts.length);
  let servers: RunningServer[] = [];
  let clients: ChatClient[] = [];
  try {
    const cluster = await startCluster(ctx.bulwark, modeConfig(mode, o, origin.url, prefix), o.nodes, log);
    servers = cluster.servers;
    const timeline = new Timeline(250);
    let lastDelivery = 0;
    ctx.progress.begin(`sticker ${mode}: joining`);
    clients = await connectPlayers(
      servers,
      kinds,
      cluster.tokenSecret,
      ledger,
      (atMs) => {
        timeline.count('deliveries', 1, atMs);
        lastDelivery = atMs;
      },
      o.connectConcurrency,
      (n) => ctx.progress.update(n / o.clients, `${fmt(n)} players in the chat`),
    );
    ctx.progress.end();
    const callsBefore = origin.stats().calls;
    if (callsBefore !== 0) log(`  ${mode}: the origin was called ${callsBefore}× before the first post`);
    origin.reset();

    ctx.progress.begin(`sticker ${mode}: ${fmt(posts.length)} posts`);
    const t0 = performance.now();
    timeline.restart(t0);
    origin.onArrival = (call) => timeline.count('origin', 1, call.atMs);
    const posting = await runPosts(servers, posts, o.burstConcurrency, o.durationSeconds, (done) =>
      ctx.progress.update(
        done / posts.length,
        `${fmt(done)} posted, origin ${fmt(origin.stats().calls)} calls, ${fmt(ledger.totalDistinct)} delivered`,
      ),
    );
    const wanted = posting.acceptedCount * o.clients;
    await waitFor(() => ledger.totalDistinct >= wanted, o.settleSeconds * 1000, 50);
    origin.onArrival = undefined;
    ctx.progress.end();

    const bytes = { new: 0, old: 0 };
    const disconnects: Record<string, number> = {};
    clients.forEach((c, i) => {
      bytes[kinds[i] as ClientKind] += c.bytesReceived;
      if (c.closeCode !== undefined) disconnects[c.closeCode] = (disconnects[c.closeCode] ?? 0) + 1;
    });
    const deliveries = ledger.tally(posting.accepted);
    for (const k of ['new', 'old'] as const) {
      const d = deliveries[k];
      d.bytesPerDelivery = d.right > 0 ? Math.round(bytes[k] / d.right) : 0;
    }
    const history = await checkHistory(clients, kinds, o.historySample, posting.accepted, posting.acceptedCount);
    const stats = origin.stats();
    const bulwark = await readBulwarkCounters(servers);
    for (const s of servers) if (s.exited()) throw new Error(`server pid ${s.pid} exited during the run`);
    const burstPosts = posts.filter((p) => p.burst).length;
    const result: ModeResult = {
      mode,
      posts: posts.length,
      burstPosts,
      publishErrors: posting.publishErrors,
      publishRetries: posting.retries,
      offsetAnomalies: posting.offsetAnomalies,
      publishMs: posting.publishMs,
      origin: originCounts(origin.perKey, stats.throttled + stats.abandoned),
      deliveries,
      history,
      disconnects,
      seconds: Math.round((Math.max(lastDelivery, posting.startedAt) - posting.startedAt) / 10) / 100,
      bulwark,
    };
    return {
      result,
      originTotal: timeline.total('origin', mode),
      deliveryRate: timeline.rate('deliveries', mode),
    };
  } catch (err) {
    if (err instanceof ServerRunError) throw err;
    const tail = servers.flatMap((s) => s.logTail().slice(-5));
    throw new ServerRunError(`sticker ${mode}: ${(err as Error).message}`, tail);
  } finally {
    ctx.progress.end();
    for (const c of clients) c?.terminate();
    await Promise.all(servers.map((s) => s.stop()));
    await origin.close();
    try {
      const removed = await deleteKeysWithPrefix(o.redisUrl, prefix);
      log(`  ${mode}: removed ${removed} Redis keys under ${prefix}`);
    } catch (err) {
      log(`  ${mode}: could not remove Redis keys under ${prefix}: ${(err as Error).message}`);
    }
  }
}
