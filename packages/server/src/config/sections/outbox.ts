/**
 * The `outbox` section of the config: the outbox consumer (Bulwark's own; docs/OUTBOX.md),
 * which publishes the rows a backend inserts into an outbox table of its own PostgreSQL in
 * the same transaction as its game write. The DSN is required by ../cross-key-rules.ts when
 * the consumer is enabled.
 *
 * @module
 */
import { z } from 'zod';
import { duration, secret } from './common.js';

/** outboxSection is the `outbox` section. */
export const outboxSection = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'Consume the outbox table and publish its rows through this node (any engine). Several nodes may consume one table at once: each row is published once, in order per channel.',
      ),
    postgresql: z
      .strictObject({
        dsn: secret.describe(
          "Connection string of the backend's PostgreSQL that holds the outbox table (libpq URL or key=value form). Required with outbox.enabled. A secret: set it through BULWARK_OUTBOX_POSTGRESQL_DSN.",
        ),
        connect_timeout: duration('2s').describe('Longest wait for a connection to the outbox database.'),
        io_timeout: duration('5s').describe(
          'Longest wait for one query on the outbox database (also its statement_timeout).',
        ),
      })
      .prefault({}),
    table: z
      .string()
      .regex(
        /^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$/,
        'table must be a lower-case SQL name, optionally schema-qualified (schema.table)',
      )
      .default('bulwark_outbox')
      .describe('The outbox table (DDL in docs/OUTBOX.md), optionally schema-qualified.'),
    batch_size: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(100)
      .describe(
        'Most rows one consumer transaction locks and publishes (across the channels it took; a channel is consumed by one node at a time).',
      ),
    poll_interval: duration('200ms').describe(
      'Wait between polls while the table has nothing to consume (a full batch polls again at once); also the wait while paused and after a failure.',
    ),
    batch_timeout: duration('30s').describe(
      "Longest a consumer transaction may sit idle between statements (PostgreSQL's idle_in_transaction_session_timeout): a node that hangs mid-batch releases its rows to the others after this.",
    ),
    max_attempts: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(5)
      .describe(
        'Failed publishes of one row (errors other than an unreachable engine, which leaves the row for a later batch without counting an attempt) before it is quarantined with reason publish_failed. A row that cannot be published at all (bad channel, bad data, too large) is quarantined at once.',
      ),
  })
  .prefault({});
