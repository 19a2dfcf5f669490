/**
 * Engine: the broker and presence manager a node runs on, made from `engine.*` config. The
 * memory engine is the embedded default; the Redis and PostgreSQL engines make many processes
 * and machines act as one. With `broker.enabled` the engine's broker keeps history only and
 * NATS or Redis pub/sub fans out (composed-broker.ts, fanout-choice.ts), as Centrifugo v6
 * chooses a broker apart from the engine; presence_manager is added in combined-engine.ts.
 *
 * @module
 */
import type { Config } from '../config/schema.js';
import type { Broker, BrokerEventHandler } from './broker.js';
import { MemoryBroker } from './broker-memory.js';
import type { MapBroker } from './map-broker.js';
import { MemoryMapBroker } from './map-broker-memory.js';
import type { PresenceManager } from './presence.js';
import { MemoryPresenceManager } from './presence-memory.js';
import { RedisBroker } from './redis/broker-redis.js';
import { RedisMapBroker } from './redis/map-broker-redis.js';
import { redisMapOptions, redisOptions } from '../config/redis-options.js';
import { RedisPresenceManager } from './redis/presence-redis.js';
import { PostgresBroker } from './postgres/broker-postgres.js';
import { PostgresDatabase, type PostgresEngineOptions } from './postgres/database.js';
import { PostgresPresenceManager } from './postgres/presence-postgres.js';
import { PostgresMapBroker, type PostgresMapBrokerOptions } from './postgres/map-broker-postgres.js';
import { ComposedBroker } from './composed-broker.js';
import { chosenFanout } from './fanout-choice.js';

/** EngineEvents are what an engine reports that no caller can receive. */
export interface EngineEvents {
  /** The engine's service became reachable (true) or was lost (false), after start. */
  onStateChange(up: boolean): void;
  /** A delivery handler threw, a message was malformed, a connection failed. */
  onError(err: unknown): void;
}

/** Engine is one started-or-not set of broker, presence manager and map broker. */
export interface Engine {
  readonly broker: Broker;
  readonly presence: PresenceManager;
  /** The state of map channels (map subscriptions). */
  readonly map: MapBroker;
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

/**
 * SeparatePresence is a presence manager apart from the engine (`presence_manager`), with its own
 * service to start and watch; an engine given one makes no presence manager of its own.
 */
export interface SeparatePresence extends PresenceManager {
  /** Where its service is, without credentials (for logs). */
  readonly address: string;
  /** start connects (rejects with EngineUnavailableError when unreachable; not reusable then). */
  start(): Promise<void>;
  isReady(): boolean;
}

/** HistoryBroker is a broker that can say where its service is and whether it is reachable. */
type HistoryBroker = Broker & { readonly address: string; isReady(): boolean };

/** WrapBroker puts a fan-out in front of the engine's broker, or leaves it as it is. */
type WrapBroker = (history: HistoryBroker) => HistoryBroker;

/** brokerWrapper returns what `broker.*` config asks for: a fan-out (NATS, Redis pub/sub), or nothing. */
export function brokerWrapper(cfg: Readonly<Config>, events: EngineEvents): WrapBroker {
  if (!cfg.broker.enabled) return (history) => history;
  return (history) => {
    const { fanout, ...order } = chosenFanout(cfg.broker);
    return new ComposedBroker(history, fanout, { ...order, ...events });
  };
}

/**
 * createEngine makes the engine `engine.type` names (not started), with the broker `broker.*`
 * names, and with `separate` (presence_manager, combined-engine.ts) as its presence manager
 * instead of one of its own: a Redis engine then opens no presence connection it would not use.
 */
export function createEngine(cfg: Readonly<Config>, events: EngineEvents, separate?: SeparatePresence): Engine {
  const wrap = brokerWrapper(cfg, events);
  if (cfg.engine.type === 'redis') {
    const opts = { ...redisOptions(cfg.engine.redis), ...events };
    const broker = wrap(new RedisBroker(opts));
    const presence = separate ?? new RedisPresenceManager(opts);
    const map = new RedisMapBroker({ ...opts, ...redisMapOptions(cfg.engine.redis) });
    return {
      broker,
      presence,
      map,
      address: withPresenceAddress(broker.address, separate),
      async start(handler) {
        try {
          await Promise.all([broker.start(handler), presence.start(), map.start(handler)]);
        } catch (err) {
          // None may be left running: the next attempt makes a new engine.
          await Promise.allSettled([broker.close(), presence.close(), map.close()]);
          throw err;
        }
      },
      isReady: () => broker.isReady() && presence.isReady() && map.isReady(),
    };
  }
  if (cfg.engine.type === 'postgresql') {
    const p = cfg.engine.postgresql;
    return postgresEngine(postgresOptions(p), events, wrap, postgresMapOptions(p), separate);
  }
  const onHandlerError = (err: unknown) => events.onError(err);
  const broker = new MemoryBroker({ onHandlerError });
  const map = new MemoryMapBroker({ onHandlerError });
  return {
    broker,
    presence: separate ?? new MemoryPresenceManager(),
    map,
    address: withPresenceAddress('memory', separate),
    start: async (handler) => {
      await broker.start(handler);
      await map.start(handler);
      await separate?.start();
    },
    isReady: () => separate?.isReady() ?? true,
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

/** postgresMapOptions maps the map broker's own `engine.postgresql.map_*` keys onto its options. */
export function postgresMapOptions(
  p: Pick<Config['engine']['postgresql'], 'map_cleanup_interval' | 'map_cleanup_batch_size'>,
): PostgresMapBrokerOptions {
  return { mapCleanupIntervalMs: p.map_cleanup_interval, mapCleanupBatchSize: p.map_cleanup_batch_size };
}

/**
 * postgresEngine is a broker, presence manager and map broker sharing one pool: start migrates
 * the schema once, then each listens (the broker and the map broker hold one LISTEN connection
 * each); the engine is ready while both listen.
 */
export function postgresEngine(
  options: PostgresEngineOptions,
  events: EngineEvents,
  wrap: WrapBroker = (history) => history,
  mapOptions: PostgresMapBrokerOptions = {},
  separate?: SeparatePresence,
): Engine {
  const database = new PostgresDatabase(options, events.onError);
  const broker = wrap(new PostgresBroker({ database, ...events }));
  const presence =
    separate ?? new PostgresPresenceManager({ database, isReady: () => broker.isReady(), onError: events.onError });
  const map = new PostgresMapBroker({ ...mapOptions, database, ...events });
  return {
    broker,
    presence,
    map,
    address: withPresenceAddress(broker.address, separate),
    async start(handler) {
      try {
        await database.start();
        const engine = async (): Promise<void> => {
          await broker.start(handler);
          await map.start(handler);
        };
        await Promise.all([engine(), separate?.start()]);
      } catch (err) {
        await Promise.allSettled([broker.close(), presence.close(), map.close()]);
        throw err;
      }
    },
    isReady: () => broker.isReady() && map.isReady() && (separate?.isReady() ?? true),
  };
}

/** withPresenceAddress adds a separate presence manager's address to the engine's (for logs). */
function withPresenceAddress(address: string, separate: SeparatePresence | undefined): string {
  return separate === undefined ? address : `${address}, presence ${separate.address}`;
}

/**
 * injectedEngine wraps a broker and presence manager given to the node (library use, tests),
 * with the given map broker or a memory one.
 */
export function injectedEngine(broker: Broker, presence: PresenceManager, map?: MapBroker): Engine {
  const maps = map ?? new MemoryMapBroker();
  return {
    broker,
    presence,
    map: maps,
    address: 'injected',
    start: async (handler) => {
      await broker.start(handler);
      await maps.start(handler);
    },
    isReady: () => broker.isReady?.() ?? true,
  };
}
