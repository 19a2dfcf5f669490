/**
 * Delivery of one subscribed channel on one node: what the node delivered so far (epoch and
 * offset), and a queue that runs the channel's deliveries one after the other, so that
 * publications, joins and leaves reach the handler in the order the database committed them
 * even though a catch-up read is asynchronous. Catch-up reads are coalesced: while one is
 * waiting to run, more notifications of the channel do not queue more.
 *
 * @module
 */
import type { Publication } from '../../protocol/types.js';
import type { PostgresDatabase } from './database.js';
import { PUBLICATION_COLUMNS, rowToPublication, type PublicationRow } from './codec.js';

/** Task is one delivery step of a channel. */
type Task = () => void | Promise<void>;

/** Feed is one subscribed channel's delivery state and queue. */
export class Feed {
  /** Epoch of the stream the node delivered from ('' before it knew one). */
  epoch = '';
  /** Offset of the last publication delivered (or skipped as gone) in `epoch`. */
  offset = 0;
  /** The last publication delivered, the `prev` of the next one (delta compression). */
  last: Publication | undefined;
  /** False until the stream's position at subscribe time was read. */
  ready = false;
  /** Settles when that read did (rejects when it failed: the feed is then dropped). */
  started: Promise<void> = Promise.resolve();
  readonly #tasks: Task[] = [];
  readonly #onError: (err: unknown) => void;
  #running = false;
  #catchUpQueued = false;

  constructor(
    readonly channel: string,
    onError: (err: unknown) => void,
  ) {
    this.#onError = onError;
  }

  /** push queues a task after every task queued before it. */
  push(task: Task): void {
    this.#tasks.push(task);
    if (!this.#running) void this.#pump();
  }

  /** pushCatchUp queues a catch-up read unless one is already waiting to run. */
  pushCatchUp(task: Task): void {
    if (this.#catchUpQueued) return;
    this.#catchUpQueued = true;
    this.push(() => {
      this.#catchUpQueued = false;
      return task();
    });
  }

  async #pump(): Promise<void> {
    this.#running = true;
    for (let task = this.#tasks.shift(); task !== undefined; task = this.#tasks.shift()) {
      try {
        await task();
      } catch (err) {
        this.#onError(err);
      }
    }
    this.#running = false;
  }
}

/** Deliver hands one publication to the handler, unless the channel was unsubscribed meanwhile. */
export type Deliver = (feed: Feed, pub: Publication, epoch: string, prev: Publication | undefined) => boolean;

interface CatchUpRow extends Partial<PublicationRow> {
  epoch: string;
  top: number;
}

/**
 * catchUp reads and delivers, in offset order, the publications of `feed`'s channel that the
 * node has not delivered: rows with offset > feed.offset, in pages of `catchUpBatch`. The
 * stream's epoch and top come from the same statement (one snapshot), so a new epoch restarts
 * delivery from offset 1, and offsets up to the top that are not in the table any more
 * (trimmed, expired) are skipped instead of being looked for again. The page starts at the
 * last delivered offset (one row more than a page), so the first publication after a subscribe
 * gets its `prev` too.
 */
export async function catchUp(db: PostgresDatabase, feed: Feed, deliver: Deliver): Promise<void> {
  const t = db.tables;
  const batch = db.o.catchUpBatch;
  for (;;) {
    const from = Math.max(1, feed.offset);
    const rows = await db.query<CatchUpRow>(
      `SELECT s.epoch, s.top, p.* FROM ${t.streams} s LEFT JOIN LATERAL (
         SELECT ${PUBLICATION_COLUMNS} FROM ${t.publications}
         WHERE channel = s.channel AND "offset" >= $2 ORDER BY "offset" LIMIT $3) p ON true
       WHERE s.channel = $1`,
      [feed.channel, from, batch + 1],
    );
    const first = rows[0];
    if (first === undefined) return; // no stream (yet)
    if (first.epoch !== feed.epoch) {
      const restart = from > 1;
      feed.epoch = first.epoch;
      feed.offset = 0;
      feed.last = undefined;
      if (restart) continue;
    }
    let previous = feed.last;
    let count = 0;
    for (const row of rows) {
      if (row.offset == null) continue;
      count++;
      const pub = rowToPublication(row as PublicationRow);
      if (pub.offset <= feed.offset) {
        if (pub.offset === feed.offset) previous ??= pub;
        continue;
      }
      const prev = row.delta === true && previous?.offset === pub.offset - 1 ? previous : undefined;
      if (!deliver(feed, pub, first.epoch, prev)) return;
      feed.offset = pub.offset;
      feed.last = pub;
      previous = pub;
    }
    if (count <= batch) {
      // Everything up to the top that was not returned is gone (trimmed or expired).
      if (first.top > feed.offset) feed.offset = first.top;
      return;
    }
  }
}
