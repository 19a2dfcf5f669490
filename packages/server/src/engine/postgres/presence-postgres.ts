/**
 * The PostgreSQL presence manager: who is in a channel, shared by every node on one
 * PostgreSQL, in `<prefix>_presence`. It matches the memory presence manager's behaviour (both
 * run `test/conformance/presence.case.ts`).
 *
 * @module
 */
import type { ClientInfo } from '../../protocol/types.js';
import type { PresenceManager, PresenceStats } from '../presence.js';
import { decodeClientInfo } from './codec.js';
import { PostgresDatabase, type PostgresEngineOptions } from './database.js';
import { NOW_MS } from './schema.js';

/** PostgresPresenceOptions configure a {@link PostgresPresenceManager}. */
export interface PostgresPresenceOptions extends Partial<PostgresEngineOptions> {
  /** A database shared with the broker (the engine's); else the manager makes its own. */
  database?: PostgresDatabase;
  /** Readiness, when shared (the engine's broker's); default: always ready once started. */
  isReady?: () => boolean;
  /** Receives a malformed entry (skipped) and idle connection errors. Defaults to `console.error`. */
  onError?: (err: unknown) => void;
}

/**
 * PostgresPresenceManager implements {@link PresenceManager} on PostgreSQL.
 *
 * Contract, beyond the PresenceManager interface (and the memory manager's semantics): an
 * entry is one row (channel, client) whose expiry is measured with the database clock, so all
 * nodes agree on it; reads skip expired rows and the engine's periodic cleanup deletes them.
 * `numUsers` counts distinct users among live entries. Every call is safe to repeat, so
 * failures are EngineUnavailableErrors, never outcome unknown.
 */
export class PostgresPresenceManager implements PresenceManager {
  private readonly db: PostgresDatabase;
  private readonly ownsDb: boolean;
  private readonly ready: () => boolean;
  private readonly onError: (err: unknown) => void;
  private closed = false;

  constructor(options: PostgresPresenceOptions) {
    this.onError = options.onError ?? ((err) => console.error('bulwark: postgresql presence', err));
    this.ownsDb = options.database === undefined;
    this.db = (options.database ?? new PostgresDatabase(options as PostgresEngineOptions, this.onError)).retain();
    this.ready = options.isReady ?? (() => true);
  }

  /** isReady tells whether presence can be read and written now. */
  isReady(): boolean {
    return this.ready();
  }

  /** start migrates the schema when the manager owns its database (the engine's broker does it otherwise). */
  async start(): Promise<void> {
    if (this.ownsDb) await this.db.start();
  }

  /** addPresence adds or refreshes a client's entry in the channel for `ttlMs`. */
  async addPresence(channel: string, info: ClientInfo, ttlMs: number): Promise<void> {
    await this.db.query(
      `INSERT INTO ${this.db.tables.presence} (channel, client_id, user_id, info, expires_at)
       VALUES ($1, $2, $3, $4, ${NOW_MS} + $5)
       ON CONFLICT (channel, client_id) DO UPDATE
         SET user_id = EXCLUDED.user_id, info = EXCLUDED.info, expires_at = EXCLUDED.expires_at`,
      [channel, info.client, info.user, JSON.stringify(info), Math.ceil(ttlMs)],
    );
  }

  /** removePresence removes a client's entry at once (`userId` is not needed: the row has it). */
  async removePresence(channel: string, clientId: string, _userId: string): Promise<void> {
    await this.db.query(`DELETE FROM ${this.db.tables.presence} WHERE channel = $1 AND client_id = $2`, [
      channel,
      clientId,
    ]);
  }

  /** presence returns the live entries of the channel, keyed by client id. */
  async presence(channel: string): Promise<Record<string, ClientInfo>> {
    const rows = await this.db.query<{ client_id: string; info: string }>(
      `SELECT client_id, info FROM ${this.db.tables.presence} WHERE channel = $1 AND expires_at >= ${NOW_MS}`,
      [channel],
    );
    const out: Record<string, ClientInfo> = {};
    for (const row of rows) {
      try {
        out[row.client_id] = decodeClientInfo(row.info);
      } catch (err) {
        this.onError(err); // one bad entry must not hide the channel's other entries
      }
    }
    return out;
  }

  /** presenceStats counts the channel's live connections and distinct users. */
  async presenceStats(channel: string): Promise<PresenceStats> {
    const rows = await this.db.query<{ clients: number; users: number }>(
      `SELECT count(*)::int AS clients, count(DISTINCT user_id)::int AS users
       FROM ${this.db.tables.presence} WHERE channel = $1 AND expires_at >= ${NOW_MS}`,
      [channel],
    );
    return { numClients: rows[0]?.clients ?? 0, numUsers: rows[0]?.users ?? 0 };
  }

  /** close releases the database (closing its pool when no one else uses it); idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.close();
  }
}
