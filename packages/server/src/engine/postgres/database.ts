/**
 * The PostgreSQL engine's connection pool: options and their defaults, a pooled client set up
 * to fail fast (bounded connect and query times, so a publish or history read becomes a prompt
 * temporary error instead of a hang), transactions whose failures say whether the write may
 * have been applied, and the schema check at start.
 *
 * @module
 */
import pg from 'pg';
import type { ClientConfig, PoolClient, PoolConfig, QueryResultRow } from 'pg';
import { migrate, tablesOf, type MigrationReport, type Tables } from './schema.js';
import { toEngineError } from './errors.js';

/** PostgresEngineOptions tell the PostgreSQL engine where PostgreSQL is and how to use it. */
export interface PostgresEngineOptions {
  /** Connection string (`postgresql://user:password@host:5432/db` or libpq key=value). Required. */
  dsn: string;
  /** Most pooled connections (the LISTEN connection is one more). Default: 16. */
  poolSize?: number;
  /** Prefix of every table and of the NOTIFY channel, ^[a-z_][a-z0-9_]*$. Default: "bulwark". */
  tablePrefix?: string;
  /** Longest wait for a new connection (ms). Default: 2000. */
  connectTimeoutMs?: number;
  /** Longest wait for one query's answer (ms). Default: 2000. */
  ioTimeoutMs?: number;
  /** Upper bound of the LISTEN connection's reconnect backoff (ms). Default: 2000. */
  reconnectMaxDelayMs?: number;
  /** Period of the catch-up poll and LISTEN heartbeat (ms). Default: 1000. */
  pollIntervalMs?: number;
  /** Most publications one catch-up read fetches. Default: 1000. */
  catchUpBatch?: number;
  /** Period of the expired-rows cleanup (ms); 0 disables it. Default: 60000. */
  cleanupIntervalMs?: number;
}

/** ResolvedPostgresOptions are checked options with every default filled in. */
export type ResolvedPostgresOptions = Required<PostgresEngineOptions> & {
  /** Where PostgreSQL is, without credentials, for messages. */
  readonly description: string;
};

/** Default values of {@link PostgresEngineOptions}. */
export const postgresDefaults = {
  poolSize: 16,
  tablePrefix: 'bulwark',
  connectTimeoutMs: 2000,
  ioTimeoutMs: 2000,
  reconnectMaxDelayMs: 2000,
  pollIntervalMs: 1000,
  catchUpBatch: 1000,
  cleanupIntervalMs: 60_000,
} as const;

/** resolvePostgresOptions checks `opts` and fills in defaults; throws a TypeError naming the option. */
export function resolvePostgresOptions(opts: PostgresEngineOptions): ResolvedPostgresOptions {
  if (typeof opts.dsn !== 'string' || opts.dsn === '') {
    throw new TypeError('postgresql: dsn is required (engine.postgresql.dsn)');
  }
  const o = { ...postgresDefaults, ...stripUndefined(opts) };
  if (!/^[a-z_][a-z0-9_]{0,39}$/.test(o.tablePrefix)) {
    throw new TypeError('postgresql: tablePrefix must match ^[a-z_][a-z0-9_]*$ (at most 40 characters)');
  }
  for (const k of ['poolSize', 'connectTimeoutMs', 'ioTimeoutMs', 'reconnectMaxDelayMs', 'pollIntervalMs'] as const) {
    if (!Number.isFinite(o[k]) || o[k] <= 0) throw new TypeError(`postgresql: ${k} must be a positive number`);
  }
  return { ...o, dsn: opts.dsn, description: describeDsn(opts.dsn) };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** describeDsn is where a DSN points, without user or password: `postgresql://host:port/db`. */
export function describeDsn(dsn: string): string {
  try {
    const url = new URL(dsn);
    return `postgresql://${url.host || 'localhost'}${url.pathname}`;
  } catch {
    const field = (k: string): string | undefined => new RegExp(`(?:^|\\s)${k}\\s*=\\s*'?([^\\s']*)`).exec(dsn)?.[1];
    return `postgresql://${field('host') ?? 'localhost'}:${field('port') ?? '5432'}/${field('dbname') ?? ''}`;
  }
}

/** Query runs one statement and returns its rows. */
export type Query = <R extends QueryResultRow>(sql: string, params?: readonly unknown[]) => Promise<R[]>;

/**
 * int8 (bigint: offsets, versions, times in ms) comes back as a number, not a string: every
 * value Bulwark stores there is a safe integer.
 */
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'),
};

/**
 * PostgresDatabase is one node's pool and tables. Every call maps failures with
 * {@link toEngineError}; `onError` receives what no caller can (an idle connection dropped).
 */
export class PostgresDatabase {
  readonly o: ResolvedPostgresOptions;
  readonly tables: Tables;
  readonly pool: pg.Pool;
  #users = 0;

  constructor(options: PostgresEngineOptions, onError: (err: unknown) => void) {
    this.o = resolvePostgresOptions(options);
    this.tables = tablesOf(this.o.tablePrefix);
    const config: PoolConfig = { ...this.clientConfig('bulwark'), max: this.o.poolSize };
    this.pool = new pg.Pool(config);
    // An idle pooled connection that breaks (PostgreSQL restarted) is dropped by the pool; the
    // event must have a listener or it would crash the process.
    this.pool.on('error', (err) => onError(toEngineError(err, this.address)));
    // pg-pool listens for errors on idle connections only. One that breaks while checked out
    // (PostgreSQL killed during a query) emits 'error' as its socket ends, after or without
    // failing a query: with no listener that event would crash the node. Its user learns of
    // the failure from the query (or the next one), and release(err) destroys it.
    this.pool.on('connect', (client) => client.on('error', () => undefined));
  }

  /** address is where PostgreSQL is, without credentials. */
  get address(): string {
    return this.o.description;
  }

  /** clientConfig is the configuration of one connection (pooled, or the LISTEN one). */
  clientConfig(applicationName: string): ClientConfig {
    return {
      connectionString: this.o.dsn,
      connectionTimeoutMillis: this.o.connectTimeoutMs,
      // Bounds a query that was sent but never answered (a paused or half-open server).
      query_timeout: this.o.ioTimeoutMs,
      keepAlive: true,
      application_name: applicationName,
      types,
    };
  }

  /** start checks that PostgreSQL answers and brings the schema up to date (see schema.ts). */
  async start(): Promise<MigrationReport> {
    const client = await this.connect();
    try {
      return await migrate(client, this.tables);
    } catch (err) {
      throw toEngineError(err, this.address);
    } finally {
      client.release();
    }
  }

  /**
   * query runs one statement outside a transaction: a read, or a write that is one statement.
   * A `write` (not safe to repeat) that failed after it was sent without an answer from
   * PostgreSQL may have been applied: EngineOutcomeUnknownError.
   */
  async query<R extends QueryResultRow>(sql: string, params: readonly unknown[] = [], write = false): Promise<R[]> {
    const client = await this.connect();
    let failed: Error | undefined;
    try {
      return (await client.query<R>(sql, params as unknown[])).rows;
    } catch (err) {
      failed = err instanceof Error ? err : new Error(String(err));
      throw toEngineError(err, this.address, write);
    } finally {
      client.release(failed);
    }
  }

  /**
   * transaction runs `fn` in a transaction on one pooled connection and commits. A failure
   * before COMMIT was sent rolled everything back (PostgreSQL aborts a transaction whose
   * connection is lost), so it is a plain EngineUnavailableError; a `write` whose COMMIT got
   * no answer may have been applied: EngineOutcomeUnknownError. A connection that failed is
   * destroyed, not returned to the pool.
   */
  async transaction<T>(write: boolean, fn: (q: Query) => Promise<T>): Promise<T> {
    const client = await this.connect();
    let committing = false;
    let failed: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(async (sql, params = []) => (await client.query(sql, params as unknown[])).rows);
      committing = true;
      await client.query('COMMIT');
      return result;
    } catch (err) {
      failed = err instanceof Error ? err : new Error(String(err));
      throw toEngineError(err, this.address, write && committing);
    } finally {
      client.release(failed);
    }
  }

  /** retain records one more user (broker, presence manager) of the pool; each calls close once. */
  retain(): this {
    this.#users++;
    return this;
  }

  /** close ends every pooled connection once the last user closed (at once when none retained it). */
  async close(): Promise<void> {
    if (--this.#users > 0) return;
    if (!this.pool.ended && !this.pool.ending) await this.pool.end();
  }

  private async connect(): Promise<PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw toEngineError(err, this.address);
    }
  }
}
