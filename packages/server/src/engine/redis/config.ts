/**
 * The mapping from `engine.redis` config (Centrifugo v6 key names) onto the Redis engine's
 * options, and its check at config load, so a bad Redis setting is a config error naming the
 * key, not a failure at start.
 *
 * @module
 */
import type { Config } from '../../config/schema.js';
import { resolveRedisOptions, type RedisEngineOptions } from './options.js';

/** redisOptions maps `engine.redis` (Centrifugo v6 key names) onto the Redis engine's options. */
export function redisOptions(r: Config['engine']['redis']): RedisEngineOptions {
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
        addresses: r.sentinel_address,
        ...(r.sentinel_user !== '' ? { user: r.sentinel_user } : {}),
        ...(r.sentinel_password !== '' ? { password: r.sentinel_password } : {}),
      },
    };
  }
  if (r.cluster_address.length > 0) return { ...common, cluster: { addresses: r.cluster_address } };
  return { ...common, addresses: r.address };
}

/** redisConfigProblem returns what is wrong with `engine.redis`, or undefined. */
export function redisConfigProblem(r: Config['engine']['redis']): string | undefined {
  try {
    resolveRedisOptions(redisOptions(r));
    return undefined;
  } catch (err) {
    if (err instanceof TypeError) return err.message;
    throw err;
  }
}
