/**
 * The outbox table a backend inserts into (docs/OUTBOX.md): its DDL, the check that a table
 * has the columns the consumer needs, and the statements of one consumer transaction: scan the
 * oldest waiting rows, take channels with transaction-scoped advisory locks (a channel is
 * consumed by one node at a time, so its rows are published in id order), lock and read their
 * rows, then delete the published ones and quarantine or count the failed ones before COMMIT.
 *
 * @module
 */
import type pg from 'pg';

/** outboxDdl is the SQL that creates an outbox table named `table` (docs/OUTBOX.md shows it). */
export function outboxDdl(table: string): string {
  const index = table.replace(/^.*\./, '');
  return `CREATE TABLE ${table} (
  id bigserial PRIMARY KEY,
  channel text NOT NULL,
  data jsonb NOT NULL,
  idempotency_key text,
  created_at timestamptz NOT NULL DEFAULT now(),
  attempts integer NOT NULL DEFAULT 0,
  quarantined_at timestamptz,
  quarantine_reason text,
  quarantine_detail text
);
CREATE INDEX ${index}_waiting ON ${table} (id) WHERE quarantined_at IS NULL;
CREATE INDEX ${index}_channel ON ${table} (channel, id) WHERE quarantined_at IS NULL;`;
}

/** The columns the consumer reads and writes. */
export const OUTBOX_COLUMNS = [
  'id',
  'channel',
  'data',
  'idempotency_key',
  'created_at',
  'attempts',
  'quarantined_at',
  'quarantine_reason',
  'quarantine_detail',
] as const;

/** OutboxRow is one row a consumer transaction locked. */
export interface OutboxRow {
  /** bigserial, as text: ids may pass 2^53. */
  id: string;
  channel: string;
  /** The data column as text (JSON when the column is jsonb). */
  data: string;
  idempotency_key: string | null;
  attempts: number;
}

/**
 * missingColumns returns the consumer's columns `table` lacks (all of them when the table does
 * not exist, with `exists` false).
 */
export async function missingColumns(
  client: pg.ClientBase,
  table: string,
): Promise<{ exists: boolean; missing: string[] }> {
  const [schema, name] = table.includes('.') ? table.split('.') : [null, table];
  const rows = await client.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns
     WHERE table_name = $1 AND table_schema = coalesce($2, current_schema())`,
    [name, schema],
  );
  const have = new Set(rows.rows.map((r) => r.column_name));
  return { exists: have.size > 0, missing: OUTBOX_COLUMNS.filter((c) => !have.has(c)) };
}

/** Claim is what one consumer transaction took. */
export interface Claim {
  /** Seconds since the oldest waiting row was created (0 when none waits). */
  lagSeconds: number;
  /** The locked rows, in id order. */
  rows: OutboxRow[];
}

/**
 * claim, inside a transaction: scans the oldest 4 × `batch` waiting rows, takes (with
 * pg_try_advisory_xact_lock, skipping channels another consumer holds) their channels oldest
 * first until they hold about `batch` rows, then locks and reads up to `batch` waiting rows of
 * those channels in id order. The advisory locks last until COMMIT or ROLLBACK, and a session
 * that dies releases them.
 */
export async function claim(client: pg.ClientBase, table: string, batch: number): Promise<Claim> {
  const scanned = await client.query<{ channel: string; n: number; lag: number }>(
    `SELECT channel, count(*)::int AS n, max(extract(epoch FROM clock_timestamp() - created_at))::float8 AS lag
     FROM (SELECT id, channel, created_at FROM ${table} WHERE quarantined_at IS NULL ORDER BY id LIMIT $1) w
     GROUP BY channel ORDER BY min(id)`,
    [batch * 4],
  );
  const lagSeconds = Math.max(0, ...scanned.rows.map((r) => r.lag));
  // Channels oldest first, skipping those another consumer holds, until they hold about a batch.
  const locked: string[] = [];
  let rows = 0;
  for (const r of scanned.rows) {
    if (rows >= batch) break;
    const got = await client.query<{ ok: boolean }>(
      'SELECT pg_try_advisory_xact_lock(hashtext($1), hashtext($2)) AS ok',
      [table, r.channel],
    );
    if (!got.rows[0]?.ok) continue;
    locked.push(r.channel);
    rows += r.n;
  }
  if (locked.length === 0) return { lagSeconds, rows: [] };
  const read = await client.query<OutboxRow>(
    // o.id, not id: a bare ORDER BY id would sort by the text output column.
    `SELECT o.id::text AS id, o.channel, o.data::text AS data, o.idempotency_key, o.attempts FROM ${table} o
     WHERE o.quarantined_at IS NULL AND o.channel = ANY($1::text[]) ORDER BY o.id LIMIT $2 FOR UPDATE`,
    [locked, batch],
  );
  return { lagSeconds, rows: read.rows };
}

/** Settlement is what a consumer transaction writes back before COMMIT. */
export interface Settlement {
  /** Ids published (or suppressed as repeats): deleted. */
  done: string[];
  /** Ids that failed and stay for another attempt. */
  retry: string[];
  /** Ids quarantined, with their reason code and detail. */
  quarantine: { id: string; reason: string; detail: string }[];
}

/** settle writes a batch's outcome, in the transaction that locked its rows. */
export async function settle(client: pg.ClientBase, table: string, s: Settlement): Promise<void> {
  if (s.done.length > 0) await client.query(`DELETE FROM ${table} WHERE id = ANY($1::bigint[])`, [s.done]);
  if (s.retry.length > 0) {
    await client.query(`UPDATE ${table} SET attempts = attempts + 1 WHERE id = ANY($1::bigint[])`, [s.retry]);
  }
  for (const q of s.quarantine) {
    await client.query(
      `UPDATE ${table} SET attempts = attempts + 1, quarantined_at = now(), quarantine_reason = $2, quarantine_detail = $3
       WHERE id = $1`,
      [q.id, q.reason, q.detail.slice(0, 1000)],
    );
  }
}
