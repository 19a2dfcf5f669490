/**
 * Delivery of one subscribed map channel on one node, on top of feed.ts's {@link Feed} (the
 * channel's queue and the epoch and offset delivered so far): a change that arrives whole in
 * its notification and is the next one the node needs is delivered as it is; anything else (a
 * gap, another epoch, a change too large to carry, the poll finding the node behind) is read
 * from the stream table by {@link catchUpMap}. So a lost notification delays a change, never
 * loses it while the stream keeps it.
 *
 * @module
 */
import type { Publication } from '../../protocol/types.js';
import type { PostgresDatabase } from './database.js';
import type { Feed } from './feed.js';
import { mapPublication, type MapRow } from './map-codec.js';

/** MapDeliver hands one change to the handler; false when the channel was unsubscribed meanwhile. */
export type MapDeliver = (feed: Feed, pub: Publication, epoch: string) => boolean;

interface CatchUpRow extends MapRow {
  epoch: string;
  top: number;
}

/**
 * catchUpMap reads and delivers, in offset order, the changes of `feed`'s channel the node has
 * not delivered, in pages of `catchUpBatch`. The position comes from the same statement (one
 * snapshot): a new epoch restarts delivery from offset 1, and offsets up to the top that the
 * stream no longer holds (trimmed) are skipped, not looked for again; the session sees the gap
 * and makes its subscribers resubscribe.
 */
export async function catchUpMap(db: PostgresDatabase, feed: Feed, deliver: MapDeliver): Promise<void> {
  const t = db.tables;
  const batch = db.o.catchUpBatch;
  for (;;) {
    const from = feed.offset;
    const rows = await db.query<CatchUpRow>(
      `SELECT m.epoch, m.top, s."offset", s.key, s.removed, s.data, s.info, s.tags, s.score
       FROM ${t.mapMeta} m LEFT JOIN LATERAL (
         SELECT * FROM ${t.mapStream} WHERE channel = m.channel AND "offset" > $2 ORDER BY "offset" LIMIT $3) s ON true
       WHERE m.channel = $1`,
      [feed.channel, from, batch],
    );
    const first = rows[0];
    if (first === undefined) return; // no position (yet, or cleared)
    if (first.epoch !== feed.epoch) {
      feed.epoch = first.epoch;
      feed.offset = 0;
      if (from > 0) continue;
    }
    let count = 0;
    for (const row of rows) {
      if (row.offset == null) continue;
      count++;
      const pub = mapPublication(row);
      if (pub.offset <= feed.offset) continue;
      if (!deliver(feed, pub, first.epoch)) return;
      feed.offset = pub.offset;
    }
    if (count < batch) {
      if (first.top > feed.offset) feed.offset = first.top;
      return;
    }
  }
}

/**
 * applyChange delivers a change that came whole in a notification when it is the next one of
 * the epoch the node delivers (or the first one of a channel that had no position when the node
 * subscribed); an ephemeral change (offset 0) always. Otherwise it catches up from the stream.
 */
export async function applyChange(
  db: PostgresDatabase,
  feed: Feed,
  pub: Publication,
  epoch: string,
  deliver: MapDeliver,
): Promise<void> {
  if (pub.offset === 0) {
    deliver(feed, pub, epoch);
    return;
  }
  if (epoch === feed.epoch && pub.offset <= feed.offset) return; // a catch-up delivered it
  const next = epoch === feed.epoch || (feed.epoch === '' && feed.offset === 0);
  if (next && pub.offset === feed.offset + 1) {
    if (!deliver(feed, pub, epoch)) return;
    feed.epoch = epoch;
    feed.offset = pub.offset;
    return;
  }
  await catchUpMap(db, feed, deliver);
}
