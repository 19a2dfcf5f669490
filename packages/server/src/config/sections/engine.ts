/**
 * The `engine` section of the config: which engine a node runs on, where the Redis engine
 * finds Redis and where the PostgreSQL engine finds PostgreSQL (Centrifugo v6's key names where
 * they exist). The Redis connection keys are shared with broker.redis and
 * presence_manager.redis (redis-connection.ts); the check that they make usable options is in
 * ../redis-options.ts; the PostgreSQL DSN is required by ../cross-key-rules.ts.
 *
 * @module
 */
import { z } from 'zod';
import { duration, secret } from './common.js';
import { redisConnectionShape } from './redis-connection.js';

/** redisSchema: where the Redis engine finds Redis, with Centrifugo v6's key names. */
const redisSchema = z
  .strictObject({
    ...redisConnectionShape('engine.redis'),
    map_cleanup_interval: duration('1s').describe(
      "How often each node removes the map keys whose key_ttl passed (Centrifugo's map broker cleanup_interval). Every node runs it; each key is removed, and its removal delivered, once. Expired keys stay readable until then.",
    ),
    map_cleanup_batch_size: z
      .number()
      .int()
      .min(1)
      .default(100)
      .describe(
        "Most channels, and most keys per channel, one map cleanup step removes (Centrifugo's cleanup_batch_size).",
      ),
  })
  .prefault({})
  .describe('The Redis engine (engine.type redis).');

/**
 * postgresqlSchema: where the PostgreSQL engine finds PostgreSQL, and the knobs of its pool,
 * delivery and retention (docs/POSTGRESQL.md).
 */
const postgresqlSchema = z
  .strictObject({
    dsn: secret.describe(
      'Connection string, `postgresql://user:password@host:5432/database` (libpq URL or key=value form). Required with engine.type postgresql. A secret (it usually holds the password): set it through BULWARK_ENGINE_POSTGRESQL_DSN.',
    ),
    pool_size: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(16)
      .describe(
        'Most pooled connections per node for publishes, history and presence (the LISTEN connection is one more).',
      ),
    table_prefix: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,39}$/, 'table_prefix must match ^[a-z_][a-z0-9_]*$ (at most 40 characters)')
      .default('bulwark')
      .describe(
        'Prefix of every table (`<prefix>_publications`, …) and of the NOTIFY channel (`<prefix>_events`), so several deployments can share one database.',
      ),
    connect_timeout: duration('2s').describe(
      'Longest wait for a new connection to PostgreSQL, at start and on reconnect.',
    ),
    io_timeout: duration('2s').describe(
      'Longest wait for one query; then the call fails: a read with a temporary error, a publish whose COMMIT got no answer with 100 "outcome unknown".',
    ),
    reconnect_max_delay: duration('2s').describe(
      'Longest wait between reconnect attempts of the LISTEN connection while PostgreSQL is down, and between start attempts.',
    ),
    poll_interval: duration('1s').describe(
      'How often each node compares the stream tops of its subscribed channels with what it delivered, and reads what it missed: the safety net under LISTEN/NOTIFY (a lost notification is delivered at most this late). Also the LISTEN connection heartbeat.',
    ),
    catch_up_batch: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(1000)
      .describe(
        'Most publications one catch-up read of one channel fetches (it reads again while it gets full pages).',
      ),
    cleanup_interval: duration('1m').describe(
      'How often each node deletes expired streams, publications past their history TTL, idempotency results, presence entries, expired empty map channels and large-notice rows (each at least this old).',
    ),
    map_cleanup_interval: duration('1s').describe(
      "How often each node removes the map keys whose key_ttl passed (Centrifugo's map broker cleanup_interval). Every node runs it; each key is removed, and its removal delivered, once. Expired keys stay readable until then.",
    ),
    map_cleanup_batch_size: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(100)
      .describe(
        "Most expired map keys one cleanup step reads and removes (Centrifugo's cleanup_batch_size); a run makes at most 10 steps.",
      ),
  })
  .prefault({})
  .describe('The PostgreSQL engine (engine.type postgresql).');

/** engineSection is the `engine` section. */
export const engineSection = z
  .strictObject({
    type: z
      .enum(['memory', 'redis', 'postgresql'])
      .default('memory')
      .describe(
        'Engine: memory (embedded, one process), redis (broker, history and presence in Redis: many processes and machines act as one) or postgresql (the same on PostgreSQL alone, with durable history; docs/POSTGRESQL.md).',
      ),
    redis: redisSchema,
    postgresql: postgresqlSchema,
  })
  .prefault({});
