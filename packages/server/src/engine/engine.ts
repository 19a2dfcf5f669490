/**
 * Engine: the broker and presence manager a node runs on, made from `engine.*` config. The
 * memory engine is the embedded default; the Redis and PostgreSQL engines make many processes
 * and machines act as one.
 *
 * @module
 */
import type { Config } from '../config/schema.js';
import type { Broker, BrokerEventHandler } from './broker.js';
import { MemoryBroker } from './broker-memory.js';
import type { PresenceManager } from './presence.js';
import { MemoryPresenceManager } from './presence-memory.js';
import { RedisBroker } from './redis/broker-redis.js';
import { redisOptions } from '../config/redis-options.js';
import { RedisPresenceManager } from './redis/presence-redis.js';
import { PostgresBroker } from './postgres/broker-postgres.js';
import { PostgresDatabase, type PostgresEngineOptions } from './postgres/database.js';
import { PostgresPresenceManager } from './postgres/presence-postgres.js';

/** EngineEvents are what an engine reports that no caller can receive. */
export interface EngineEvents {
  /** The engine's service became reachable (true) or was lost (false), after start. */
  onStateChange(up: boolean): void;
  /** A delivery handler threw, a message was malformed, a connection failed. */
  onError(err: unknown): void;
}

/** Engine is one started-or-not pair of broker and presence manager. */
export interface Engine {
  readonly broker: Broker;
  readonly presence: PresenceManager;
  /** Where the engine's service is, without credentials (for logs); 'memory' for the memory engine. */
  readonly address: string;
  /**
   * start connects (Redis, PostgreSQL: rejects with EngineUnavailableError when unreachable;
   * the engine cannot be started again, make a new one) and begins delivering to `handler`.
   */
  start(handler: BrokerEventHandler): Promise<void>;
  /** isReady is false while the engine's service is unreachable. */
  isReady(): boolean;
}

/** createEngine makes the engine `engine.type` names (not started). */
export function createEngine(cfg: Readonly<Config>, events: EngineEvents): Engine {
  if (cfg.engine.type === 'redis') {
    const opts = { ...redisOptions(cfg.engine.redis), ...events };
    const broker = new RedisBroker(opts);
    const presence = new RedisPresenceManager(opts);
    return {
      broker,
      presence,
      address: broker.address,
      async start(handler) {
        try {
          await Promise.all([broker.start(handler), presence.start()]);
        } catch (err) {
          // Neither may be left running: the next attempt makes a new engine.
          await Promise.allSettled([broker.close(), presence.close()]);
          throw err;
        }
      },
      isReady: () => broker.isReady() && presence.isReady(),
    };
  }
  if (cfg.engine.type === 'postgresql') return postgresEngine(postgresOptions(cfg.engine.postgresql), events);
  const broker = new MemoryBroker({ onHandlerError: (err) => events.onError(err) });
  return {
    broker,
    presence: new MemoryPresenceManager(),
    address: 'memory',
    start: (handler) => broker.start(handler),
    isReady: () => true,
  };
}

/** postgresOptions maps `engine.postgresql` onto the PostgreSQL engine's options (durations in ms). */
export function postgresOptions(p: Readonly<Config['engine']['postgresql']>): PostgresEngineOptions {
  return {
    dsn: p.dsn,
    poolSize: p.pool_size,
    tablePrefix: p.table_prefix,
    connectTimeoutMs: p.connect_timeout,
    ioTimeoutMs: p.io_timeout,
    reconnectMaxDelayMs: p.reconnect_max_delay,
    pollIntervalMs: p.poll_interval,
    catchUpBatch: p.catch_up_batch,
    cleanupIntervalMs: p.cleanup_interval,
  };
}

/**
 * postgresEngine is a broker and presence manager sharing one pool: start migrates the schema
 * once, then listens; readiness is the broker's (its LISTEN connection).
 */
export function postgresEngine(options: PostgresEngineOptions, events: EngineEvents): Engine {
  const database = new PostgresDatabase(options, events.onError);
  const broker = new PostgresBroker({ database, ...events });
  const presence = new PostgresPresenceManager({ database, isReady: () => broker.isReady(), onError: events.onError });
  return {
    broker,
    presence,
    address: database.address,
    async start(handler) {
      try {
        await database.start();
        await broker.start(handler);
      } catch (err) {
        await Promise.allSettled([broker.close(), presence.close()]);
        throw err;
      }
    },
    isReady: () => broker.isReady(),
  };
}

/** injectedEngine wraps a broker and presence manager given to the node (library use, tests). */
export function injectedEngine(broker: Broker, presence: PresenceManager): Engine {
  return {
    broker,
    presence,
    address: 'injected',
    start: (handler) => broker.start(handler),
    isReady: () => broker.isReady?.() ?? true,
  };
}
