/**
 * A lean load-generator client over `ws` that speaks just enough of the Centrifugo client
 * protocol v2 (JSON) — connect, subscribe, publish, ping/pong — or the raw-ws reference
 * server's three-message protocol. It is built to hold 10,000 sockets in one process and to
 * consume tens of thousands of pushes per second on one core:
 *
 * - frames are handled as Buffers; several `\n`-separated messages per frame are split in place;
 * - a push carrying the bench's markers is decoded without JSON.parse or any string
 *   allocation (see {@link parseBenchPush}); everything else falls back to JSON.parse;
 * - publishes are fire-and-forget with counted replies, so the publisher keeps no per-message state.
 *
 * @module
 */
import WebSocket from 'ws';

/** WireProtocol selects what the client speaks. */
export type WireProtocol = 'centrifugo' | 'raw';

/**
 * PushHandler receives one decoded bench publication: the channel index, sequence number and
 * send timestamp (integer µs of `performance.now()`) that the publisher embedded in its data.
 */
export type PushHandler = (channel: number, seq: number, sentAtMicros: number) => void;

/** LeanClientOptions configure a {@link LeanClient}. */
export interface LeanClientOptions {
  /** WebSocket URL, e.g. ws://127.0.0.1:8000/connection/websocket. */
  url: string;
  protocol: WireProtocol;
  /** Source address to bind (a 127.0.0.0/8 address) when one address runs out of ports. */
  localAddress?: string;
  /**
   * Source port to bind with `localAddress`: the kernel's own choice (bind to port 0) searches
   * the address's used ports, ~200 µs of system time per socket at 10,000 sockets per address.
   */
  localPort?: number;
  /** Called for every push carrying the bench markers. */
  onPush?: PushHandler;
  /** Called once when the socket closes, with the close code and reason. */
  onClose?: (code: number, reason: string) => void;
}

/** BenchPush is the result of {@link parseBenchPush}. */
export interface BenchPush {
  channel: number;
  seq: number;
  sentAtMicros: number;
}

const PUSH_PREFIX = Buffer.from('{"push"');
const M_CH = Buffer.from('"bch":');
const M_SEQ = Buffer.from('"bseq":');
const M_TS = Buffer.from('"bts":');

/**
 * benchData encodes a bench publication's data. The marker keys come first and hold plain
 * unsigned integers, so a subscriber can find them with a byte search and parse digits in
 * place; `pad` (optional) makes the message `padBytes` longer.
 */
export function benchData(channel: number, seq: number, sentAtMicros: number, pad = ''): string {
  return pad === ''
    ? `{"bch":${channel},"bseq":${seq},"bts":${sentAtMicros}}`
    : `{"bch":${channel},"bseq":${seq},"bts":${sentAtMicros},"pad":"${pad}"}`;
}

/** Parses the unsigned decimal integer at buf[pos…end); -1 when there is no digit. */
function readUint(buf: Buffer, pos: number, end: number): number {
  let n = 0;
  let digits = 0;
  while (pos < end) {
    const c = buf[pos] as number;
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
    pos++;
    digits++;
  }
  return digits === 0 ? -1 : n;
}

/**
 * decodeBenchPush decodes the bench markers of the push in buf[start…end) and hands them to
 * `handler` (no allocation), returning false when the line is not a push or lacks a marker.
 */
function decodeBenchPush(buf: Buffer, start: number, end: number, handler: PushHandler): boolean {
  if (end - start < PUSH_PREFIX.length || buf.compare(PUSH_PREFIX, 0, PUSH_PREFIX.length, start, start + 7) !== 0) {
    return false;
  }
  // The markers appear in the order they are written, so each search starts after the last.
  const iCh = buf.indexOf(M_CH, start);
  if (iCh === -1 || iCh >= end) return false;
  const channel = readUint(buf, iCh + M_CH.length, end);
  const iSeq = buf.indexOf(M_SEQ, iCh);
  if (channel < 0 || iSeq === -1 || iSeq >= end) return false;
  const seq = readUint(buf, iSeq + M_SEQ.length, end);
  const iTs = buf.indexOf(M_TS, iSeq);
  if (seq < 0 || iTs === -1 || iTs >= end) return false;
  const sentAtMicros = readUint(buf, iTs + M_TS.length, end);
  if (sentAtMicros < 0) return false;
  handler(channel, seq, sentAtMicros);
  return true;
}

/**
 * parseBenchPush decodes the bench markers of the push in buf[start…end) without JSON.parse,
 * or returns undefined when the line is not a push or lacks a marker (the client then falls
 * back to JSON.parse). Safe because the publisher controls the data: the markers are unique
 * keys written first, in a fixed order, holding unsigned integers, and neither server
 * re-encodes the data (Bulwark embeds it as raw JSON).
 */
export function parseBenchPush(buf: Buffer, start = 0, end = buf.length): BenchPush | undefined {
  let out: BenchPush | undefined;
  decodeBenchPush(buf, start, end, (channel, seq, sentAtMicros) => {
    out = { channel, seq, sentAtMicros };
  });
  return out;
}

/** Pending is a request waiting for its reply. */
interface Pending {
  resolve: (value: Record<string, unknown>) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** LeanClient is one WebSocket connection of the load generator. */
export class LeanClient {
  /** The underlying socket (exposed for diagnostics). */
  readonly ws: WebSocket;
  /** Close code once closed (1006 for an abnormal close), else undefined. */
  closeCode: number | undefined;
  /** Close reason once closed. */
  closeReason = '';
  /** Publish replies without error. */
  publishAcks = 0;
  /** Publish replies with an error; `lastError` holds the latest one. */
  publishErrors = 0;
  /** The latest error message seen (reply error, socket error). */
  lastError: string | undefined;
  /** Pushes without the bench markers (join/leave, other data). */
  otherPushes = 0;
  /** Server pings answered. */
  pings = 0;

  private nextId = 1;
  private readonly pending = new Map<number | string, Pending>();
  private readonly opened: Promise<void>;

  /** Starts connecting; await {@link LeanClient.open} before sending. */
  constructor(private readonly opts: LeanClientOptions) {
    this.ws = new WebSocket(opts.url, {
      perMessageDeflate: false,
      // The server is trusted here; skipping UTF-8 validation saves load-generator CPU.
      skipUTF8Validation: true,
      handshakeTimeout: 15_000,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      ...(opts.localPort ? { localPort: opts.localPort } : {}),
    });
    this.opened = new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('close', (code: number) =>
        reject(new Error(`could not open ${opts.url}: ${this.lastError ?? `closed with ${code}`}`)),
      );
    });
    // Avoid unhandled-rejection noise when nobody awaits open() (e.g. terminated early).
    this.opened.catch(() => undefined);
    this.ws.on('error', (err) => {
      this.lastError = err.message;
    });
    this.ws.on('message', (data: Buffer) => this.onFrame(data));
    this.ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      const err = new Error(`connection closed: ${code} ${this.closeReason}`.trim());
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(err);
      }
      this.pending.clear();
      this.opts.onClose?.(code, this.closeReason);
    });
  }

  /** open resolves once the WebSocket handshake completed. */
  open(): Promise<void> {
    return this.opened;
  }

  /** isOpen reports whether the socket is open. */
  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * connect sends the Centrifugo connect command with `token` and resolves with the connect
   * result. Raw protocol: a no-op (the raw server authenticates on subscribe).
   */
  async connect(token: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    if (this.opts.protocol === 'raw') return {};
    const id = this.nextId++;
    const reply = this.request(id, timeoutMs);
    this.ws.send(`{"id":${id},"connect":{"token":${JSON.stringify(token)},"name":"bench"}}`);
    return (await reply).connect as Record<string, unknown>;
  }

  /**
   * subscribe subscribes to `channel` and resolves on the server's confirmation. Raw protocol:
   * sends `{"sub":channel,"token":token}` and waits for `{"sub":channel}`.
   */
  async subscribe(channel: string, token?: string, timeoutMs = 15_000): Promise<void> {
    const ch = JSON.stringify(channel);
    if (this.opts.protocol === 'raw') {
      const reply = this.request(`sub:${channel}`, timeoutMs);
      this.ws.send(token === undefined ? `{"sub":${ch}}` : `{"sub":${ch},"token":${JSON.stringify(token)}}`);
      await reply;
      return;
    }
    const id = this.nextId++;
    const reply = this.request(id, timeoutMs);
    this.ws.send(`{"id":${id},"subscribe":{"channel":${ch}}}`);
    await reply;
  }

  /**
   * publish sends one publication with `dataJson` (already-encoded JSON) to `channel`,
   * fire-and-forget: Centrifugo replies are only counted (`publishAcks`/`publishErrors`).
   */
  publish(channel: string, dataJson: string): void {
    if (this.opts.protocol === 'raw') {
      this.ws.send(`{"pub":${JSON.stringify(channel)},"data":${dataJson}}`);
    } else {
      this.ws.send(`{"id":${this.nextId++},"publish":{"channel":${JSON.stringify(channel)},"data":${dataJson}}}`);
    }
  }

  /** bufferedAmount is how many bytes are queued to the socket but not yet written. */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** close starts a normal close handshake. */
  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
  }

  /** terminate destroys the socket at once (fast teardown of thousands of connections). */
  terminate(): void {
    this.ws.terminate();
  }

  private request(key: number | string, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(new Error(`timeout after ${timeoutMs} ms waiting for reply ${key}`));
      }, timeoutMs);
      this.pending.set(key, { resolve, reject, timer });
    });
  }

  private settle(key: number | string, msg: Record<string, unknown>): boolean {
    const p = this.pending.get(key);
    if (!p) return false;
    this.pending.delete(key);
    clearTimeout(p.timer);
    const error = msg.error as { code?: number; message?: string } | undefined;
    if (error) p.reject(new Error(`error ${error.code}: ${error.message}`));
    else p.resolve(msg);
    return true;
  }

  private onFrame(buf: Buffer): void {
    const len = buf.length;
    let start = 0;
    while (start < len) {
      let end = buf.indexOf(10, start);
      if (end === -1) end = len;
      if (end > start) this.onLine(buf, start, end);
      start = end + 1;
    }
  }

  private onLine(buf: Buffer, start: number, end: number): void {
    // Hot path: a bench push, decoded in place.
    if (this.opts.onPush && decodeBenchPush(buf, start, end, this.opts.onPush)) return;
    // A server ping is an empty object; the pong is an empty object too.
    if (end - start === 2 && buf[start] === 0x7b && buf[start + 1] === 0x7d) {
      this.pings++;
      if (this.opts.protocol === 'centrifugo') this.ws.send('{}');
      return;
    }
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(buf.toString('utf8', start, end)) as Record<string, unknown>;
    } catch {
      this.lastError = `unparsable message: ${buf.toString('utf8', start, Math.min(end, start + 200))}`;
      return;
    }
    if (msg.push !== undefined) {
      this.onSlowPush(msg.push as Record<string, unknown>);
      return;
    }
    if (this.opts.protocol === 'raw') {
      if (typeof msg.sub === 'string') this.settle(`sub:${msg.sub}`, msg);
      return;
    }
    const id = msg.id;
    if (typeof id !== 'number' || id === 0) return;
    if (this.settle(id, msg)) return;
    // Not a pending request: the reply to a fire-and-forget publish.
    if (msg.error !== undefined) {
      this.publishErrors++;
      const e = msg.error as { code?: number; message?: string };
      this.lastError = `publish error ${e.code}: ${e.message}`;
    } else {
      this.publishAcks++;
    }
  }

  /** A push the fast path did not decode: read the markers from the parsed JSON instead. */
  private onSlowPush(push: Record<string, unknown>): void {
    const data = (push.pub as { data?: Record<string, unknown> } | undefined)?.data;
    if (
      this.opts.onPush &&
      data &&
      typeof data.bch === 'number' &&
      typeof data.bseq === 'number' &&
      typeof data.bts === 'number'
    ) {
      this.opts.onPush(data.bch, data.bseq, data.bts);
    } else {
      this.otherPushes++;
    }
  }
}
