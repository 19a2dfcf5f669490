/**
 * The node's way to the game backend, built from config: which proxy handles each event, the
 * HTTP proxy client behind the protections, and the RPC cache with its shared Redis tier
 * (proxy.cache.shared with the Redis engine), connected once the engine started.
 *
 * @module
 */
import type { Logger } from 'pino';
import { RedisTier } from '../cache/redis-tier.js';
import type { Config } from '../config/schema.js';
import { connectClient, createClient, type RedisClient } from '../engine/redis/connection.js';
import { redisOptions, resolveRedisOptions } from '../config/redis-options.js';
import type { Metrics } from '../metrics.js';
import type { BurstLog } from '../protection/burst-log.js';
import type { KillSwitches } from '../protection/kill-switches.js';
import { BackendProxy } from '../proxy/backend-proxy.js';
import { HttpProxyClient, type ProxyGuard } from '../proxy/http-proxy-client.js';
import { ProtectedGuard } from '../proxy/protected-guard.js';
import { ProxyResolver } from '../proxy/proxies.js';
import { RpcCache } from '../proxy/rpc-cache.js';
import { version } from '../version.js';

/** BackendContext is what the backend parts need from their node. */
export interface BackendContext {
  readonly config: Readonly<Config>;
  readonly metrics: Metrics;
  readonly burstLog: BurstLog;
  readonly log: Logger;
  /** `proxy` kill switches stop calls to their target. */
  readonly killSwitches: KillSwitches;
}

/** Backend holds one node's proxies to the backend and its RPC cache. */
export class Backend {
  /** Which backend proxy handles an event. */
  readonly proxies: ProxyResolver;
  /** Sends proxy events to the backend over HTTP. */
  readonly proxy: BackendProxy;
  /** Cacheable RPC methods (proxy.cache.rpc). */
  readonly rpcCache: RpcCache;
  readonly #ctx: BackendContext;
  /** The shared cache tier's Redis connection (proxy.cache.shared with the Redis engine). */
  readonly #cacheRedis: RedisClient | undefined;

  /** `guard` replaces the protections around every backend call (tests, embedding). */
  constructor(ctx: BackendContext, guard?: ProxyGuard) {
    this.#ctx = ctx;
    const cfg = ctx.config;
    this.proxies = new ProxyResolver(cfg);
    this.proxy = new BackendProxy(
      new HttpProxyClient({
        // Every backend call through the protections, unless a guard is injected (tests, embedding).
        guard: guard ?? new ProtectedGuard(ctx).guard,
        maxResponseBytes: cfg.proxy.max_response_size,
        observer: ctx.metrics,
        burstLog: ctx.burstLog,
        version,
      }),
    );
    // The shared cache tier uses its own Redis connection, connected once the engine is up.
    const shared = cfg.engine.type === 'redis' && cfg.proxy.cache.shared && cfg.proxy.cache.rpc.length > 0;
    if (shared) this.#cacheRedis = createClient(resolveRedisOptions(redisOptions(cfg.engine.redis)), 'command');
    this.rpcCache = new RpcCache(
      cfg.proxy.cache,
      this.#cacheRedis &&
        new RedisTier({
          client: this.#cacheRedis,
          prefix: `${cfg.engine.redis.prefix}.cache`,
          waitTimeoutMs: cfg.proxy.cache.shared_wait,
          commandTimeoutMs: cfg.proxy.cache.shared_timeout,
        }),
    );
    ctx.metrics.setRpcCacheSource(() => this.rpcCache.collect(ctx.metrics));
  }

  /** connectCache connects the shared cache tier (once the engine started). */
  connectCache(): void {
    if (this.#cacheRedis === undefined) return;
    // Until it connects, the cache tier falls back to the backend (and counts it).
    connectClient(this.#cacheRedis, resolveRedisOptions(redisOptions(this.#ctx.config.engine.redis))).catch(
      (err: unknown) => this.#ctx.log.warn({ err }, 'rpc cache: shared tier not connected; nodes cache on their own'),
    );
  }

  /** close closes the cache and its Redis connection. */
  close(): void {
    this.rpcCache.close();
    this.#cacheRedis?.disconnect();
  }
}
