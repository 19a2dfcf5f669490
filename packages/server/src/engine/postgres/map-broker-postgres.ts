/**
 * The PostgreSQL map broker: map channels (state, change stream, position) in PostgreSQL tables,
 * shared by every Bulwark node on one database, with changes delivered through LISTEN/NOTIFY and
 * a catch-up read. It matches the memory and Redis map brokers (all run
 * `test/conformance/map.case.ts`); the tables and the SQL functions that write them are in
 * map-schema.ts, delivery in map-feed.ts; docs/POSTGRESQL.md explains the design.
 *
 * @module
 */
import type { Publication } from '../../protocol/types.js';
import type { BrokerEventHandler } from '../broker.js';
import type {
  MapBroker,
  MapPublishOptions,
  MapRemoveOptions,
  MapStatePage,
  MapStateQuery,
  MapStreamPage,
  MapStreamQuery,
  MapUpdateResult,
} from '../map-broker.js';
import { PostgresDatabase, type PostgresEngineOptions } from './database.js';
import { Feed } from './feed.js';
import { Listener } from './listener.js';
import {
  entryRow,
  expected,
  json,
  metaTtl,
  namingKey,
  newEpoch,
  outcome,
  resultTtl,
  retention,
  streamRange,
  unrecoverable,
  type EntryRow,
  type PositionRow,
  type WriteRow,
} from './map-calls.js';
import { decodeMapNotice, mapPublication, type MapNotice } from './map-codec.js';
import { applyChange, catchUpMap } from './map-feed.js';
import { NOW_MS } from './tables.js';

/** PostgresMapBrokerOptions configure a {@link PostgresMapBroker}. */
export interface PostgresMapBrokerOptions extends Partial<PostgresEngineOptions> {
  /** The engine's database (shared pool, migrated by the engine); else the broker makes its own from the options. */
  database?: PostgresDatabase;
  /** How often each node removes the keys whose TTL passed (ms; Centrifugo's map `cleanup_interval`). Default 1000; 0: never (tests call `expire()`). */
  mapCleanupIntervalMs?: number;
  /** Most keys one expiry step removes (`cleanup_batch_size`). Default 100. */
  mapCleanupBatchSize?: number;
  /** Called when the broker becomes usable (its LISTEN connection up) or stops being usable, after start. */
  onStateChange?: (up: boolean) => void;
  /** Receives what no caller can: handler exceptions, malformed notifications, connection and expiry errors. */
  onError?: (err: unknown) => void;
}

/** How many channels one poll query asks about. */
const POLL_CHUNK = 1000;

/** Expiry rounds one run makes at most: a larger backlog waits for the next run. */
const EXPIRY_ROUNDS = 10;

/**
 * PostgresMapBroker implements {@link MapBroker} on PostgreSQL.
 *
 * Contract, beyond the MapBroker interface (and the memory map broker's semantics):
 * - Each write, removal and key expiry is one statement, a call of a map-schema.ts function:
 *   under the channel's meta row lock it checks the conditions, changes the state, appends to
 *   the stream, moves the position and sends the NOTIFY, all in one transaction. Changes of a
 *   channel commit in offset order, and of concurrent `if_new` writes from any nodes exactly
 *   one wins.
 * - Delivery: a notification carrying the next change of a subscribed channel is delivered as
 *   it is; otherwise (gap, new epoch, change too large for NOTIFY) the node reads the stream
 *   after what it delivered. Every `pollIntervalMs`, and when the LISTEN connection comes back,
 *   it compares the positions of its subscribed channels with what it delivered and reads what
 *   it missed, so a lost notification delays a change of a map with a stream, never loses it
 *   while the stream keeps it. Ephemeral maps (no stream) are delivered at most once.
 * - Key TTLs run on the database clock. Every node runs the expiry loop; a key is removed (and
 *   its removal delivered) exactly once, by whichever node locks its channel first, within
 *   about `mapCleanupIntervalMs` of its expiry. Until then reads still return it.
 * - While PostgreSQL is unreachable calls reject with an EngineUnavailableError naming the
 *   channel and key; a write whose statement got no answer with an EngineOutcomeUnknownError.
 */
export class PostgresMapBroker implements MapBroker {
  private readonly db: PostgresDatabase;
  private readonly ownsDb: boolean;
  private readonly listener: Listener;
  private readonly cleanupIntervalMs: number;
  private readonly batch: number;
  private readonly onStateChange: ((up: boolean) => void) | undefined;
  private readonly onError: (err: unknown) => void;
  private readonly feeds = new Map<string, Feed>();
  private handler: BrokerEventHandler | undefined;
  private state: 'new' | 'started' | 'closed' = 'new';
  private up = false;
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private expiryTimer: ReturnType<typeof setInterval> | undefined;
  private polling = false;
  private expiring: Promise<void> | undefined;

  constructor(options: PostgresMapBrokerOptions) {
    this.onError = options.onError ?? ((err) => console.error('bulwark: postgresql map broker', err));
    this.ownsDb = options.database === undefined;
    this.db = (options.database ?? new PostgresDatabase(options as PostgresEngineOptions, this.onError)).retain();
    this.cleanupIntervalMs = options.mapCleanupIntervalMs ?? 1000;
    this.batch = Math.max(1, Math.floor(options.mapCleanupBatchSize ?? 100));
    this.onStateChange = options.onStateChange;
    this.listener = new Listener(
      this.db,
      {
        onNotice: (payload) => this.dispatch(payload),
        onUp: () => {
          this.setUp(true);
          this.poll(); // notifications sent while the connection was down were lost
        },
        onDown: () => this.setUp(false),
        onError: (err) => this.onError(err),
      },
      this.db.tables.mapEvents,
      'bulwark-listen-map',
    );
  }

  /** address is where PostgreSQL is, without credentials (for logs). */
  get address(): string {
    return this.db.address;
  }

  /** isReady tells whether the broker can write and deliver right now. */
  isReady(): boolean {
    return this.up;
  }

  /** start migrates the schema (own database only), listens, and starts the poll and the expiry loop. */
  async start(handler: BrokerEventHandler): Promise<void> {
    if (this.state !== 'new') throw new Error(`PostgresMapBroker.start: broker is ${this.state}`);
    this.handler = handler;
    try {
      if (this.ownsDb) await this.db.start();
      await this.listener.start();
    } catch (err) {
      await this.close();
      throw err;
    }
    this.state = 'started';
    this.setUp(this.listener.up);
    this.pollTimer = setInterval(() => this.poll(), this.db.o.pollIntervalMs);
    this.pollTimer.unref();
    if (this.cleanupIntervalMs > 0) {
      this.expiryTimer = setInterval(() => void this.expire(), this.cleanupIntervalMs);
      this.expiryTimer.unref();
    }
  }

  /** subscribe reads the channel's position (what came before is the state's), then delivers from there. */
  subscribe(channel: string): Promise<void> {
    const existing = this.feeds.get(channel);
    if (existing !== undefined) return existing.started;
    const feed = new Feed(channel, (err) => this.state !== 'closed' && this.onError(err));
    this.feeds.set(channel, feed);
    feed.started = new Promise((resolve, reject) => {
      feed.push(async () => {
        try {
          const rows = await this.db.query<{ epoch: string; top: number }>(
            `SELECT epoch, top FROM ${this.db.tables.mapMeta} WHERE channel = $1`,
            [channel],
          );
          feed.epoch = rows[0]?.epoch ?? '';
          feed.offset = rows[0]?.top ?? 0;
          feed.ready = true;
          resolve();
        } catch (err) {
          if (this.feeds.get(channel) === feed) this.feeds.delete(channel);
          reject(err);
        }
      });
    });
    return feed.started;
  }

  /** unsubscribe stops delivery of the channel to this node at once. */
  async unsubscribe(channel: string): Promise<void> {
    this.feeds.delete(channel);
  }

  async publish(channel: string, key: string, o: MapPublishOptions): Promise<MapUpdateResult> {
    const [expOffset, expEpoch] = expected(o);
    const rows = await this.write('publish', channel, key, () =>
      this.db.query<WriteRow>(
        `SELECT * FROM ${this.db.tables.mapPublish}($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, $9, $10, $11, $12,
           $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
        [
          channel,
          key,
          o.data,
          json(o.info),
          json(o.tags),
          o.score !== undefined && Number.isFinite(o.score) ? o.score : 0,
          ...retention(o),
          Math.max(0, Math.floor(o.maxKeys)),
          newEpoch(),
          o.keyMode ?? null,
          expOffset,
          expEpoch,
          o.version !== undefined && o.version > 0 ? Math.floor(o.version) : 0,
          o.versionEpoch ?? '',
          o.idempotencyKey ?? null,
          resultTtl(o),
          o.ownerUser ?? null,
          o.refreshTtlOnSuppress === true,
        ],
        true,
      ),
    );
    return outcome(channel, o, rows);
  }

  async remove(channel: string, key: string, o: MapRemoveOptions): Promise<MapUpdateResult> {
    const [expOffset, expEpoch] = expected(o);
    const rows = await this.write('remove', channel, key, () =>
      this.db.query<WriteRow>(
        `SELECT * FROM ${this.db.tables.mapRemove}($1, $2, $3::jsonb, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12,
           $13, $14)`,
        [
          channel,
          key,
          json(o.info),
          json(o.tags),
          ...retention(o),
          newEpoch(),
          expOffset,
          expEpoch,
          o.idempotencyKey ?? null,
          resultTtl(o),
          o.ownerUser ?? null,
        ],
        true,
      ),
    );
    return outcome(channel, o, rows);
  }

  async readState(channel: string, q: MapStateQuery): Promise<MapStatePage> {
    const limit = Math.max(1, Math.floor(q.limit));
    const rows = await this.write('state read', channel, q.key ?? q.cursor, () =>
      this.db.query<PositionRow & EntryRow>(`SELECT * FROM ${this.db.tables.mapReadState}($1, $2, $3, $4, $5, $6)`, [
        channel,
        newEpoch(),
        metaTtl(q.metaTtlMs),
        q.cursor,
        limit + 1,
        q.key ?? null,
      ]),
    );
    const [position, ...found] = rows;
    if (position === undefined) throw new Error('map state read returned no position');
    const entries = found.map((r) => mapPublication(entryRow(r)));
    let cursor = '';
    if (q.key === undefined && entries.length > limit) {
      entries.length = limit;
      cursor = entries[limit - 1]!.key!;
    }
    return { offset: position.r_top, epoch: position.r_epoch, entries, cursor };
  }

  async readStream(channel: string, q: MapStreamQuery): Promise<MapStreamPage> {
    const [dir, since, limit] = streamRange(q);
    const rows = await this.db.query<PositionRow & { r_oldest: number } & EntryRow & { r_removed: boolean | null }>(
      `SELECT * FROM ${this.db.tables.mapReadStream}($1, $2, $3, $4, $5, $6)`,
      [channel, newEpoch(), metaTtl(q.metaTtlMs), dir, since, limit],
    );
    const [position, ...found] = rows;
    if (position === undefined) throw new Error('map stream read returned no position');
    const { r_top: top, r_epoch: epoch, r_oldest: oldest } = position;
    const s = q.since;
    if (s !== undefined && s.epoch !== '' && s.epoch !== epoch) unrecoverable();
    // Forward: the change right after `since` must still be kept (the memory broker's check).
    if (s !== undefined && !q.reverse && s.offset !== top) {
      if (s.offset > top || oldest < 0 || oldest > s.offset + 1) unrecoverable();
    }
    const publications = found.map((r) => mapPublication({ ...entryRow(r), removed: r.r_removed }));
    return { offset: top, epoch, publications };
  }

  async stats(channel: string): Promise<{ numKeys: number }> {
    const rows = await this.db.query<{ num_keys: number }>(
      `SELECT num_keys FROM ${this.db.tables.mapMeta} WHERE channel = $1`,
      [channel],
    );
    return { numKeys: rows[0]?.num_keys ?? 0 };
  }

  /** clear drops the channel's state, stream and position; the meta row goes first, so its lock orders it after writes in flight. */
  async clear(channel: string): Promise<void> {
    const t = this.db.tables;
    await this.db.transaction(true, async (q) => {
      await q(`DELETE FROM ${t.mapMeta} WHERE channel = $1`, [channel]);
      await q(`DELETE FROM ${t.mapState} WHERE channel = $1`, [channel]);
      await q(`DELETE FROM ${t.mapStream} WHERE channel = $1`, [channel]);
    });
  }

  /**
   * expire removes the keys whose TTL passed, oldest first, channel by channel, through
   * `<prefix>_map_expire` (each key exactly once whichever nodes run it). One run at a time per node.
   */
  expire(): Promise<void> {
    this.expiring ??= this.expireDue()
      .catch((err: unknown) => {
        if (this.state === 'started') this.onError(err);
      })
      .finally(() => (this.expiring = undefined));
    return this.expiring;
  }

  /** close stops delivery, the poll and the expiry loop, and closes the connections; idempotent. */
  async close(): Promise<void> {
    const wasClosed = this.state === 'closed';
    this.state = 'closed';
    this.handler = undefined;
    this.feeds.clear();
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    if (this.expiryTimer !== undefined) clearInterval(this.expiryTimer);
    this.up = false;
    await this.expiring;
    await this.listener.close();
    if (!wasClosed) await this.db.close();
  }

  private async expireDue(): Promise<void> {
    if (!this.up) return;
    const t = this.db.tables;
    for (let round = 0; round < EXPIRY_ROUNDS; round++) {
      const due = await this.db.query<{ channel: string; key: string }>(
        `SELECT channel, key FROM ${t.mapState} WHERE expires_at > 0 AND expires_at <= ${NOW_MS}
         ORDER BY expires_at LIMIT $1`,
        [this.batch],
      );
      const byChannel = new Map<string, string[]>();
      for (const { channel, key } of due) byChannel.set(channel, [...(byChannel.get(channel) ?? []), key]);
      let removed = 0;
      for (const [channel, keys] of byChannel) {
        const rows = await this.db.query<{ n: number }>(
          `SELECT ${t.mapExpire}($1, $2::text[]) AS n`,
          [channel, keys],
          true,
        );
        removed += Math.max(0, rows[0]?.n ?? 0);
      }
      // Done, or what is left is held by other nodes or writes: the next run gets it.
      if (due.length < this.batch || removed === 0) return;
    }
  }

  /** write runs a statement of a write (or a read of a key) and names the channel and key in its error. */
  private async write<T>(op: string, channel: string, key: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw namingKey(err, `map ${op} of key ${JSON.stringify(key)} in channel ${JSON.stringify(channel)}`);
    }
  }

  private setUp(up: boolean): void {
    const now = this.state === 'started' && up;
    if (now === this.up) return;
    this.up = now;
    try {
      this.onStateChange?.(now);
    } catch (err) {
      this.onError(err);
    }
  }

  /** dispatch queues one notification on its channel's feed; it never throws (see onError). */
  private dispatch(payload: string): void {
    if (this.handler === undefined) return;
    let notice: MapNotice;
    try {
      notice = decodeMapNotice(payload);
    } catch (err) {
      this.onError(err);
      return;
    }
    const feed = this.feeds.get(notice.channel);
    if (feed === undefined) return;
    if (notice.kind === 'change') {
      feed.push(async () => {
        if (this.live(feed)) await applyChange(this.db, feed, notice.pub, notice.epoch, this.deliver);
      });
    } else if (notice.kind === 'pointer') {
      if (feed.ready && notice.epoch === feed.epoch && notice.offset <= feed.offset) return;
      feed.pushCatchUp(() => this.catchUp(feed));
    } else {
      // Read and delivered in this task, so it keeps its place in the channel's order.
      feed.push(async () => {
        const rows = await this.db.query<{ payload: string }>(
          `SELECT payload FROM ${this.db.tables.notices} WHERE id = $1`,
          [notice.id],
        );
        const inner = rows[0] === undefined ? undefined : decodeMapNotice(rows[0].payload);
        if (inner?.kind === 'change' && inner.channel === feed.channel && this.live(feed)) {
          await applyChange(this.db, feed, inner.pub, inner.epoch, this.deliver);
        }
      });
    }
  }

  /** deliver hands one change to the handler, while the channel is still subscribed. */
  private readonly deliver = (feed: Feed, pub: Publication, epoch: string): boolean => {
    if (!this.live(feed)) return false;
    const handler = this.handler;
    if (handler === undefined) return false;
    try {
      handler.onPublication(feed.channel, pub, epoch);
    } catch (err) {
      this.onError(err);
    }
    return true;
  };

  private live(feed: Feed): boolean {
    return this.feeds.get(feed.channel) === feed;
  }

  private catchUp(feed: Feed): Promise<void> {
    if (!this.live(feed)) return Promise.resolve();
    return catchUpMap(this.db, feed, this.deliver);
  }

  /**
   * poll compares the positions of the subscribed channels with what this node delivered and
   * queues a catch-up read where it is behind: the safety net under NOTIFY. It runs on the
   * LISTEN connection, as its heartbeat.
   */
  private poll(): void {
    if (this.polling || !this.listener.up || this.state !== 'started') return;
    this.polling = true;
    void (async () => {
      const channels = [...this.feeds.values()].filter((f) => f.ready).map((f) => f.channel);
      if (channels.length === 0) await this.listener.query('SELECT 1');
      for (let i = 0; i < channels.length; i += POLL_CHUNK) {
        const rows = await this.listener.query<{ channel: string; epoch: string; top: number }>(
          `SELECT channel, epoch, top FROM ${this.db.tables.mapMeta} WHERE channel = ANY($1::text[])`,
          [channels.slice(i, i + POLL_CHUNK)],
        );
        for (const row of rows) {
          const feed = this.feeds.get(row.channel);
          if (feed !== undefined && (row.epoch !== feed.epoch || row.top > feed.offset)) {
            feed.pushCatchUp(() => this.catchUp(feed));
          }
        }
      }
    })()
      .catch(() => undefined) // the listener reported the outage and reconnects
      .finally(() => (this.polling = false));
  }
}
