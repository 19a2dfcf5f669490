/**
 * The PostgreSQL engine's tables and their migrations. Bulwark creates and migrates its own
 * schema: `<prefix>_migrations` records every applied version, a run applies what is missing
 * in one transaction under an advisory lock (nodes starting together wait for each other
 * instead of racing), and a database at a version newer than this build knows is refused.
 *
 * Tables (prefix `bulwark` by default):
 * - `<prefix>_streams`: one row per channel stream: epoch, top offset, last version and its
 *   epoch, and when the publications (`history_expires_at`) and the whole position
 *   (`meta_expires_at`) expire, in milliseconds of the database clock. Locking this row is
 *   what orders a channel's publishes.
 * - `<prefix>_publications`: primary key (channel, offset), so a history page, forward or
 *   reverse from any `since`, is an index range scan whatever the channel's length.
 * - `<prefix>_results`: the first result of each (channel, idempotency key) until it expires.
 * - `<prefix>_presence`: (channel, client) → user, ClientInfo JSON, expiry.
 * - `<prefix>_notices`: notifications too large for NOTIFY's 8000 bytes, read back by id.
 * - Functions (version 2, publish-function.ts): `<prefix>_publish` (for the backend's own
 *   transactions), `<prefix>_publish_raw` (the engine's publish), `<prefix>_notify`,
 *   `<prefix>_notice_head`.
 * - Map channels (version 3, map-schema.ts): `<prefix>_map_meta`, `<prefix>_map_state`,
 *   `<prefix>_map_stream`, `<prefix>_map_results` and the `<prefix>_map_*` functions.
 *
 * @module
 */
import type { PoolClient } from 'pg';
import { BulwarkError } from '../../errors.js';
import { mapSchemaSql } from './map-schema.js';
import { publishFunctionsSql } from './publish-function.js';
import type { Tables } from './tables.js';

export { NOW_MS, tablesOf, type Tables } from './tables.js';

/** Migration is one schema version: the SQL that brings the previous version to it. */
interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: (t: Tables) => string;
}

/** migrations, oldest first. Never edit an applied one: add the next version. */
const migrations: readonly Migration[] = [
  {
    version: 1,
    description: 'streams, publications, idempotency results, presence, large notices',
    sql: (t) => `
CREATE TABLE ${t.streams} (
  channel text PRIMARY KEY,
  epoch text NOT NULL,
  top bigint NOT NULL DEFAULT 0,
  version bigint NOT NULL DEFAULT 0,
  version_epoch text NOT NULL DEFAULT '',
  history_expires_at bigint NOT NULL DEFAULT 0,
  meta_expires_at bigint NOT NULL DEFAULT 0
);
CREATE INDEX ${t.streams}_meta_expiry ON ${t.streams} (meta_expires_at);
CREATE INDEX ${t.streams}_history_expiry ON ${t.streams} (history_expires_at) WHERE history_expires_at > 0;
CREATE TABLE ${t.publications} (
  channel text NOT NULL,
  "offset" bigint NOT NULL,
  data text NOT NULL,
  info jsonb,
  tags jsonb,
  time bigint,
  variants jsonb,
  delta boolean NOT NULL DEFAULT false,
  PRIMARY KEY (channel, "offset")
);
CREATE TABLE ${t.results} (
  channel text NOT NULL,
  key text NOT NULL,
  "offset" bigint NOT NULL,
  epoch text NOT NULL,
  expires_at bigint NOT NULL,
  PRIMARY KEY (channel, key)
);
CREATE INDEX ${t.results}_expiry ON ${t.results} (expires_at);
CREATE TABLE ${t.presence} (
  channel text NOT NULL,
  client_id text NOT NULL,
  user_id text NOT NULL,
  info text NOT NULL,
  expires_at bigint NOT NULL,
  PRIMARY KEY (channel, client_id)
);
CREATE INDEX ${t.presence}_expiry ON ${t.presence} (expires_at);
CREATE TABLE ${t.notices} (
  id bigserial PRIMARY KEY,
  payload text NOT NULL,
  created_at bigint NOT NULL
);
CREATE INDEX ${t.notices}_created ON ${t.notices} (created_at);
`,
  },
  {
    version: 2,
    description: "publish functions: <prefix>_publish for the backend's own transactions, the engine's _publish_raw",
    sql: publishFunctionsSql,
  },
  {
    version: 3,
    description: 'map channels: meta, state, stream, idempotency results, and their functions',
    sql: mapSchemaSql,
  },
];

/** LATEST_SCHEMA_VERSION is the schema version this build writes and reads. */
export const LATEST_SCHEMA_VERSION = migrations[migrations.length - 1]!.version;

/** MigrationReport says what a run found and did. */
export interface MigrationReport {
  /** The version the database was at before the run (0: no schema). */
  readonly from: number;
  /** The version it is at now. */
  readonly to: number;
  /** Versions this run applied, oldest first. */
  readonly applied: number[];
}

/** schemaVersion reads the database's schema version (0 when there is no migration table). */
export async function schemaVersion(client: PoolClient, t: Tables): Promise<number> {
  const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [t.migrations]);
  if (exists.rows[0]?.t == null) return 0;
  const r = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${t.migrations}`);
  return Number(r.rows[0]?.v ?? 0);
}

/**
 * migrate brings the schema to {@link LATEST_SCHEMA_VERSION}. Up to date, it only reads the
 * version (a role without CREATE can run the engine on a schema migrated by its owner).
 * Otherwise it takes a transaction-scoped advisory lock of the prefix, reads the version again
 * (another node may have migrated meanwhile) and applies what is missing, all in one
 * transaction: a failed run leaves nothing half-applied. Throws BW_ERR_ENGINE_SCHEMA for a
 * newer schema; other failures are the driver's errors, for the caller to map.
 */
export async function migrate(client: PoolClient, t: Tables): Promise<MigrationReport> {
  const from = await schemaVersion(client, t);
  refuseNewer(from, t);
  if (from === LATEST_SCHEMA_VERSION) return { from, to: from, applied: [] };
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`bulwark.migrate.${t.migrations}`]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${t.migrations} (version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const current = await schemaVersion(client, t);
    refuseNewer(current, t);
    const applied: number[] = [];
    for (const m of migrations) {
      if (m.version <= current) continue;
      await client.query(m.sql(t));
      await client.query(`INSERT INTO ${t.migrations} (version, description) VALUES ($1, $2)`, [
        m.version,
        m.description,
      ]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    return { from, to: LATEST_SCHEMA_VERSION, applied };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

function refuseNewer(version: number, t: Tables): void {
  if (version <= LATEST_SCHEMA_VERSION) return;
  throw new BulwarkError(
    'BW_ERR_ENGINE_SCHEMA',
    `the PostgreSQL schema (table ${t.migrations}) is at version ${version}, newer than this build's ${LATEST_SCHEMA_VERSION}: a newer Bulwark migrated it; run that version (or newer) instead`,
  );
}
