/**
 * The PostgreSQL engine's LISTEN connection: one dedicated connection per node, outside the
 * pool, listening on `<prefix>_events` (the map broker holds a second one on
 * `<prefix>_map_events`). It reconnects with a capped backoff when lost, and
 * reports itself up and down (the broker's readiness). The periodic catch-up poll runs its
 * query on this connection, so the poll doubles as a heartbeat: a half-open connection that
 * would silently stop delivering notifications fails the query and is replaced.
 *
 * @module
 */
import pg from 'pg';
import type { QueryResultRow } from 'pg';
import type { PostgresDatabase } from './database.js';
import { toEngineError } from './errors.js';

/** ListenerEvents receive what the LISTEN connection brings. */
export interface ListenerEvents {
  /** A notification payload on the events channel. */
  onNotice(payload: string): void;
  /** The connection is listening (again). */
  onUp(): void;
  /** The connection was lost; reconnection runs in the background. */
  onDown(): void;
  /** The first error of each outage, mapped to the engine's errors. */
  onError(err: unknown): void;
}

/** Listener holds the LISTEN connection; see the module comment. */
export class Listener {
  readonly #db: PostgresDatabase;
  readonly #events: ListenerEvents;
  readonly #channel: string;
  readonly #applicationName: string;
  #client: pg.Client | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #attempts = 0;
  #reported = false;
  #closed = false;

  /**
   * `channel` is the NOTIFY channel to listen on (default `<prefix>_events`), `applicationName`
   * how the connection shows in pg_stat_activity.
   */
  constructor(
    db: PostgresDatabase,
    events: ListenerEvents,
    channel = db.tables.events,
    applicationName = 'bulwark-listen',
  ) {
    this.#db = db;
    this.#events = events;
    this.#channel = channel;
    this.#applicationName = applicationName;
  }

  /** up tells whether the connection is listening now. */
  get up(): boolean {
    return this.#client !== undefined;
  }

  /** start connects and listens; rejects with the engine's error when PostgreSQL cannot be reached. */
  async start(): Promise<void> {
    await this.#open();
  }

  /**
   * query runs a statement on the LISTEN connection (the poll). A failure drops the connection,
   * so that a dead one is replaced, and rejects with the engine's error.
   */
  async query<R extends QueryResultRow>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    const client = this.#client;
    if (client === undefined) throw toEngineError(new Error('LISTEN connection is down'), this.#db.address);
    try {
      return (await client.query<R>(sql, params as unknown[])).rows;
    } catch (err) {
      this.#lost(client, err);
      throw toEngineError(err, this.#db.address);
    }
  }

  /** close ends the connection and the reconnect timer; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = undefined;
    if (client !== undefined) await client.end().catch(() => undefined);
  }

  async #open(): Promise<void> {
    const client = new pg.Client(this.#db.clientConfig(this.#applicationName));
    client.on('error', (err) => this.#lost(client, err));
    client.on('end', () => this.#lost(client, new Error('LISTEN connection ended')));
    client.on('notification', (msg) => {
      if (this.#client === client && msg.channel === this.#channel && msg.payload !== undefined) {
        this.#events.onNotice(msg.payload);
      }
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.#channel}`);
    } catch (err) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw toEngineError(err, this.#db.address);
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#attempts = 0;
    this.#reported = false;
    this.#events.onUp();
  }

  #lost(client: pg.Client, err: unknown): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    this.#report(err);
    this.#events.onDown();
    this.#schedule();
  }

  #report(err: unknown): void {
    if (this.#reported || this.#closed) return;
    this.#reported = true;
    this.#events.onError(toEngineError(err, this.#db.address));
  }

  /** #schedule tries to reconnect after a backoff: 50 ms doubling, capped at reconnect_max_delay. */
  #schedule(): void {
    if (this.#closed) return;
    const delay = Math.min(50 * 2 ** Math.min(this.#attempts++, 16), this.#db.o.reconnectMaxDelayMs);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#open().catch((err: unknown) => {
        this.#report(err);
        this.#schedule();
      });
    }, delay);
    this.#timer.unref();
  }
}
