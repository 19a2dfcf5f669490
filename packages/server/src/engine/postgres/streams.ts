/**
 * A channel stream's row in `<prefix>_streams`, inside a publish or history transaction: lock
 * it (creating it when missing), apply its expiry, write it back, and read a page of its
 * publications. Expiry follows the memory broker: past `meta_expires_at` the stream is gone
 * (a new epoch starts at offset 0, and publications left from the old epoch are deleted, so
 * offsets never collide); past `history_expires_at` its publications are gone but the
 * position stays.
 *
 * @module
 */
import type { HistoryQuery } from '../broker.js';
import type { Publication } from '../../protocol/types.js';
import { PUBLICATION_COLUMNS, rowToPublication, type PublicationRow } from './codec.js';
import type { Query } from './database.js';
import { NOW_MS, type Tables } from './schema.js';

/** StreamRow is a locked stream row, with the database clock read in the same statement. */
export interface StreamRow {
  epoch: string;
  top: number;
  version: number;
  version_epoch: string;
  history_expires_at: number;
  meta_expires_at: number;
  /** The database clock (ms) when the row was locked. */
  now: number;
}

/**
 * lockStream locks the channel's stream row until the transaction ends (creating it with
 * `newEpoch` when missing: INSERT … ON CONFLICT takes the same row lock either way, so two
 * first publishes of a channel cannot both create it), and returns it live: reset to a new
 * epoch when its meta TTL passed, without publications when its history TTL passed.
 */
export async function lockStream(q: Query, t: Tables, channel: string, newEpoch: string): Promise<StreamRow> {
  const rows = await q<StreamRow>(
    `INSERT INTO ${t.streams} AS s (channel, epoch) VALUES ($1, $2)
     ON CONFLICT (channel) DO UPDATE SET top = s.top
     RETURNING epoch, top, version, version_epoch, history_expires_at, meta_expires_at, ${NOW_MS} AS now`,
    [channel, newEpoch],
  );
  const s = rows[0]!;
  if (s.meta_expires_at < s.now) {
    // A new stream (meta_expires_at 0) or an expired one: a fresh position.
    Object.assign(s, { epoch: newEpoch, top: 0, version: 0, version_epoch: '', history_expires_at: 0 });
    s.meta_expires_at = 0;
    await q(`DELETE FROM ${t.publications} WHERE channel = $1`, [channel]);
  } else if (s.history_expires_at > 0 && s.history_expires_at < s.now) {
    s.history_expires_at = 0;
    await q(`DELETE FROM ${t.publications} WHERE channel = $1`, [channel]);
  }
  return s;
}

/** saveStream writes a locked stream row back. */
export async function saveStream(q: Query, t: Tables, channel: string, s: StreamRow): Promise<void> {
  await q(
    `UPDATE ${t.streams} SET epoch = $2, top = $3, version = $4, version_epoch = $5,
       history_expires_at = $6, meta_expires_at = $7 WHERE channel = $1`,
    [channel, s.epoch, s.top, s.version, s.version_epoch, s.history_expires_at, s.meta_expires_at],
  );
}

/**
 * readPage reads the publications a history query asks for, with the memory broker's
 * semantics: limit 0 reads nothing, a negative limit everything (LIMIT NULL); forward reads
 * offsets > since, oldest first; reverse reads offsets < since (all without since), newest
 * first. Each is a range scan of the (channel, offset) primary key.
 */
export async function readPage(q: Query, t: Tables, channel: string, query: HistoryQuery): Promise<Publication[]> {
  if (query.limit === 0) return [];
  const limit = query.limit < 0 ? null : Math.floor(query.limit);
  if (limit === 0) return [];
  const since =
    query.since === undefined
      ? undefined
      : Math.max(-1, Math.min(Math.floor(query.since.offset), Number.MAX_SAFE_INTEGER - 1));
  const select = `SELECT ${PUBLICATION_COLUMNS} FROM ${t.publications} WHERE channel = $1`;
  let rows: PublicationRow[];
  if (!query.reverse) {
    rows = await q(`${select} AND "offset" > $2 ORDER BY "offset" LIMIT $3`, [channel, since ?? 0, limit]);
  } else if (since === undefined) {
    rows = await q(`${select} ORDER BY "offset" DESC LIMIT $2`, [channel, limit]);
  } else {
    rows = await q(`${select} AND "offset" < $2 ORDER BY "offset" DESC LIMIT $3`, [channel, since, limit]);
  }
  return rows.map(rowToPublication);
}
