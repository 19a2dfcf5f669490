/**
 * The keys that say where a Redis is and how to talk to it, with Centrifugo v6's names
 * (address, prefix, user, password, db, tls, sentinel_*, cluster_address, connect_timeout,
 * io_timeout) plus Bulwark's reconnect_max_delay. One shape for every section that uses a
 * Redis: `engine.redis`, `broker.redis` (the Redis fan-out) and `presence_manager.redis`, so
 * the same name means the same thing wherever it appears; ../redis-options.ts maps them onto
 * the Redis clients' options and checks them.
 *
 * @module
 */
import { z } from 'zod';
import { duration, secret } from './common.js';

/**
 * redisConnectionShape returns the connection keys of one Redis section; `section` (e.g.
 * "broker.redis") is what the descriptions name.
 */
export function redisConnectionShape(section: string) {
  return {
    address: z
      .array(z.string())
      .default(['redis://127.0.0.1:6379'])
      .describe(
        'Standalone Redis: one `redis://[user:password@]host:port[/db]` URL (`rediss://` for TLS). Ignored with sentinel_master_name or cluster_address.',
      ),
    prefix: z
      .string()
      .regex(/^[^{}]+$/, 'prefix must be non-empty, without "{" or "}"')
      .default('bulwark')
      .describe('Prefix of every Redis key and pub/sub channel, so several deployments can share one Redis.'),
    user: z.string().default('').describe('ACL user (Redis 6+); overrides the one in the address.'),
    password: secret.describe(
      `Password (AUTH); overrides the one in the address. A secret: when Redis refuses it (missing or wrong), the node still starts but stays not ready (503 on /ready and on upgrades), logs an error naming ${section}, and keeps retrying.`,
    ),
    db: z.number().int().min(0).default(0).describe('Database number (0 with cluster_address).'),
    tls: z
      .strictObject({ enabled: z.boolean().default(false).describe('TLS to Redis and to the sentinels.') })
      .prefault({}),
    sentinel_address: z
      .array(z.string())
      .default([])
      .describe('Sentinel addresses (`host:port`); used with sentinel_master_name.'),
    sentinel_master_name: z
      .string()
      .default('')
      .describe('Name of the master monitored by Sentinel; set it to find the master through Sentinel.'),
    sentinel_user: z.string().default('').describe('ACL user of the sentinels.'),
    sentinel_password: secret.describe('Password of the sentinels (not of the master).'),
    cluster_address: z
      .array(z.string())
      .default([])
      .describe('Redis Cluster seed nodes (`host:port`); set to use Redis Cluster (channels use sharded pub/sub).'),
    connect_timeout: duration('1s').describe('Longest wait for a connection to Redis, at start and on reconnect.'),
    io_timeout: duration('1s').describe(
      'Longest wait for one Redis reply; then the call fails (a publish is never left hanging): a read with a temporary error, a publish with 100 "outcome unknown" (Redis may still apply it; see docs/PROTOCOL.md).',
    ),
    reconnect_max_delay: duration('2s').describe(
      'Longest wait between reconnect attempts while Redis is down, and between start attempts of a node that could not reach it.',
    ),
  };
}
