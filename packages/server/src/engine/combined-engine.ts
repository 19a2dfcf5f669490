/**
 * The engine a node runs on, combined as config asks, as Centrifugo v6 chooses a broker and a
 * presence manager apart from the engine: engine.ts's engine (`engine.type`, with the fan-out
 * `broker.*` names in front of its history), and with `presence_manager.enabled` online
 * presence in a Redis or PostgreSQL of its own, e.g. a PostgreSQL engine with presence in
 * Redis. The node is ready while every part is (docs/ENGINES.md).
 *
 * @module
 */
import type { Config } from '../config/schema.js';
import { redisOptions, resolveRedisOptions } from '../config/redis-options.js';
import { createEngine, type Engine, type EngineEvents } from './engine.js';
import { startCleanup } from './postgres/cleanup.js';
import { PostgresDatabase } from './postgres/database.js';
import { PostgresPresenceManager } from './postgres/presence-postgres.js';
import type { PresenceManager } from './presence.js';
import { RedisPresenceManager } from './redis/presence-redis.js';

/** SeparatePresence is a presence manager apart from the engine, with its own life cycle. */
export interface SeparatePresence extends PresenceManager {
  /** Where its service is, without credentials (for logs). */
  readonly address: string;
  /** start connects (rejects with EngineUnavailableError when unreachable; not reusable then). */
  start(): Promise<void>;
  isReady(): boolean;
}

/** createCombinedEngine makes the engine config asks for (not started); see the module comment. */
export function createCombinedEngine(cfg: Readonly<Config>, events: EngineEvents): Engine {
  const engine = createEngine(cfg, events);
  if (!cfg.presence_manager.enabled) return engine;
  return withPresence(engine, separatePresence(cfg.presence_manager, events));
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

/**
 * withPresence gives `engine` the presence manager `presence`: started with it, closed with it
 * (the engine's own presence manager too, which nothing uses then), ready while both are.
 */
export function withPresence(engine: Engine, presence: SeparatePresence): Engine {
  const closeBoth = async (): Promise<void> => {
    await Promise.allSettled([presence.close(), engine.presence.close()]);
  };
  const combined: PresenceManager = {
    addPresence: (channel, info, ttlMs) => presence.addPresence(channel, info, ttlMs),
    removePresence: (channel, clientId, userId) => presence.removePresence(channel, clientId, userId),
    presence: (channel) => presence.presence(channel),
    presenceStats: (channel) => presence.presenceStats(channel),
    isReady: () => presence.isReady(),
    close: closeBoth,
  };
  return {
    broker: engine.broker,
    presence: combined,
    map: engine.map,
    address: `${engine.address}, presence ${presence.address}`,
    async start(handler) {
      try {
        await Promise.all([engine.start(handler), presence.start()]);
      } catch (err) {
        // Neither may be left running: the next attempt makes a new engine.
        await Promise.allSettled([engine.broker.close(), engine.map.close(), closeBoth()]);
        throw err;
      }
    },
    isReady: () => engine.isReady() && presence.isReady(),
  };
}
