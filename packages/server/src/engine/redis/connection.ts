/**
 * ioredis clients for the Redis engine, set up to fail fast: while Redis is down, a command is
 * rejected at once (or after `commandTimeoutMs` at most) instead of waiting in a queue, so a
 * publish or history read turns into a prompt, temporary error for the client instead of a
 * hang. Reconnection runs in the background with a capped backoff.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import type { ClusterOptions, RedisOptions } from 'ioredis';
import { NoAnswerError, toEngineError } from './errors.js';
import { resolveRedisOptions } from '../../config/redis-options.js';
import type { RedisEngineOptions, ResolvedRedisOptions } from '../../config/redis-options.js';

/** RedisClient is a connection to standalone/sentinel Redis or to a cluster. */
export type RedisClient = Redis | Cluster;

/** RedisClients are the two connections a broker needs. */
export interface RedisClients {
  readonly options: ResolvedRedisOptions;
  /** Commands and scripts. No offline queue: fails fast while disconnected. */
  readonly command: RedisClient;
  /**
   * Pub/sub only (a connection in subscribe mode cannot run other commands). In cluster mode,
   * channels use sharded pub/sub, one connection per shard, managed by ioredis.
   */
  readonly subscriber: RedisClient;
}

/**
 * createRedisClients builds, without connecting, the command and subscriber clients for
 * standalone, sentinel or cluster Redis as `opts` says. Connect them with {@link connectClient}.
 */
export function createRedisClients(opts: RedisEngineOptions = {}): RedisClients {
  const options = resolveRedisOptions(opts);
  return { options, command: createClient(options, 'command'), subscriber: createClient(options, 'subscriber') };
}

/** createClient builds one not yet connected client of the given role. */
export function createClient(o: ResolvedRedisOptions, role: 'command' | 'subscriber'): RedisClient {
  const node: RedisOptions = {
    username: o.user,
    password: o.password,
    tls: o.tls ? {} : undefined,
    connectionName: `bulwark-${role}`,
    connectTimeout: o.connectTimeoutMs,
    // Bounds a command that was sent but never answered (half-open connection).
    commandTimeout: o.commandTimeoutMs,
    // Reject in-flight commands as soon as the connection closes, and never replay them on
    // reconnect: a replayed publish script could append the same publication twice.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // The broker resubscribes its own list of channels on reconnect (see RedisBroker), so a
    // channel unsubscribed while Redis was down is not brought back.
    autoResubscribe: false,
  };
  if (o.mode === 'cluster') {
    const cluster: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: (times) => backoff(times, o.maxReconnectDelayMs),
      slotsRefreshTimeout: o.connectTimeoutMs,
      // Channels go to the shard owning their hash slot (SSUBSCRIBE), so a publication travels
      // only inside its shard instead of over the whole cluster bus.
      shardedSubscribers: role === 'subscriber',
      redisOptions: node,
    };
    return new Cluster(
      o.hosts.map((h) => ({ host: h.host, port: h.port })),
      cluster,
    );
  }
  const standalone: RedisOptions = {
    ...node,
    db: o.db,
    lazyConnect: true,
    enableOfflineQueue: false,
    retryStrategy: (times) => backoff(times, o.maxReconnectDelayMs),
    // After a failover the old master turns replica and answers READONLY: reconnect, so that
    // sentinel resolves the new master. The failed command itself is not replayed.
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 1 : false),
  };
  if (o.mode === 'sentinel') {
    const s = o.sentinel!;
    return new Redis({
      ...standalone,
      name: s.masterName,
      sentinels: o.hosts.map((h) => ({ host: h.host, port: h.port })),
      sentinelUsername: s.user,
      sentinelPassword: s.password,
      enableTLSForSentinelMode: o.tls,
      sentinelRetryStrategy: (times) => backoff(times, o.maxReconnectDelayMs),
    });
  }
  return new Redis({ ...standalone, host: o.hosts[0]!.host, port: o.hosts[0]!.port });
}

/** backoff is the reconnect delay after `times` failed attempts: 50 ms doubling, capped. */
function backoff(times: number, cap: number): number {
  return Math.min(50 * 2 ** Math.min(times, 16), cap);
}

/**
 * connectClient connects a client made by {@link createClient}. If Redis is not ready within
 * the connect timeout (plus a little for the ready check), the client is disconnected, so no
 * reconnect timer is left behind, and an EngineUnavailableError is thrown.
 */
export async function connectClient(client: RedisClient, o: ResolvedRedisOptions): Promise<void> {
  try {
    await withDeadline(client.connect(), 2 * o.connectTimeoutMs);
  } catch (err) {
    client.disconnect();
    throw toEngineError(err, o.description);
  }
}

/** closeClient quits gracefully when connected (pending replies arrive first), else drops the connection. */
export async function closeClient(client: RedisClient, o: ResolvedRedisOptions): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  try {
    await withDeadline(client.quit(), o.commandTimeoutMs);
  } catch {
    client.disconnect();
  }
}

/** How many channels one SUBSCRIBE carries when resubscribing after a reconnect. */
const RESUBSCRIBE_BATCH = 512;

/**
 * subscribeAll subscribes `subscriber` to every name in batches of {@link RESUBSCRIBE_BATCH}
 * (one SUBSCRIBE of a hundred thousand channels would be one huge command): how both Redis
 * brokers renew their pub/sub channels after the subscriber connection came back.
 */
export function subscribeAll(subscriber: RedisClient, names: readonly string[]): Promise<unknown> {
  const batches: Promise<unknown>[] = [];
  for (let i = 0; i < names.length; i += RESUBSCRIBE_BATCH) {
    batches.push(subscriber.subscribe(...names.slice(i, i + RESUBSCRIBE_BATCH)));
  }
  return Promise.all(batches);
}

/**
 * withDeadline rejects with a {@link NoAnswerError} (which {@link toEngineError} maps) when
 * `promise` has not settled within `ms`. Standalone commands are bounded by ioredis'
 * commandTimeout already; a cluster command can be retried across redirections and reconnects
 * for much longer, so cluster calls (and connecting) get this outer bound.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NoAnswerError(ms)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** LuaScript is a script's source and its SHA-1, the name Redis caches it under. */
export interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

/** lua makes a {@link LuaScript} from its source. */
export function lua(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * evalScript runs a script by SHA (one small request) and falls back to sending its source when
 * Redis does not know it yet (first use, or after a restart or failover emptied the cache).
 */
export async function evalScript(
  client: RedisClient,
  script: LuaScript,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await client.evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err;
    return client.eval(script.source, keys.length, ...keys, ...args);
  }
}

/**
 * watchClient reports a client's availability: `onUp` when it becomes ready, `onDown` when its
 * connection is lost. It also takes the client's 'error' events (which would otherwise crash the
 * process as unhandled) and hands the first one of each outage to `onError`: ioredis repeats
 * the error on every reconnect attempt, and one log line per outage is enough.
 */
export function watchClient(
  client: RedisClient,
  handlers: { onUp: () => void; onDown: () => void; onError: (err: unknown) => void },
): void {
  let reported = false;
  const onError = (err: unknown): void => {
    if (reported) return;
    reported = true;
    handlers.onError(err);
  };
  client.on('error', onError);
  client.on('node error', onError);
  client.on('ready', () => {
    reported = false;
    handlers.onUp();
  });
  for (const event of ['close', 'reconnecting', 'end']) client.on(event, () => handlers.onDown());
}
