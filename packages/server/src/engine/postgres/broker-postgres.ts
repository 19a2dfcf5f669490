/**
 * The PostgreSQL broker: channel history in tables and delivery to every node through
 * LISTEN/NOTIFY plus a catch-up read, so several Bulwark nodes on one PostgreSQL act as one,
 * with history that survives restarts of every node. It matches the memory broker's behaviour
 * (both run `test/conformance/broker.case.ts`); docs/POSTGRESQL.md explains the design.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { ErrorCode, ProtocolError } from '../../protocol/codes.js';
import type { ClientInfo, Publication, RawJSON } from '../../protocol/types.js';
import {
  DEFAULT_IDEMPOTENT_RESULT_TTL_MS,
  type Broker,
  type BrokerEventHandler,
  type HistoryQuery,
  type HistoryResult,
  type PublishOptions,
  type PublishResult,
} from '../broker.js';
import { startCleanup } from './cleanup.js';
import { controlNotice, decodeNotice, joinLeaveNotice, largeNotice, type Notice } from './codec.js';
import { PostgresDatabase, type PostgresEngineOptions, type Query } from './database.js';
import { catchUp, Feed } from './feed.js';
import { Listener } from './listener.js';
import { NOTIFY_MAX_BYTES } from './publish-function.js';
import { NOW_MS } from './tables.js';
import { lockStream, readPage, saveStream } from './streams.js';

/** PostgresBrokerOptions configure a {@link PostgresBroker}. */
export interface PostgresBrokerOptions extends Partial<PostgresEngineOptions> {
  /** A database shared with the presence manager (the engine's); else the broker makes its own from the options. */
  database?: PostgresDatabase;
  /** Meta TTL used when a publish or history read passes 0 or less (ms). Default: 30 days. */
  defaultMetaTtlMs?: number;
  /** Called when the broker becomes usable (LISTEN connection up) or stops being usable, after start. */
  onStateChange?: (up: boolean) => void;
  /** Receives what no caller can: handler exceptions, malformed rows, connection errors. */
  onError?: (err: unknown) => void;
}

/** Default meta TTL, as Centrifugo's `channel.history_meta_ttl` (720h) and the memory broker. */
const DEFAULT_META_TTL_MS = 720 * 60 * 60 * 1000;

/** How many channels one poll query asks about. */
const POLL_CHUNK = 1000;

/**
 * PostgresBroker implements {@link Broker} on PostgreSQL.
 *
 * Contract, beyond the Broker interface (and the memory broker's history semantics):
 * - `publish` with history is one transaction: lock the channel's stream row (which orders the
 *   channel's publishes: offsets are gapless and commit in offset order), idempotency check,
 *   version check, insert, trim to historySize, TTLs, and a NOTIFY carrying channel, offset
 *   and epoch (never the data). Without history it is one NOTIFY carrying the publication
 *   (through the notices table when larger than NOTIFY allows), in a transaction with the
 *   idempotency result when it has a key.
 * - Delivery: a notification makes the node read, for a subscribed channel, the rows after the
 *   last offset it delivered, and deliver them in offset order, each at most once per node.
 *   Every `pollIntervalMs` (and when the LISTEN connection comes back) the node compares the
 *   tops of its subscribed channels with what it delivered and reads what it missed, so a lost
 *   notification delays a publication, never loses it while history holds it. A channel's
 *   publications without history, joins and leaves are delivered in the same queue, in the
 *   order they were committed; none of them is caught up (at most once, as with Redis).
 * - While PostgreSQL is unreachable calls reject with an EngineUnavailableError within about
 *   connect or io timeout; a publish whose COMMIT (or NOTIFY, without history) got no answer
 *   rejects with an EngineOutcomeUnknownError. `isReady` follows the LISTEN connection.
 * - `start` brings the schema up to date (see schema.ts) and listens; it rejects with an
 *   EngineUnavailableError when PostgreSQL is unreachable, or BW_ERR_ENGINE_SCHEMA on a newer
 *   schema, and leaves nothing running.
 */
export class PostgresBroker implements Broker {
  private readonly db: PostgresDatabase;
  private readonly ownsDb: boolean;
  private readonly listener: Listener;
  private readonly defaultMetaTtlMs: number;
  private readonly onStateChange: ((up: boolean) => void) | undefined;
  private readonly onError: (err: unknown) => void;
  private readonly feeds = new Map<string, Feed>();
  private handler: BrokerEventHandler | undefined;
  private state: 'new' | 'started' | 'closed' = 'new';
  private up = false;
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private polling = false;
  private stopCleanup: () => void = () => undefined;

  constructor(options: PostgresBrokerOptions) {
    this.onError = options.onError ?? ((err) => console.error('bulwark: postgresql broker', err));
    this.ownsDb = options.database === undefined;
    this.db = (options.database ?? new PostgresDatabase(options as PostgresEngineOptions, this.onError)).retain();
    this.defaultMetaTtlMs = options.defaultMetaTtlMs ?? DEFAULT_META_TTL_MS;
    this.onStateChange = options.onStateChange;
    this.listener = new Listener(this.db, {
      onNotice: (payload) => this.dispatch(payload),
      onUp: () => {
        this.setUp(true);
        this.poll(); // notifications sent while the connection was down were lost
      },
      onDown: () => this.setUp(false),
      onError: (err) => this.onError(err),
    });
  }

  /** address is where PostgreSQL is, without credentials (for logs). */
  get address(): string {
    return this.db.address;
  }

  /** isReady tells whether the broker can publish and deliver right now. */
  isReady(): boolean {
    return this.up;
  }

  /** start migrates the schema (own database only), listens and starts the poll; see the class contract. */
  async start(handler: BrokerEventHandler): Promise<void> {
    if (this.state !== 'new') throw new Error(`PostgresBroker.start: broker is ${this.state}`);
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
    this.stopCleanup = startCleanup(this.db, this.onError);
  }

  /**
   * subscribe makes this node receive the channel's publications, joins and leaves: it reads
   * the stream's position (what came before it is not delivered), then delivers from there.
   */
  subscribe(channel: string): Promise<void> {
    const existing = this.feeds.get(channel);
    if (existing !== undefined) return existing.started;
    const feed = new Feed(channel, (err) => this.state !== 'closed' && this.onError(err));
    this.feeds.set(channel, feed);
    // Calls for a channel being subscribed share this one read, and its failure.
    feed.started = new Promise((resolve, reject) => {
      feed.push(async () => {
        try {
          const rows = await this.db.query<{ epoch: string; top: number }>(
            `SELECT epoch, top FROM ${this.db.tables.streams} WHERE channel = $1`,
            [feed.channel],
          );
          feed.epoch = rows[0]?.epoch ?? '';
          feed.offset = rows[0]?.top ?? 0;
          feed.ready = true;
          resolve();
        } catch (err) {
          if (this.feeds.get(feed.channel) === feed) this.feeds.delete(feed.channel);
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

  /**
   * publish stores (when history is on) and publishes one publication in one statement: a call
   * of `<prefix>_publish_raw`, the function a backend's `<prefix>_publish` calls too, so both
   * paths lock, number, trim, remember and notify alike (publish-function.ts).
   */
  async publish(channel: string, data: RawJSON, opts: PublishOptions): Promise<PublishResult> {
    const history = opts.historySize > 0 && opts.historyTtlMs > 0;
    const rows = await this.db.query<{
      channel_offset: number;
      epoch: string;
      suppressed: boolean;
      suppress_reason: string;
    }>(
      `SELECT * FROM ${this.db.tables.publishRaw}($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11, $12::jsonb, $13, $14, $15)`,
      [
        channel,
        data,
        newEpoch(),
        opts.idempotencyKey ?? '',
        Math.max(1, Math.ceil(opts.idempotentResultTtlMs ?? DEFAULT_IDEMPOTENT_RESULT_TTL_MS)),
        history ? Math.max(1, Math.floor(opts.historySize)) : 0,
        history ? Math.ceil(opts.historyTtlMs) : 0,
        this.metaTtl(opts.historyMetaTtlMs),
        json(opts.info),
        json(opts.tags),
        opts.time ?? null,
        opts.variants !== undefined && opts.variants.length > 0 ? JSON.stringify(opts.variants) : null,
        opts.delta === true,
        opts.version ?? 0,
        opts.versionEpoch ?? '',
      ],
      true,
    );
    const r = rows[0]!;
    const result: PublishResult = { offset: r.channel_offset, epoch: r.epoch };
    if (r.suppressed) result.suppressed = r.suppress_reason as 'idempotency' | 'version';
    return result;
  }

  /** publishJoin tells every node subscribed to the channel that a client joined it. */
  async publishJoin(channel: string, info: ClientInfo): Promise<void> {
    await this.notifyOnce(channel, joinLeaveNotice('join', channel, info), false);
  }

  /** publishLeave tells every node subscribed to the channel that a client left it. */
  async publishLeave(channel: string, info: ClientInfo): Promise<void> {
    await this.notifyOnce(channel, joinLeaveNotice('leave', channel, info), false);
  }

  /** publishControl sends a control message to every node, this one included. */
  async publishControl(data: RawJSON): Promise<void> {
    await this.notifyOnce('', controlNotice(data));
  }

  /** history reads a channel stream, creating its position if missing, as the memory broker does. */
  async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    const t = this.db.tables;
    const result = await this.db.transaction(false, async (q) => {
      const s = await lockStream(q, t, channel, newEpoch());
      s.meta_expires_at = Math.max(s.meta_expires_at, s.now + this.metaTtl(query.metaTtlMs));
      await saveStream(q, t, channel, s);
      const since = query.since;
      if (since !== undefined && since.epoch !== '' && since.epoch !== s.epoch) return undefined;
      return { publications: await readPage(q, t, channel, query), offset: s.top, epoch: s.epoch };
    });
    // The position was created or kept alive (committed) before the since check fails, as in memory.
    if (result === undefined) throw new ProtocolError(ErrorCode.UnrecoverablePosition);
    return result;
  }

  /** removeHistory drops a channel's publications and keeps its position. */
  async removeHistory(channel: string): Promise<void> {
    await this.db.query(`DELETE FROM ${this.db.tables.publications} WHERE channel = $1`, [channel]);
  }

  /** close stops delivery, the poll and the cleanup, and closes the connections; idempotent. */
  async close(): Promise<void> {
    const wasClosed = this.state === 'closed';
    this.state = 'closed';
    this.handler = undefined;
    this.feeds.clear();
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    this.stopCleanup();
    this.up = false;
    await this.listener.close();
    if (!wasClosed) await this.db.close();
  }

  /**
   * notify sends a notice in the caller's transaction (delivered at COMMIT, in commit order);
   * one larger than NOTIFY allows is stored in the notices table and its id is notified.
   */
  private async notify(q: Query, channel: string, payload: string): Promise<void> {
    const events = this.db.tables.events;
    if (Buffer.byteLength(payload) <= NOTIFY_MAX_BYTES) {
      await q('SELECT pg_notify($1, $2)', [events, payload]);
      return;
    }
    const rows = await q<{ id: number }>(
      `INSERT INTO ${this.db.tables.notices} (payload, created_at) VALUES ($1, ${NOW_MS}) RETURNING id`,
      [payload],
    );
    await q('SELECT pg_notify($1, $2)', [events, largeNotice(channel, rows[0]!.id)]);
  }

  /** notifyOnce sends one notice on its own: one statement when it fits NOTIFY. */
  private async notifyOnce(channel: string, payload: string, write = true): Promise<void> {
    if (Buffer.byteLength(payload) <= NOTIFY_MAX_BYTES) {
      await this.db.query('SELECT pg_notify($1, $2)', [this.db.tables.events, payload], write);
      return;
    }
    await this.db.transaction(write, (q) => this.notify(q, channel, payload));
  }

  private metaTtl(ttlMs: number): number {
    return Math.ceil(ttlMs > 0 ? ttlMs : this.defaultMetaTtlMs);
  }

  /** setUp records the LISTEN connection's state and reports a change of the broker's. */
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

  /** dispatch handles one notification; it never throws (see onError). */
  private dispatch(payload: string): void {
    if (this.handler === undefined) return;
    let notice: Notice;
    try {
      notice = decodeNotice(payload);
    } catch (err) {
      this.onError(err);
      return;
    }
    if (notice.kind === 'control') {
      this.call((h) => h.onControl(notice.data));
      return;
    }
    if (notice.kind === 'large' && notice.channel === '') {
      this.readLarge(notice.id).then((inner) => inner && this.dispatchNotice(inner), this.onError);
      return;
    }
    this.dispatchNotice(notice);
  }

  private dispatchNotice(notice: Notice): void {
    if (notice.kind === 'control') {
      this.call((h) => h.onControl(notice.data));
      return;
    }
    const feed = this.feeds.get(notice.channel);
    if (feed === undefined) return;
    if (notice.kind === 'history') {
      if (feed.ready && notice.epoch === feed.epoch && notice.offset <= feed.offset) return;
      feed.pushCatchUp(() => this.catchUp(feed));
    } else if (notice.kind === 'large') {
      // Read and delivered in this task, so it keeps its place in the channel's order.
      feed.push(async () => {
        const inner = await this.readLarge(notice.id);
        if (inner !== undefined && inner.kind !== 'large' && inner.kind !== 'control') await this.deliver(feed, inner);
      });
    } else {
      feed.push(() => this.deliver(feed, notice));
    }
  }

  /** deliver hands one channel notice to the handler, while the channel is still subscribed. */
  private async deliver(feed: Feed, notice: Exclude<Notice, { kind: 'control' | 'large' }>): Promise<void> {
    if (!this.live(feed)) return;
    switch (notice.kind) {
      case 'history':
        return this.catchUp(feed);
      case 'publication':
        return this.call((h) => h.onPublication(feed.channel, notice.pub, ''));
      case 'join':
        return this.call((h) => h.onJoin(feed.channel, notice.info));
      case 'leave':
        return this.call((h) => h.onLeave(feed.channel, notice.info));
    }
  }

  /** readLarge reads a notice stored in the notices table (undefined when already cleaned up). */
  private async readLarge(id: number): Promise<Notice | undefined> {
    const rows = await this.db.query<{ payload: string }>(
      `SELECT payload FROM ${this.db.tables.notices} WHERE id = $1`,
      [id],
    );
    return rows[0] === undefined ? undefined : decodeNotice(rows[0].payload);
  }

  private live(feed: Feed): boolean {
    return this.feeds.get(feed.channel) === feed;
  }

  private call(fn: (h: BrokerEventHandler) => void): void {
    const handler = this.handler;
    if (handler === undefined) return;
    try {
      fn(handler);
    } catch (err) {
      this.onError(err);
    }
  }

  private catchUp(feed: Feed): Promise<void> {
    return catchUp(this.db, feed, (f, pub: Publication, epoch, prev) => {
      if (!this.live(f)) return false;
      this.call((h) => h.onPublication(f.channel, pub, epoch, prev));
      return true;
    });
  }

  /**
   * poll compares the tops of the subscribed channels with what this node delivered and
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
          `SELECT channel, epoch, top FROM ${this.db.tables.streams} WHERE channel = ANY($1::text[])`,
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

/** newEpoch makes a stream epoch: 8 random base64url characters (48 bits), as the memory broker. */
function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

function json(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}
