/**
 * Filling a channel's history in the PostgreSQL engine's tables directly, for the
 * history-depth scenario: ten million posts through the publish path would take hours (one
 * transaction each), while `generate_series` writes them in a minute. The rows are what the
 * engine's publish writes (channel, offset, JSON text data) and the stream row's top offset is
 * moved to the last one, so Bulwark reads them as its own. Through `psql` (the PostgreSQL
 * client the machine has), so the bench needs no database driver of its own.
 *
 * @module
 */
import { spawn } from 'node:child_process';

/** psql runs one SQL text with `psql` against `dsn` and resolves with its output (tuples only). */
export function psql(dsn: string, sql: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', [dsn, '-v', 'ON_ERROR_STOP=1', '-X', '-q', '-t', '-A', '-c', sql], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    child.on('error', (e) => reject(new Error(`psql: ${e.message} (is the PostgreSQL client installed?)`)));
    child.on('close', (code) =>
      code === 0 ? resolve(out.trim()) : reject(new Error(`psql exited ${code}: ${err.trim()}`)),
    );
  });
}

/**
 * fillHistory appends posts `from`…`to` to `channel`'s history in tables `<prefix>_*` (the
 * stream row must exist: publish one post through the API first) and analyses the table.
 */
export async function fillHistory(
  dsn: string,
  prefix: string,
  channel: string,
  from: number,
  to: number,
): Promise<void> {
  const ch = channel.replace(/'/g, "''");
  await psql(
    dsn,
    `INSERT INTO ${prefix}_publications (channel, "offset", data)
       SELECT '${ch}', g, '{"text":"post ' || g || '"}' FROM generate_series(${from}, ${to}) AS g;
     UPDATE ${prefix}_streams SET top = ${to} WHERE channel = '${ch}';
     ANALYZE ${prefix}_publications;`,
  );
}

/** dropTables drops every table whose name starts with `<prefix>_` (the run's own). */
export async function dropTables(dsn: string, prefix: string): Promise<void> {
  const names = await psql(dsn, `SELECT tablename FROM pg_tables WHERE tablename LIKE '${prefix}\\_%'`);
  const tables = names.split('\n').filter((n) => n !== '');
  if (tables.length > 0) await psql(dsn, `DROP TABLE IF EXISTS ${tables.join(', ')} CASCADE`);
}
