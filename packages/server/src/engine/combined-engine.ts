/**
 * The engine a node runs on, combined as config asks, as Centrifugo v6 chooses a broker and a
 * presence manager apart from the engine: engine.ts's engine (`engine.type`, with the fan-out
 * `broker.*` names in front of its history), and with `presence_manager.enabled` online
 * presence in a Redis or PostgreSQL of its own, e.g. a PostgreSQL engine with presence in
 * Redis; the engine then makes no presence manager of its own. The node is ready while every
 * part is (docs/ENGINES.md).
 *
 * @module
 */
import type { Config } from '../config/schema.js';
import { redisOptions, resolveRedisOptions } from '../config/redis-options.js';
import { createEngine, type Engine, type EngineEvents, type SeparatePresence } from './engine.js';
import { startCleanup } from './postgres/cleanup.js';
import { PostgresDatabase } from './postgres/database.js';
import { PostgresPresenceManager } from './postgres/presence-postgres.js';
import { RedisPresenceManager } from './redis/presence-redis.js';

/** createCombinedEngine makes the engine config asks for (not started); see the module comment. */
export function createCombinedEngine(cfg: Readonly<Config>, events: EngineEvents): Engine {
  const pm = cfg.presence_manager;
  return createEngine(cfg, events, pm.enabled ? separatePresence(pm, events) : undefined);
}

/** separatePresence makes the presence manager `presence_manager.type` names (not started). */
export function separatePresence(pm: Readonly<Config['presence_manager']>, events: EngineEvents): SeparatePresence {
  if (pm.type === 'redis') {
    const opts = redisOptions(pm.redis);
    const manager = new RedisPresenceManager({ ...opts, ...events });
    return Object.assign(manager, { address: resolveRedisOptions(opts).description });
  }
  const p = pm.postgresql;
  const database = new PostgresDatabase(
    {
      dsn: p.dsn,
      poolSize: p.pool_size,
      tablePrefix: p.table_prefix,
      connectTimeoutMs: p.connect_timeout,
      ioTimeoutMs: p.io_timeout,
      reconnectMaxDelayMs: p.reconnect_max_delay,
      cleanupIntervalMs: p.cleanup_interval,
    },
    events.onError,
  );
  return postgresPresence(database, events.onError);
}

/**
 * postgresPresence is a PostgreSQL presence manager on a database of its own: start migrates
 * the schema and begins the periodic cleanup of expired entries. It has no connection held
 * open to watch, so it is ready once started; while PostgreSQL is down its calls fail with
 * temporary errors (EngineUnavailableError).
 */
export function postgresPresence(database: PostgresDatabase, onError: (err: unknown) => void): SeparatePresence {
  let started = false;
  let stopCleanup = (): void => undefined;
  const manager = new PostgresPresenceManager({ database, isReady: () => started, onError });
  const close = manager.close.bind(manager);
  return Object.assign(manager, {
    address: database.address,
    async start(): Promise<void> {
      await database.start();
      stopCleanup = startCleanup(database, onError);
      started = true;
    },
    async close(): Promise<void> {
      started = false;
      stopCleanup();
      await close();
    },
  });
}
