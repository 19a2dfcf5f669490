/**
 * Cacheable RPC (incident 2: a cache warmed from the database after a deploy would have sent
 * ~150k lookups to a database tuned for 2k/s). RPC methods listed in `proxy.cache.rpc` are
 * answered from a {@link ProtectedCache}: concurrent calls with the same arguments make one
 * backend call (single flight), answers expire with jitter, the backend's "not found"/"denied"
 * errors (the codes listed as negative) are cached with their own TTL, stale answers are served
 * while a refresh runs or while the backend fails, and — with the Redis engine — a shared tier
 * in Redis lets a cold cluster of M nodes make about one backend call per key instead of M.
 *
 * @module
 */
import type { Config } from '../config/schema.js';
import { ProtocolError } from '../protocol/codes.js';
import type { RawJSON } from '../protocol/types.js';
import { found, ProtectedCache, type SharedTier } from '../cache/protected-cache.js';

/** CachedRpc is a backend RPC answer as cached: its data, or the error the backend answered. */
export interface CachedRpc {
  data: RawJSON | null;
  error?: { code: number; message: string };
}

type Rule = Config['proxy']['cache']['rpc'][number];

/** RpcCacheMetrics is where the caches' counters go (implemented by Metrics). */
export interface RpcCacheMetrics {
  setRpcCacheStats(method: string, stats: object): void;
  setRpcCacheSharedStats(stats: object): void;
}

/** RpcCache answers the cacheable RPC methods of one node. */
export class RpcCache {
  readonly #rules = new Map<string, { rule: Rule; cache: ProtectedCache<CachedRpc> }>();
  readonly #shared: SharedTier<CachedRpc> | undefined;

  /** `shared` is the Redis tier when the cluster shares one (undefined: per node only). */
  constructor(cfg: Config['proxy']['cache'], shared: SharedTier<CachedRpc> | undefined) {
    this.#shared = shared;
    for (const rule of cfg.rpc) {
      const cache = new ProtectedCache<CachedRpc>({
        ttlMs: rule.ttl,
        negativeTtlMs: rule.negative_ttl,
        jitter: cfg.jitter,
        staleWhileRevalidateMs: cfg.stale_while_revalidate,
        staleIfErrorMs: cfg.stale_if_error,
        maxEntries: cfg.max_entries,
        shared,
      });
      this.#rules.set(rule.method, { rule, cache });
    }
  }

  /** cacheable tells whether `method` is answered through the cache. */
  cacheable(method: string): boolean {
    return this.#rules.has(method);
  }

  /**
   * call answers `method` for `user` with `data` from the cache, loading it with `load` (the
   * backend RPC proxy call) on a miss. A cached backend error is thrown again as it was.
   */
  async call(
    method: string,
    user: string,
    data: unknown,
    load: () => Promise<RawJSON | undefined>,
  ): Promise<RawJSON | undefined> {
    const entry = this.#rules.get(method);
    if (entry === undefined) return load();
    const { rule, cache } = entry;
    // The arguments, and the user when answers differ per user, make the key. Method first:
    // a hash tag in Redis groups nothing here, every key is its own slot.
    const key = `rpc:${method}:${rule.per_user ? user : '*'}:${JSON.stringify(data ?? null)}`;
    const answer = await cache.get(key, async () => {
      try {
        return found<CachedRpc>({ data: (await load()) ?? null });
      } catch (err) {
        // "Not found" / "denied" answers of the backend are answers too: cached, shorter.
        if (err instanceof ProtocolError && rule.negative_codes.includes(err.code)) {
          return found<CachedRpc>({ data: null, error: { code: err.code, message: err.message } }, rule.negative_ttl);
        }
        throw err;
      }
    });
    if (answer.kind !== 'value') return undefined;
    const { data: out, error } = answer.value;
    if (error !== undefined) throw new ProtocolError(error.code, error.message, false);
    return out ?? undefined;
  }

  /** collect copies the caches' counters into the metrics (called at each scrape). */
  collect(metrics: RpcCacheMetrics): void {
    for (const [method, { cache }] of this.#rules) metrics.setRpcCacheStats(method, cache.stats());
    // The shared tier is one per node, used by every method: its counters are the node's.
    const shared = this.#shared?.stats?.();
    if (shared) metrics.setRpcCacheSharedStats(shared);
  }

  /** close aborts the loads in progress. */
  close(): void {
    for (const { cache } of this.#rules.values()) cache.close();
  }
}
