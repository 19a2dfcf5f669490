/**
 * A raw-WebSocket JSON map subscriber, as the `centrifuge` SDK's `newMapSubscription` drives
 * the wire (docs/MAPS.md): connect with an HS256 token; subscribe to a map channel through the
 * paged STATE phase (`type: 1, phase: 2`, `cursor`), the STREAM catch-up (`phase: 1` from the
 * first page's position) and the LIVE reply, into a {@link MapMirror} per channel that live
 * pushes keep current; write keys (`publish` with `type: 1`, `removed: true` to remove) and
 * report each write's reply code (113: the key's condition lost) and reply time; and time each
 * of its own writes from the send to the push that carries the change back to it.
 *
 * Why not the SDK: thousands of players in one load-generator process, each subscribing and
 * leaving lobbies over and over, and the bench measuring the wire itself (snapshot bytes per
 * subscribe, pages, offsets); the SDK would hide exactly that. It never reconnects: a closed
 * connection is a result (its close code), not something to paper over.
 *
 * @module
 */
import WebSocket from 'ws';
import { connectionToken } from '../harness/jwt.js';
import { MapMirror, type MapEntry, type MirrorAnomalies } from './map-mirror.js';

/** The protocol's code for a position the stream no longer holds: read the map again. */
const UNRECOVERABLE = 112;

/** A reply line, as much as this client reads. */
interface ReplyLine {
  id?: number;
  error?: { code?: number; message?: string };
  subscribe?: {
    phase?: number;
    state?: MapEntry[];
    publications?: MapEntry[];
    cursor?: string;
    offset?: number;
    epoch?: string;
  };
  push?: { channel?: string; pub?: MapEntry; unsubscribe?: unknown };
}

/** The result of one subscribe request. */
type SubscribeResult = NonNullable<ReplyLine['subscribe']>;

/** A reply with the bytes of its line (the snapshot's size on the wire). */
type Reply = ReplyLine & { bytes: number };

/** SnapshotInfo is what one subscribe flow cost and gave. */
export interface SnapshotInfo {
  /** Entries the mirror held when the subscription went live. */
  entries: number;
  /** Bytes of every reply line of the flow (state pages, stream pages, the live reply). */
  bytes: number;
  /** Subscribe requests the flow took (state pages + stream pages). */
  requests: number;
  /** Times the flow started over (112, or a new epoch while paging). */
  restarts: number;
  /** From the first request to the live reply (ms). */
  ms: number;
}

/** WriteResult is a key write's outcome: its reply code (0: applied) and reply time. */
export interface WriteResult {
  code: number;
  ms: number;
}

/** MapClientOptions configure a {@link MapClient}. */
export interface MapClientOptions {
  url: string;
  user: string;
  secret: string;
  /** Every live change applied to a mirror, with the frame's arrival time (performance.now()). */
  onChange?: (channel: string, e: MapEntry, atMs: number) => void;
  /** Each own write whose change came back in a push: send → push, ms. */
  onOwnDelivery?: (channel: string, e: MapEntry, ms: number, atMs: number) => void;
  /** Bound on waiting for any one reply. */
  timeoutMs?: number;
}

/** An own write waiting for the push that carries it. */
interface OwnWrite {
  sentAt: number;
  removed: boolean;
  /** JSON of the data written (a set), to tell it from another player's write of the key. */
  dataJson: string;
}

/** MapClient is one connection holding map subscriptions. */
export class MapClient {
  /** Close code once closed, else undefined. */
  closeCode: number | undefined;
  lastError: string | undefined;
  /** Bytes of WebSocket message payloads received. */
  bytesReceived = 0;
  /** Lines that were not JSON (counted, never thrown). */
  malformed = 0;
  /** Own writes still unseen when their channel was let go (a leave's removal whose push came after its reply). */
  ownDropped = 0;
  /** Subscriptions the server ended (unsubscribe pushes). */
  serverUnsubscribes = 0;
  /** Anomalies of the mirrors this client has let go (see {@link anomalies} for the total). */
  readonly #pastAnomalies: MirrorAnomalies = { gaps: 0, stale: 0, overwrites: 0 };

  readonly #ws: WebSocket;
  readonly #opened: Promise<void>;
  readonly #waiting = new Map<number, (reply: Reply) => void>();
  readonly #mirrors = new Map<string, MapMirror>();
  readonly #own = new Map<string, OwnWrite>();
  readonly #timeoutMs: number;
  #nextId = 1;

  constructor(private readonly opts: MapClientOptions) {
    this.#timeoutMs = opts.timeoutMs ?? 15_000;
    this.#ws = new WebSocket(opts.url, { perMessageDeflate: false, handshakeTimeout: 15_000 });
    this.#opened = new Promise<void>((resolve, reject) => {
      this.#ws.once('open', () => resolve());
      this.#ws.once('close', (code: number) =>
        reject(new Error(`could not open ${opts.url}: ${this.lastError ?? code}`)),
      );
    });
    this.#opened.catch(() => undefined);
    this.#ws.on('error', (err) => {
      this.lastError = err.message;
    });
    this.#ws.on('close', (code: number) => {
      this.closeCode = code;
      const waiting = [...this.#waiting.values()];
      this.#waiting.clear();
      for (const w of waiting) w({ error: { code: -1, message: `closed ${code}` }, bytes: 0 });
    });
    this.#ws.on('message', (data: Buffer) => this.#onMessage(data));
  }

  /** connect opens the socket and connects with a token for the user. */
  async connect(): Promise<void> {
    await this.#opened;
    const r = await this.#command('connect', { token: connectionToken(this.opts.user, this.opts.secret) });
    if (r.error) throw new Error(`connect: error ${r.error.code} ${r.error.message ?? ''}`);
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  /** mirror is the channel's mirror while subscribed (or subscribing). */
  mirror(channel: string): MapMirror | undefined {
    return this.#mirrors.get(channel);
  }

  /** anomalies adds up the anomalies of every mirror this client has held. */
  anomalies(): MirrorAnomalies {
    const out = { ...this.#pastAnomalies };
    for (const m of this.#mirrors.values()) {
      out.gaps += m.anomalies.gaps;
      out.stale += m.anomalies.stale;
      out.overwrites += m.anomalies.overwrites;
    }
    return out;
  }

  /** Own writes still waiting for their push. */
  get ownPending(): number {
    return this.#own.size;
  }

  /**
   * subscribe runs a map subscribe to `channel` with `limit` entries a page until it is live,
   * starting over (at most 3 times) when the position is lost (112) or the epoch changes
   * while paging; rejects on any other error.
   */
  async subscribe(channel: string, limit: number): Promise<SnapshotInfo> {
    if (this.#mirrors.has(channel)) throw new Error(`subscribe: already subscribed to ${channel}`);
    const mirror = new MapMirror();
    this.#mirrors.set(channel, mirror);
    const t0 = performance.now();
    const info: SnapshotInfo = { entries: 0, bytes: 0, requests: 0, restarts: 0, ms: 0 };
    try {
      for (;;) {
        const live = await this.#flow(channel, limit, mirror, info);
        if (live) break;
        if (++info.restarts > 3) throw new Error(`subscribe ${channel}: position lost ${info.restarts} times`);
        mirror.restart();
      }
    } catch (err) {
      this.#forget(channel);
      throw err;
    }
    info.entries = mirror.size;
    info.ms = performance.now() - t0;
    return info;
  }

  /** #flow pages through state and stream; false when it must start over. */
  async #flow(channel: string, limit: number, mirror: MapMirror, info: SnapshotInfo): Promise<boolean> {
    let cursor = '';
    let position: { offset: number; epoch: string } | undefined;
    for (;;) {
      const req: Record<string, unknown> = { channel, type: 1, phase: 2, limit };
      if (position !== undefined) Object.assign(req, { cursor, offset: position.offset, epoch: position.epoch });
      const r = await this.#subscribeCall(req, info);
      if (r === undefined) return false;
      if (!r.phase) {
        mirror.goLive(r);
        return true;
      }
      const at = { offset: r.offset ?? 0, epoch: r.epoch ?? '' };
      if (position !== undefined && at.epoch !== position.epoch) return false;
      mirror.addState(r.state ?? [], position === undefined ? at : undefined);
      position ??= at;
      if (r.cursor) {
        cursor = r.cursor;
        continue;
      }
      break;
    }
    // Durable and persistent maps: catch up on the stream from the first page's position.
    let offset = position.offset;
    for (;;) {
      const r = await this.#subscribeCall({ channel, type: 1, phase: 1, limit, offset, epoch: position.epoch }, info);
      if (r === undefined) return false;
      if (r.epoch !== undefined && r.epoch !== position.epoch) return false;
      if (!r.phase) {
        mirror.goLive(r);
        return true;
      }
      offset = r.offset ?? offset;
      mirror.addStream(r.publications ?? [], offset);
    }
  }

  /** One subscribe request of a flow: its result, or undefined on 112 (start over). */
  async #subscribeCall(req: Record<string, unknown>, info: SnapshotInfo): Promise<SubscribeResult | undefined> {
    info.requests++;
    const r = await this.#command('subscribe', req);
    info.bytes += r.bytes;
    if (r.error?.code === UNRECOVERABLE) return undefined;
    if (r.error) throw new Error(`subscribe ${String(req.channel)}: error ${r.error.code} ${r.error.message ?? ''}`);
    return r.subscribe ?? {};
  }

  /** unsubscribe stops following `channel` (its pushes are ignored from now on) and waits for the reply. */
  async unsubscribe(channel: string): Promise<void> {
    this.#forget(channel);
    const r = await this.#command('unsubscribe', { channel });
    if (r.error) throw new Error(`unsubscribe ${channel}: error ${r.error.code} ${r.error.message ?? ''}`);
  }

  /** publish writes `key` = `data` in map channel `channel`; resolves with the reply code. */
  publish(channel: string, key: string, data: unknown): Promise<WriteResult> {
    return this.#write(channel, key, false, JSON.stringify(data));
  }

  /** remove removes `key` from map channel `channel`; resolves with the reply code. */
  remove(channel: string, key: string): Promise<WriteResult> {
    return this.#write(channel, key, true, '');
  }

  async #write(channel: string, key: string, removed: boolean, dataJson: string): Promise<WriteResult> {
    const t0 = performance.now();
    const ownKey = `${channel}\0${key}`;
    this.#own.set(ownKey, { sentAt: t0, removed, dataJson });
    const body = removed
      ? { channel, type: 1, key, removed: true }
      : { channel, type: 1, key, data: JSON.parse(dataJson) as unknown };
    const r = await this.#command('publish', body);
    const code = r.error ? (r.error.code ?? -1) : 0;
    // A refused write changes nothing: no push will carry it.
    if (code !== 0 && this.#own.get(ownKey)?.sentAt === t0) this.#own.delete(ownKey);
    return { code, ms: performance.now() - t0 };
  }

  /** terminate destroys the socket at once. */
  terminate(): void {
    this.#ws.terminate();
  }

  #forget(channel: string): void {
    // Own writes of a channel let go will never be seen: they must not hold up a settle.
    for (const k of this.#own.keys()) {
      if (k.startsWith(`${channel}\0`)) {
        this.#own.delete(k);
        this.ownDropped++;
      }
    }
    const m = this.#mirrors.get(channel);
    if (m === undefined) return;
    this.#mirrors.delete(channel);
    this.#pastAnomalies.gaps += m.anomalies.gaps;
    this.#pastAnomalies.stale += m.anomalies.stale;
    this.#pastAnomalies.overwrites += m.anomalies.overwrites;
  }

  /** #command sends one command and resolves with its reply (an error reply too); rejects on a timeout. */
  #command(method: string, body: unknown): Promise<Reply> {
    if (this.#ws.readyState !== WebSocket.OPEN) {
      return Promise.resolve({ error: { code: -1, message: `${method}: connection not open` }, bytes: 0 });
    }
    const id = this.#nextId++;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`${method}: no reply in ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      this.#waiting.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.#ws.send(JSON.stringify({ id, [method]: body }));
    });
  }

  #onMessage(data: Buffer): void {
    const atMs = performance.now();
    this.bytesReceived += data.length;
    // Several replies and pushes may share a frame, one per line.
    for (const line of data.toString('utf8').split('\n')) {
      if (line === '') continue;
      if (line === '{}') {
        this.#ws.send('{}'); // the server's ping: answer with a pong
        continue;
      }
      let msg: ReplyLine;
      try {
        msg = JSON.parse(line) as ReplyLine;
      } catch {
        this.malformed++;
        continue;
      }
      if (msg.push !== undefined) {
        this.#onPush(msg.push, atMs);
        continue;
      }
      if (typeof msg.id === 'number') {
        const w = this.#waiting.get(msg.id);
        this.#waiting.delete(msg.id);
        w?.({ ...msg, bytes: Buffer.byteLength(line) });
      }
    }
  }

  #onPush(push: NonNullable<ReplyLine['push']>, atMs: number): void {
    const channel = push.channel ?? '';
    const mirror = this.#mirrors.get(channel);
    if (push.unsubscribe !== undefined) {
      this.serverUnsubscribes++;
      this.#forget(channel);
      return;
    }
    const pub = push.pub;
    if (mirror === undefined || pub === undefined || typeof pub.key !== 'string') return;
    const applied = mirror.applyLive(pub);
    if (!applied && mirror.phase === 'live') return;
    this.opts.onChange?.(channel, pub, atMs);
    const ownKey = `${channel}\0${pub.key}`;
    const own = this.#own.get(ownKey);
    if (own === undefined || own.removed !== (pub.removed === true)) return;
    if (!own.removed && JSON.stringify(pub.data) !== own.dataJson) return;
    this.#own.delete(ownKey);
    this.opts.onOwnDelivery?.(channel, pub, atMs - own.sentAt, atMs);
  }
}
