/**
 * Options of the Redis engine (broker, presence manager, shared cache tier): what they are,
 * their defaults, their check ({@link resolveRedisOptions}, naming the bad option in a
 * TypeError), and how `engine.redis` config maps onto them ({@link redisOptions}).
 *
 * They live in config/ and not in engine/ because the config check at load needs them
 * ({@link redisConfigProblem}: a bad Redis setting is a config error naming the key, not a
 * failure at start), and config sits below the engine. The config section is read through a
 * structural type ({@link RedisSectionInput}), as config/proxy-rules.ts does, so this module
 * does not depend on the schema that calls it.
 *
 * @module
 */

/** RedisSentinelOptions selects a master through Redis Sentinel. */
export interface RedisSentinelOptions {
  /** Name of the monitored master (sentinel.conf `sentinel monitor <name> …`). Required. */
  masterName: string;
  /** Sentinel addresses, `host:port` or `redis://host:port`. At least one. */
  addresses: string[];
  /** Password of the sentinels themselves (not of the master). Default: none. */
  password?: string;
  /** ACL user of the sentinels. Default: none. */
  user?: string;
}

/** RedisClusterOptions connects to a Redis Cluster (Redis ≥ 7: channels use sharded pub/sub). */
export interface RedisClusterOptions {
  /** Seed node addresses, `host:port` or `redis://host:port`; the rest are discovered. At least one. */
  addresses: string[];
}

/**
 * RedisEngineOptions tells the Redis engine where Redis is and how to talk to it. Give at most
 * one of `addresses`, `sentinel` and `cluster`; with none, the engine uses
 * `redis://127.0.0.1:6379`.
 */
export interface RedisEngineOptions {
  /**
   * Standalone Redis, as one `redis://[user:password@]host:port[/db]` URL (`rediss://` turns TLS
   * on). A list for the config schema's sake; client-side sharding over several standalone
   * servers is not supported, so it must hold exactly one address.
   */
  addresses?: string[];
  /** Find the master through Sentinel instead of a fixed address. */
  sentinel?: RedisSentinelOptions;
  /** Connect to a Redis Cluster instead of a single server. */
  cluster?: RedisClusterOptions;
  /** ACL user name (Redis ≥ 6). Overrides the user of an address URL. Default: none. */
  user?: string;
  /** Password (AUTH). Overrides the password of an address URL. Default: none. */
  password?: string;
  /** Database number; must be 0 with `cluster`. Overrides the `/db` of an address URL. Default: 0. */
  db?: number;
  /** Use TLS to Redis (and to the sentinels). Default: false, or true for a `rediss://` URL. */
  tls?: boolean;
  /**
   * Prefix of every key and pub/sub channel name, so several Bulwark deployments (or tests) can
   * share one Redis. Must not contain `{` or `}` (they would break the cluster hash tags).
   * Default: "bulwark".
   */
  prefix?: string;
  /** How long to wait for a connection to be ready, at start and on each reconnect (ms). Default: 1000. */
  connectTimeoutMs?: number;
  /** How long one command may wait for its reply before it fails as unavailable (ms). Default: 1000. */
  commandTimeoutMs?: number;
  /** Upper bound of the reconnect backoff while Redis is down (ms). Default: 2000. */
  maxReconnectDelayMs?: number;
}

/** Which kind of Redis deployment the options describe. */
export type RedisMode = 'standalone' | 'sentinel' | 'cluster';

/** ResolvedRedisOptions are checked {@link RedisEngineOptions} with every default filled in. */
export interface ResolvedRedisOptions {
  readonly mode: RedisMode;
  /** Standalone address, sentinel addresses or cluster seed nodes, parsed. */
  readonly hosts: readonly HostPort[];
  readonly sentinel: Readonly<RedisSentinelOptions> | undefined;
  readonly user: string | undefined;
  readonly password: string | undefined;
  readonly db: number;
  readonly tls: boolean;
  readonly prefix: string;
  readonly connectTimeoutMs: number;
  readonly commandTimeoutMs: number;
  readonly maxReconnectDelayMs: number;
  /** Where Redis is, for messages: no credentials, e.g. "redis://127.0.0.1:6379". */
  readonly description: string;
}

/** HostPort is one parsed server address. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Default values of {@link RedisEngineOptions}. */
export const redisDefaults = {
  address: 'redis://127.0.0.1:6379',
  prefix: 'bulwark',
  connectTimeoutMs: 1000,
  commandTimeoutMs: 1000,
  maxReconnectDelayMs: 2000,
} as const;

/**
 * resolveRedisOptions checks `opts` and returns them with defaults filled in. It throws a
 * TypeError naming the option when an option is invalid or options cannot be combined.
 */
export function resolveRedisOptions(opts: RedisEngineOptions = {}): ResolvedRedisOptions {
  const given = (['addresses', 'sentinel', 'cluster'] as const).filter((k) => opts[k] !== undefined);
  if (given.length > 1) throw new TypeError(`redis: options ${given.join(' and ')} cannot be combined; give one`);

  const prefix = opts.prefix ?? redisDefaults.prefix;
  if (prefix === '' || /[{}]/.test(prefix)) throw new TypeError('redis: prefix must be non-empty without "{" or "}"');
  const connectTimeoutMs = positive('connectTimeoutMs', opts.connectTimeoutMs ?? redisDefaults.connectTimeoutMs);
  const commandTimeoutMs = positive('commandTimeoutMs', opts.commandTimeoutMs ?? redisDefaults.commandTimeoutMs);
  const maxReconnectDelayMs = positive(
    'maxReconnectDelayMs',
    opts.maxReconnectDelayMs ?? redisDefaults.maxReconnectDelayMs,
  );
  const common = { prefix, connectTimeoutMs, commandTimeoutMs, maxReconnectDelayMs };

  if (opts.sentinel !== undefined) {
    const { masterName, addresses } = opts.sentinel;
    if (masterName === '') throw new TypeError('redis: sentinel.masterName must not be empty');
    const hosts = nonEmpty('sentinel.addresses', addresses).map((a) => parseHost('sentinel.addresses', a));
    return {
      mode: 'sentinel',
      hosts,
      sentinel: opts.sentinel,
      user: opts.user,
      password: opts.password,
      db: database('db', opts.db ?? 0),
      tls: opts.tls ?? false,
      ...common,
      description: `sentinel master "${masterName}" via ${hosts.map(show).join(',')}`,
    };
  }
  if (opts.cluster !== undefined) {
    const hosts = nonEmpty('cluster.addresses', opts.cluster.addresses).map((a) => parseHost('cluster.addresses', a));
    if ((opts.db ?? 0) !== 0) throw new TypeError('redis: db must be 0 with cluster (Redis Cluster has one database)');
    return {
      mode: 'cluster',
      hosts,
      sentinel: undefined,
      user: opts.user,
      password: opts.password,
      db: 0,
      tls: opts.tls ?? false,
      ...common,
      description: `redis cluster ${hosts.map(show).join(',')}`,
    };
  }

  const addresses = opts.addresses ?? [redisDefaults.address];
  if (addresses.length !== 1) {
    throw new TypeError('redis: addresses must hold exactly one address (client-side sharding is not supported)');
  }
  const url = parseUrl('addresses', addresses[0]!);
  const tls = opts.tls ?? url.protocol === 'rediss:';
  return {
    mode: 'standalone',
    hosts: [hostOf(url)],
    sentinel: undefined,
    user: opts.user ?? (url.username === '' ? undefined : decodeURIComponent(url.username)),
    password: opts.password ?? (url.password === '' ? undefined : decodeURIComponent(url.password)),
    db: database('db', opts.db ?? (url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0)),
    tls,
    ...common,
    description: `${tls ? 'rediss' : 'redis'}://${show(hostOf(url))}`,
  };
}

/** parseHost accepts `host:port` or a `redis://` / `rediss://` URL. */
function parseHost(option: string, address: string): HostPort {
  return hostOf(parseUrl(option, address.includes('://') ? address : `redis://${address}`));
}

function parseUrl(option: string, address: string): URL {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw new TypeError(`redis: ${option}: "${address}" is not a redis:// URL or host:port`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new TypeError(`redis: ${option}: "${address}" must use redis:// or rediss://`);
  }
  return url;
}

function hostOf(url: URL): HostPort {
  // URL keeps IPv6 hosts in brackets; the socket API wants them bare.
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? 6379 : Number(url.port) };
}

function show(h: HostPort): string {
  return h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`;
}

function positive(option: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`redis: ${option} must be a positive number`);
  return value;
}

function database(option: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new TypeError(`redis: ${option} must be a non-negative integer`);
  return value;
}

function nonEmpty(option: string, list: string[]): string[] {
  if (list.length === 0) throw new TypeError(`redis: ${option} must list at least one address`);
  return list;
}

/** RedisSectionInput is what {@link redisOptions} reads of `engine.redis` (durations in ms). */
export interface RedisSectionInput {
  readonly address: readonly string[];
  readonly prefix: string;
  readonly user: string;
  readonly password: string;
  readonly db: number;
  readonly tls: { readonly enabled: boolean };
  readonly sentinel_address: readonly string[];
  readonly sentinel_master_name: string;
  readonly sentinel_user: string;
  readonly sentinel_password: string;
  readonly cluster_address: readonly string[];
  readonly connect_timeout: number;
  readonly io_timeout: number;
  readonly reconnect_max_delay: number;
}

/** redisMapOptions maps the map broker's own `engine.redis.map_*` keys onto its options. */
export function redisMapOptions(r: {
  readonly map_cleanup_interval: number;
  readonly map_cleanup_batch_size: number;
}): { cleanupIntervalMs: number; cleanupBatchSize: number } {
  return { cleanupIntervalMs: r.map_cleanup_interval, cleanupBatchSize: r.map_cleanup_batch_size };
}

/** redisOptions maps `engine.redis` (Centrifugo v6 key names) onto the Redis engine's options. */
export function redisOptions(r: RedisSectionInput): RedisEngineOptions {
  const common: RedisEngineOptions = {
    prefix: r.prefix,
    tls: r.tls.enabled,
    db: r.db,
    connectTimeoutMs: r.connect_timeout,
    commandTimeoutMs: r.io_timeout,
    maxReconnectDelayMs: r.reconnect_max_delay,
    ...(r.user !== '' ? { user: r.user } : {}),
    ...(r.password !== '' ? { password: r.password } : {}),
  };
  if (r.sentinel_master_name !== '') {
    return {
      ...common,
      sentinel: {
        masterName: r.sentinel_master_name,
        addresses: [...r.sentinel_address],
        ...(r.sentinel_user !== '' ? { user: r.sentinel_user } : {}),
        ...(r.sentinel_password !== '' ? { password: r.sentinel_password } : {}),
      },
    };
  }
  if (r.cluster_address.length > 0) return { ...common, cluster: { addresses: [...r.cluster_address] } };
  return { ...common, addresses: [...r.address] };
}

/** redisConfigProblem returns what is wrong with `engine.redis`, or undefined. */
export function redisConfigProblem(r: RedisSectionInput): string | undefined {
  try {
    resolveRedisOptions(redisOptions(r));
    return undefined;
  } catch (err) {
    if (err instanceof TypeError) return err.message;
    throw err;
  }
}
