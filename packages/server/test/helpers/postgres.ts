/**
 * Test helpers for the PostgreSQL engine: gate suites on a reachable PostgreSQL, give each run
 * its own table prefix, and drop its tables afterwards.
 *
 * The shared PostgreSQL (`BULWARK_TEST_POSTGRES_URL`, default
 * `postgresql://postgres@127.0.0.1:5432/test`) is used by other things: tests touch only tables
 * under their random prefix.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { availabilityTimeoutMs, describeIf } from './redis.js';

/** pgUrl is the shared PostgreSQL the suites run against. */
export const pgUrl = process.env.BULWARK_TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

/** pgAvailable returns undefined when PostgreSQL at `url` answers within 5 s, else why not. */
export async function pgAvailable(url = pgUrl): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: availabilityTimeoutMs });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (err) {
    return `PostgreSQL at ${url} is not reachable (${(err as Error).message})`;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * describePostgres registers `fn` as suite `name` when PostgreSQL at {@link pgUrl} answers;
 * otherwise it is skipped with the reason printed, or fails under BULWARK_REQUIRE_SERVICES=1.
 */
export async function describePostgres(name: string, fn: () => void): Promise<void> {
  const reason = await pgAvailable();
  describeIf(name, reason && `${reason}; set BULWARK_TEST_POSTGRES_URL to use another PostgreSQL`, fn);
}

/** uniqueTablePrefix returns a table prefix no other test run uses. */
export function uniqueTablePrefix(): string {
  return `bwt_${randomBytes(5).toString('hex')}`;
}

/** sql runs statements on the shared PostgreSQL with a short-lived connection. */
export async function sql<R extends pg.QueryResultRow = pg.QueryResultRow>(
  text: string,
  params: unknown[] = [],
  url = pgUrl,
): Promise<R[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<R>(text, params)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

/** dropTables drops every table and function whose name starts with `<prefix>_`. */
export async function dropTables(prefix: string, url = pgUrl): Promise<void> {
  const rows = await sql<{ t: string }>(
    `SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema() AND starts_with(tablename, $1)`,
    [`${prefix}_`],
    url,
  );
  if (rows.length > 0) await sql(`DROP TABLE IF EXISTS ${rows.map((r) => r.t).join(', ')} CASCADE`, [], url);
  const fns = await sql<{ f: string }>(
    `SELECT p.oid::regprocedure::text AS f FROM pg_proc p
     WHERE p.pronamespace = current_schema()::regnamespace AND starts_with(p.proname, $1)`,
    [`${prefix}_`],
    url,
  );
  if (fns.length > 0) await sql(`DROP FUNCTION IF EXISTS ${fns.map((r) => r.f).join(', ')} CASCADE`, [], url);
}
