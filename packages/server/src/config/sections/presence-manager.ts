/**
 * The `presence_manager` section of the config: where online presence lives when it is chosen
 * apart from the engine, as in Centrifugo v6 (`presence_manager.enabled`,
 * `presence_manager.type`, `presence_manager.redis.*` with the engine.redis names). E.g. a
 * PostgreSQL engine (durable history) with presence in Redis, whose entries are refreshed every
 * client.presence_update_interval by every node and are cheap there. `postgresql` is Bulwark's
 * addition (Centrifugo has no PostgreSQL presence). docs/ENGINES.md lists the combinations.
 *
 * @module
 */
import { z } from 'zod';
import { duration, secret } from './common.js';
import { redisConnectionShape } from './redis-connection.js';

/** postgresqlSchema: where a PostgreSQL presence manager finds PostgreSQL. */
const postgresqlSchema = z
  .strictObject({
    dsn: secret.describe(
      'Connection string, `postgresql://user:password@host:5432/database`. Required with presence_manager.type postgresql. A secret: set it through BULWARK_PRESENCE_MANAGER_POSTGRESQL_DSN.',
    ),
    pool_size: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(8)
      .describe('Most pooled connections per node for presence reads and refreshes.'),
    table_prefix: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,39}$/, 'table_prefix must match ^[a-z_][a-z0-9_]*$ (at most 40 characters)')
      .default('bulwark')
      .describe('Prefix of the tables (`<prefix>_presence`, …), so several deployments can share one database.'),
    connect_timeout: duration('2s').describe('Longest wait for a new connection to PostgreSQL.'),
    io_timeout: duration('2s').describe('Longest wait for one query; then the call fails with a temporary error.'),
    reconnect_max_delay: duration('2s').describe(
      'Longest wait between start attempts of a node that could not reach this PostgreSQL.',
    ),
    cleanup_interval: duration('1m').describe(
      'How often each node deletes expired presence entries (each at least this old; reads skip them at once).',
    ),
  })
  .prefault({})
  .describe('A PostgreSQL presence manager (presence_manager.type postgresql).');

/** presenceManagerSection is the `presence_manager` section. */
export const presenceManagerSection = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'Keep online presence apart from the engine (engine.type redis or postgresql), in the presence manager presence_manager.type names (docs/ENGINES.md).',
      ),
    type: z
      .enum(['redis', 'postgresql'])
      .default('redis')
      .describe('Presence manager: redis (as the Redis engine keeps it) or postgresql (as the PostgreSQL engine).'),
    redis: z
      .strictObject(redisConnectionShape('presence_manager.redis'))
      .prefault({})
      .describe('A Redis presence manager (presence_manager.type redis); keys `<prefix>.presence.*.{<channel>}`.'),
    postgresql: postgresqlSchema,
  })
  .prefault({});
