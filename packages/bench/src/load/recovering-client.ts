/**
 * A load-generator client that behaves like a Centrifugo SDK across a server restart: it keeps
 * one subscription and its stream position (epoch and offset of the last publication seen),
 * reconnects after a disconnect that allows it (3001 shutdown, 1006, …) with the SDK's backoff
 * and jitter, to whatever address the {@link AddressPool} (the load balancer) hands out, and
 * resubscribes with `recover: true, offset, epoch`, so that the publications it missed arrive in
 * the subscribe reply.
 *
 * Why not {@link LeanClient}: that client connects once and never comes back; this one is a
 * small state machine around a sequence of sockets. It reuses the lean client's allocation-free
 * decoding of bench pushes, since live pushes are its hot path (tens of thousands a second);
 * replies (connect, subscribe with recovered publications) are rare and parsed with JSON.parse.
 *
 * @module
 */
import WebSocket from 'ws';
import type { AddressPool } from './address-pool.js';
import { reconnectDelayMs, SDK_MAX_RECONNECT_DELAY_MS, SDK_MIN_RECONNECT_DELAY_MS } from './backoff.js';
import { parseBenchPush } from './lean-client.js';

/** SubscribeOutcome describes one successful subscribe reply (first subscribe or a resubscribe). */
export interface SubscribeOutcome {
  /** performance.now() when the reply arrived. */
  atMs: number;
  /** The node the client is connected to. */
  url: string;
  /** The subscribe asked to recover (`recover: true`) from `sentOffset` in `sentEpoch`. */
  recovering: boolean;
  sentOffset: number;
  sentEpoch: string;
  /** The reply's `recovered` (always false when not recovering). */
  recovered: boolean;
  /** The reply's `recoverable`. */
  recoverable: boolean;
  /** The reply's stream position. */
  epoch: string;
  offset: number;
  /** Publications in the reply, and the offsets of the first and last (0 when none). */
  publications: number;
  firstOffset: number;
  lastOffset: number;
}

/** RecoveringClientEvents is where a client reports what happens to it (one sink for all clients). */
export interface RecoveringClientEvents {
  /**
   * A bench publication of the client's channel arrived: live (a push) or recovered (in a
   * subscribe reply). `offset` is its stream offset (0 when the server sent none).
   */
  publication(client: RecoveringClient, seq: number, sentAtMicros: number, offset: number, recovered: boolean): void;
  /** The client subscribed (again). */
  subscribed(client: RecoveringClient, outcome: SubscribeOutcome): void;
  /** A connection that had been accepted (connect reply received) closed with `code`. */
  disconnected(client: RecoveringClient, code: number, reason: string): void;
  /** An attempt failed before the subscription was made (HTTP 503, refused, error reply, timeout). */
  attemptFailed(client: RecoveringClient, why: string): void;
}

/** RecoveringClientOptions configure a {@link RecoveringClient}. */
export interface RecoveringClientOptions {
  /** The caller's number for this client (reported back as {@link RecoveringClient.id}). */
  id: number;
  /** Connection token (JWT). */
  token: string;
  /** The one channel the client subscribes to, and its bench channel index (the `bch` marker). */
  channel: string;
  channelIndex: number;
  /** Where reconnects go. */
  pool: AddressPool;
  events: RecoveringClientEvents;
  minReconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** Longest time from opening a socket to the subscribe reply; then the attempt fails. */
  attemptTimeoutMs?: number;
}

/** ClientState is where a client is in its life. */
export type ClientState = 'idle' | 'connecting' | 'subscribed' | 'waiting' | 'stopped' | 'failed';

const PONG = '{}';
const PUB_MARK = Buffer.from('"pub":');
const OFFSET_MARK = Buffer.from('"offset":');
const UNSUB_MARK = Buffer.from('"unsubscribe":');

/**
 * readPubOffset reads the `"offset":N` of the publication push in buf[start…end), 0 when there
 * is none. It takes the first `"offset":` of the line: Bulwark writes a push as
 * `{"push":{"channel":…,"pub":{"data":…,"info":…,"offset":N,…}}}` and the bench's data and
 * channel names never contain that key, so the first match is the publication's.
 */
export function readPubOffset(buf: Buffer, start = 0, end = buf.length): number {
  const i = buf.indexOf(OFFSET_MARK, start);
  if (i === -1 || i >= end) return 0;
  let n = 0;
  let digits = 0;
  for (let p = i + OFFSET_MARK.length; p < end; p++) {
    const c = buf[p] as number;
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
    digits++;
  }
  return digits === 0 ? 0 : n;
}

/** isTerminalClose reports whether the SDK would give up after close `code` (no reconnect). */
export function isTerminalClose(code: number): boolean {
  return (code >= 3500 && code <= 3999) || (code >= 4500 && code <= 4999) || code === 1009;
}

interface BenchData {
  bch?: unknown;
  bseq?: unknown;
  bts?: unknown;
}

interface ReplyMessage {
  id?: number;
  error?: { code?: number; message?: string; temporary?: boolean };
  connect?: Record<string, unknown>;
  subscribe?: {
    recoverable?: boolean;
    epoch?: string;
    offset?: number | string;
    recovered?: boolean;
    publications?: Array<{ data?: BenchData; offset?: number | string }>;
  };
  push?: { channel?: string; unsubscribe?: { code?: number } };
}

const CONNECT_ID = 1;

/** RecoveringClient is one simulated player: one subscription kept across disconnects. */
export class RecoveringClient {
  /** The caller's number for this client. */
  readonly id: number;
  state: ClientState = 'idle';
  /** Stream position of the last publication seen (or of the last subscribe reply). */
  epoch = '';
  offset = 0;
  /** Successful subscribes (the first one and every resubscribe). */
  subscribes = 0;
  /** Connections accepted (connect reply received). */
  connects = 0;
  /** Failed attempts in a row since the last successful connect (the backoff step). */
  private step = 0;
  /** URL of the current (or last) connection. */
  url = '';
  /** Close code of the last accepted connection. */
  lastCloseCode: number | undefined;
  /** The last reason the client gave up (terminal close, connect refused), if it did. */
  failure: string | undefined;

  private ws: WebSocket | undefined;
  private nextId = CONNECT_ID + 1;
  private subscribeId = 0;
  private sentOffset = 0;
  private sentEpoch = '';
  private recovering = false;
  private accepted = false;
  private attemptTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private firstSubscribe: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private startRetries = 0;
  private refused = false;

  constructor(private readonly opts: RecoveringClientOptions) {
    this.id = opts.id;
  }

  /**
   * start connects to `url` and subscribes; resolves once subscribed. A failed attempt (e.g. an
   * upgrade refused with 503 while the node sheds load) is retried at `url` with the backoff, at
   * most `retries` times; then, or after an error reply, it rejects and the client stays
   * `failed` (a broken setup should fail the run, not retry forever). Once subscribed, the
   * client reconnects by itself, wherever the pool says, until {@link stop}.
   */
  start(url: string, retries = 0): Promise<void> {
    this.startRetries = retries;
    return new Promise<void>((resolve, reject) => {
      this.firstSubscribe = { resolve, reject };
      this.open(url);
    });
  }

  /** stop closes the connection and cancels any reconnect; the client stays stopped. */
  stop(): void {
    this.state = 'stopped';
    this.clearTimers();
    this.ws?.terminate();
    this.ws = undefined;
  }

  private clearTimers(): void {
    if (this.attemptTimer) clearTimeout(this.attemptTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.attemptTimer = this.retryTimer = undefined;
  }

  private open(url: string): void {
    this.state = 'connecting';
    this.url = url;
    this.accepted = false;
    this.refused = false;
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: 10_000 });
    this.ws = ws;
    let why: string | undefined;
    this.attemptTimer = setTimeout(() => {
      why = `no subscription within ${this.opts.attemptTimeoutMs ?? 10_000} ms`;
      ws.terminate();
    }, this.opts.attemptTimeoutMs ?? 10_000);
    ws.on('open', () => {
      ws.send(`{"id":${CONNECT_ID},"connect":{"token":${JSON.stringify(this.opts.token)},"name":"bench"}}`);
    });
    // An upgrade refused with HTTP 503 (a draining node) surfaces as "Unexpected server response: 503".
    ws.on('error', (err) => {
      why ??= err.message;
    });
    ws.on('message', (data: Buffer) => {
      if (this.ws !== ws) return;
      let start = 0;
      while (start < data.length) {
        let end = data.indexOf(10, start);
        if (end === -1) end = data.length;
        if (end > start) {
          const failed = this.onLine(ws, data, start, end);
          if (failed !== undefined) {
            why = failed;
            ws.terminate();
            return;
          }
        }
        start = end + 1;
      }
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      if (this.attemptTimer) clearTimeout(this.attemptTimer);
      this.attemptTimer = undefined;
      if (this.state === 'stopped') return;
      const wasSubscribed = this.state === 'subscribed';
      if (this.accepted) {
        this.lastCloseCode = code;
        this.opts.events.disconnected(this, code, reason.toString());
      }
      if (!wasSubscribed) {
        const msg = why ?? `closed with ${code} ${reason.toString()}`.trim();
        this.opts.events.attemptFailed(this, msg);
        if (this.firstSubscribe && !this.refused && this.startRetries-- > 0) {
          this.scheduleReconnect(url);
          return;
        }
        if (this.firstSubscribe) {
          this.state = 'failed';
          this.failure = msg;
          this.firstSubscribe.reject(new Error(`${url}: ${msg}`));
          this.firstSubscribe = undefined;
          return;
        }
      }
      if (this.accepted && isTerminalClose(code)) {
        this.state = 'failed';
        this.failure = `terminal close ${code} ${reason.toString()}`.trim();
        return;
      }
      this.scheduleReconnect();
    });
  }

  /** scheduleReconnect opens a new connection after the backoff, to `url` or where the pool says. */
  private scheduleReconnect(url?: string): void {
    this.state = 'waiting';
    const delay = reconnectDelayMs(
      this.step++,
      this.opts.minReconnectDelayMs ?? SDK_MIN_RECONNECT_DELAY_MS,
      this.opts.maxReconnectDelayMs ?? SDK_MAX_RECONNECT_DELAY_MS,
    );
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.state !== 'waiting') return;
      const next = url ?? this.opts.pool.pick();
      if (next === undefined) {
        this.opts.events.attemptFailed(this, 'no address in the pool');
        this.scheduleReconnect();
      } else {
        this.open(next);
      }
    }, delay);
  }

  private sendSubscribe(ws: WebSocket): void {
    this.subscribeId = this.nextId++;
    // Recover once there is a position to recover from, as the SDKs do after their first subscribe.
    this.recovering = this.subscribes > 0;
    this.sentOffset = this.offset;
    this.sentEpoch = this.epoch;
    const ch = JSON.stringify(this.opts.channel);
    ws.send(
      this.recovering
        ? `{"id":${this.subscribeId},"subscribe":{"channel":${ch},"recover":true,"offset":${this.offset},"epoch":${JSON.stringify(this.epoch)}}}`
        : `{"id":${this.subscribeId},"subscribe":{"channel":${ch}}}`,
    );
  }

  /** onLine handles one message; returns why the attempt failed, if it did. */
  private onLine(ws: WebSocket, buf: Buffer, start: number, end: number): string | undefined {
    // A server ping is an empty object; the pong is an empty object too.
    if (end - start === 2 && buf[start] === 0x7b && buf[start + 1] === 0x7d) {
      ws.send(PONG);
      return undefined;
    }
    // Hot path: a bench publication push, decoded in place.
    const pubAt = buf.indexOf(PUB_MARK, start);
    if (pubAt !== -1 && pubAt < end) {
      const p = parseBenchPush(buf, start, end);
      if (p && p.channel === this.opts.channelIndex) {
        const offset = readPubOffset(buf, pubAt, end);
        if (offset > this.offset) this.offset = offset;
        this.opts.events.publication(this, p.seq, p.sentAtMicros, offset, false);
        return undefined;
      }
    }
    const unsubAt = buf.indexOf(UNSUB_MARK, start);
    let msg: ReplyMessage;
    try {
      msg = JSON.parse(buf.toString('utf8', start, end)) as ReplyMessage;
    } catch {
      return `unparsable message: ${buf.toString('utf8', start, Math.min(end, start + 200))}`;
    }
    if (msg.push !== undefined) {
      // Unsubscribe codes from 2500 (insufficient state: a gap in offsets) mean "resubscribe";
      // the SDK does so at once, recovering from its position.
      const code = msg.push.unsubscribe?.code;
      if (unsubAt !== -1 && code !== undefined && code >= 2500 && this.state === 'subscribed') {
        this.state = 'connecting';
        this.sendSubscribe(ws);
      }
      return undefined;
    }
    if (msg.id === CONNECT_ID) {
      if (msg.error) {
        this.refused = true;
        return `connect refused: ${msg.error.code} ${msg.error.message}`;
      }
      this.accepted = true;
      this.connects++;
      this.step = 0;
      this.sendSubscribe(ws);
      return undefined;
    }
    if (msg.id === this.subscribeId) {
      if (msg.error) {
        this.refused = true;
        return `subscribe refused: ${msg.error.code} ${msg.error.message}`;
      }
      this.onSubscribed(msg.subscribe ?? {});
    }
    return undefined;
  }

  private onSubscribed(r: NonNullable<ReplyMessage['subscribe']>): void {
    const pubs = r.publications ?? [];
    const recovered = this.recovering && r.recovered === true;
    const replyOffset = Number(r.offset ?? 0);
    let firstOffset = 0;
    let lastOffset = 0;
    for (const pub of pubs) {
      const off = Number(pub.offset ?? 0);
      if (firstOffset === 0) firstOffset = off;
      lastOffset = off;
      const d = pub.data ?? {};
      if (d.bch === this.opts.channelIndex && typeof d.bseq === 'number' && typeof d.bts === 'number') {
        this.opts.events.publication(this, d.bseq, d.bts, off, true);
      }
    }
    // As the SDK: the position is the reply's, moved past every publication the reply carried.
    this.epoch = r.epoch ?? '';
    this.offset = Math.max(replyOffset, lastOffset);
    this.subscribes++;
    this.state = 'subscribed';
    if (this.attemptTimer) clearTimeout(this.attemptTimer);
    this.attemptTimer = undefined;
    const outcome: SubscribeOutcome = {
      atMs: performance.now(),
      url: this.url,
      recovering: this.recovering,
      sentOffset: this.sentOffset,
      sentEpoch: this.sentEpoch,
      recovered,
      recoverable: r.recoverable === true,
      epoch: this.epoch,
      offset: replyOffset,
      publications: pubs.length,
      firstOffset,
      lastOffset,
    };
    this.opts.events.subscribed(this, outcome);
    this.firstSubscribe?.resolve();
    this.firstSubscribe = undefined;
  }
}
