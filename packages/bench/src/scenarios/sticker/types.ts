/**
 * The sticker scenario's shapes: its cache modes and options, and what one mode's run measured.
 *
 * @module
 */
import { type Series } from '../../harness/scenario.js';
import { type LatencySummary } from '../../harness/stats.js';

/** CacheMode is how the cluster caches the fallback RPC. */
export type CacheMode = 'shared' | 'local' | 'none';

/** CACHE_MODES are the modes in the order they run, with what each one is. */
export const CACHE_MODES: Record<CacheMode, string> = {
  shared: 'RPC cache with the shared Redis tier (Bulwark on Redis)',
  local: 'RPC cache per node only (the incident: a per-server cache)',
  none: 'no cache: one backend call per post',
};

/** ClientKind is what a player's client can render. */
export type ClientKind = 'new' | 'old';

/** StickerOptions size the scenario (see the flags for defaults). */
export interface StickerOptions {
  /** M: Bulwark processes. */
  nodes: number;
  /** Players in the chat, spread round-robin over the nodes. */
  clients: number;
  /** Percentage of the players on an old build (no animated stickers). */
  oldPercent: number;
  /** K: unique stickers. */
  stickers: number;
  /** Posts of each sticker; the first `min(nodes, this)` of each go out in the cold burst. */
  postsPerSticker: number;
  /** Publish calls in flight at once during the cold burst. */
  burstConcurrency: number;
  /** Seconds over which the posts after the burst are spread. */
  durationSeconds: number;
  /** Bound on waiting for the last deliveries after the last post (s). */
  settleSeconds: number;
  /** Clients of each kind that read the channel's history at the end. */
  historySample: number;
  /** The origin's service time per call (ms). */
  serviceMs: number;
  /** Origin calls allowed over K (shared) or M × K (local), as a fraction of it: races, see verdict.ts. */
  slack: number;
  modes: CacheMode[];
  redisUrl: string;
  /** protection.shedding.enabled on every node. */
  shedding: boolean;
  connectConcurrency: number;
}

/** OriginCounts is what the origin saw in one mode. */
export interface OriginCounts {
  calls: number;
  /** Distinct stickers called. */
  stickers: number;
  maxPerSticker: number;
  /** Stickers called more than once. */
  stickersCalledAgain: number;
  /** Calls answered 503 or whose caller went away (expected 0: the origin has no limit here). */
  failed: number;
}

/** KindDeliveries is what the clients of one kind received, against what they should have. */
export interface KindDeliveries {
  clients: number;
  /** Publications × clients of this kind. */
  expected: number;
  /** Deliveries carrying this kind's payload for the right sticker. */
  right: number;
  /** Deliveries carrying the other kind's payload (an old client shown a sticker, a new one the text). */
  otherKind: number;
  /** Deliveries carrying this kind's payload but another sticker's (or an unknown payload). */
  wrongSticker: number;
  /** Expected publications a client never received. */
  missing: number;
  /** Publications received more than once by a client. */
  duplicates: number;
  /** Offsets that no accepted post has (never expected). */
  unexpected: number;
  /** From the publish request sent to each delivery: posts of the cold burst, and the posts after it. */
  latencyMs: { burst: LatencySummary; after: LatencySummary };
  /** WebSocket payload bytes received per delivery (pushes, pings and replies over deliveries). */
  bytesPerDelivery: number;
}

/** HistoryCheck is what the sampled clients' history reads gave. */
export interface HistoryCheck {
  /** Clients that read it. */
  clients: number;
  /** Publications they got. */
  publications: number;
  /** Publications whose payload was not the reader's own (kind and sticker). */
  wrong: number;
  /** Reads that failed or returned fewer publications than were posted. */
  short: number;
}

/** ModeResult is one cache mode's outcome. */
export interface ModeResult {
  mode: CacheMode;
  posts: number;
  /** Posts of the cold burst (each sticker once per node, concurrently). */
  burstPosts: number;
  /** Posts that failed for good, after their retries (each is a lost publication). */
  publishErrors: Record<string, number>;
  /** Publish attempts repeated (same idempotency key) after a failure that may be temporary, by what failed. */
  publishRetries: Record<string, number>;
  /** Accepted posts whose offsets were not 1..posts, each once (the channel's stream is broken). */
  offsetAnomalies: number;
  /** Publish API latency (ms): cold burst, and the posts after it. */
  publishMs: { burst: LatencySummary; after: LatencySummary };
  origin: OriginCounts;
  deliveries: Record<ClientKind, KindDeliveries>;
  history: HistoryCheck;
  /** Clients disconnected before the end, by close code. */
  disconnects: Record<string, number>;
  /** From the first post to the last delivery (s). */
  seconds: number;
  /** Bulwark's own counters, summed over the nodes (from /metrics; empty when unread). */
  bulwark: {
    variantDeliveries: Record<string, number>;
    rpcCache: Record<string, number>;
    /** bulwark_rpc_cache_shared by stat: the shared tier's waits, wait timeouts and Redis fallbacks (each fallback or timeout may be an extra origin call). */
    rpcCacheShared: Record<string, number>;
    /** bulwark_http_sockets_closed_total by reason: HTTP connections Bulwark closed before a request was complete. */
    httpSocketsClosed: Record<string, number>;
  };
}

/** StickerResult is the whole scenario's outcome. */
export interface StickerResult {
  /** What the incident's per-server cache costs: K × M origin calls. */
  perServerCacheCalls: number;
  /** What no cache costs: one origin call per post. */
  noCacheCalls: number;
  modes: ModeResult[];
}

/** ModeRun is a mode's result and its time series. */
export interface ModeRun {
  result: ModeResult;
  originTotal: Series;
  /** Deliveries per second, every client together. */
  deliveryRate: Series;
}
