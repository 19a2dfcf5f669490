/**
 * A lean load-generator client over `ws` that speaks just enough of the Centrifugo client
 * protocol v2 (JSON) — connect, subscribe, publish, ping/pong — or the raw-ws reference
 * server's three-message protocol, or Engine.IO v4 / Socket.IO v5 over a bare WebSocket (for
 * the Socket.IO reference server; socket.io-client is too heavy for 10,000 sockets). It is
 * built to hold 10,000 sockets in one process and to consume tens of thousands of pushes per
 * second on one core:
 *
 * - frames are handled as Buffers; several `\n`-separated messages per frame are split in place;
 * - a push carrying the bench's markers is decoded without JSON.parse or any string
 *   allocation (see {@link parseBenchPush}); everything else falls back to JSON.parse;
 * - publishes are fire-and-forget with counted replies, so the publisher keeps no per-message state.
 *
 * @module
 */
import WebSocket from 'ws';
import type { WireProtocol } from '../harness/wire.js';
import { PendingReplies, type ReplyError } from './pending-replies.js';

export { SOCKETIO_WS_PATH, type WireProtocol } from '../harness/wire.js';

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
  /** A publication tags filter (FilterNode) every subscribe carries as `tf` (Centrifugo protocol). */
  tagsFilter?: object;
  /** The `version` the connect command declares (publication variants choose by it). */
  clientVersion?: string;
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
export function decodeBenchPush(buf: Buffer, start: number, end: number, handler: PushHandler): boolean {
  if (end - start < PUSH_PREFIX.length || buf.compare(PUSH_PREFIX, 0, PUSH_PREFIX.length, start, start + 7) !== 0) {
    return false;
  }
  return decodeMarkers(buf, start, end, handler);
}

/** decodeMarkers finds the bench markers in buf[start…end) and hands them to `handler`. */
export function decodeMarkers(buf: Buffer, start: number, end: number, handler: PushHandler): boolean {
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

// --- Socket.IO (Engine.IO v4 / Socket.IO v5 over a bare WebSocket) ---
//
// Engine.IO sends one packet per WebSocket frame, its type as the first character: `0` open
// (JSON handshake), `1` close, `2` ping (server → client), `3` pong, `4` message. A message
// carries a Socket.IO packet, its type next: `0` namespace connect, `1` disconnect, `2` event,
// `3` ack, `4` connect error; then an optional ack id and a JSON array `["event", ...args]`.

/** The frame of a `push` event from the Socket.IO reference server: `42["push","<channel>",<data>]`. */
const SIO_PUSH_PREFIX = Buffer.from('42["push",');

/** decodeSocketIoBenchPush is {@link decodeBenchPush} for a Socket.IO `push` event frame in buf[start…end). */
export function decodeSocketIoBenchPush(buf: Buffer, handler: PushHandler, start = 0, end = buf.length): boolean {
  const n = SIO_PUSH_PREFIX.length;
  if (end - start < n || buf.compare(SIO_PUSH_PREFIX, 0, n, start, start + n) !== 0) return false;
  return decodeMarkers(buf, start + n, end, handler);
}

/**
 * parseSocketIoBenchPush decodes the bench markers of a Socket.IO `push` event frame without
 * JSON.parse, or returns undefined when the frame is something else or lacks a marker.
 */
export function parseSocketIoBenchPush(buf: Buffer): BenchPush | undefined {
  let out: BenchPush | undefined;
  decodeSocketIoBenchPush(buf, (channel, seq, sentAtMicros) => {
    out = { channel, seq, sentAtMicros };
  });
  return out;
}

/** SocketIoPacket is a decoded Socket.IO packet (default namespace, text only). */
export interface SocketIoPacket {
  /** 0 connect, 1 disconnect, 2 event, 3 ack, 4 connect error. */
  type: number;
  /** Namespace ('/' when absent). */
  nsp: string;
  ackId?: number;
  /** The JSON payload (event array, ack arguments, handshake object), if any. */
  data?: unknown;
}

/**
 * parseSocketIoPacket decodes the Socket.IO packet in `text` (an Engine.IO message without its
 * leading `4`): `<type>[/<nsp>,][<ackId>][<json>]`. Binary packets (types 5 and 6) are not
 * supported: the bench never sends binary. Throws on a malformed packet.
 */
export function parseSocketIoPacket(text: string): SocketIoPacket {
  const type = text.charCodeAt(0) - 48;
  if (!(type >= 0 && type <= 4)) throw new Error(`unsupported Socket.IO packet type in ${text.slice(0, 40)}`);
  let i = 1;
  let nsp = '/';
  if (text[i] === '/') {
    const comma = text.indexOf(',', i);
    nsp = comma === -1 ? text.slice(i) : text.slice(i, comma);
    i = comma === -1 ? text.length : comma + 1;
  }
  let ackId: number | undefined;
  const digitsFrom = i;
  while (i < text.length && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
  if (i > digitsFrom) ackId = Number(text.slice(digitsFrom, i));
  const packet: SocketIoPacket = { type, nsp };
  if (ackId !== undefined) packet.ackId = ackId;
  if (i < text.length) packet.data = JSON.parse(text.slice(i)) as unknown;
  return packet;
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
  private readonly pending = new PendingReplies<number | string, Record<string, unknown>>();
  private readonly opened: Promise<void>;
  /** Socket.IO: resolves {@link opened} once the server confirmed the namespace connect. */
  private socketIoConnected: (() => void) | undefined;

  /**
   * Starts connecting; await {@link LeanClient.open} before sending. Socket.IO: open also covers
   * the Engine.IO handshake and the connect to the default namespace.
   */
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
      if (opts.protocol === 'socketio') this.socketIoConnected = resolve;
      else this.ws.once('open', () => resolve());
      this.ws.once('close', (code: number) =>
        reject(new Error(`could not open ${opts.url}: ${this.lastError ?? `closed with ${code}`}`)),
      );
    });
    // Avoid unhandled-rejection noise when nobody awaits open() (e.g. terminated early).
    this.opened.catch(() => undefined);
    this.ws.on('error', (err) => {
      this.lastError = err.message;
    });
    if (opts.protocol === 'socketio') this.ws.on('message', (data: Buffer) => this.onSocketIoFrame(data));
    else this.ws.on('message', (data: Buffer) => this.onFrame(data));
    this.ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.pending.rejectAll(new Error(`connection closed: ${code} ${this.closeReason}`.trim()));
      this.opts.onClose?.(code, this.closeReason);
    });
  }

  /** open resolves once the WebSocket handshake (Socket.IO: and the namespace connect) completed. */
  open(): Promise<void> {
    return this.opened;
  }

  /** isOpen reports whether the socket is open. */
  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * connect sends the Centrifugo connect command with `token` and resolves with the connect
   * result. Raw and Socket.IO protocols: a no-op (those servers authenticate on subscribe).
   */
  async connect(token: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    if (this.opts.protocol !== 'centrifugo') return {};
    const id = this.nextId++;
    const reply = this.request(id, timeoutMs);
    const v = this.opts.clientVersion === undefined ? '' : `,"version":${JSON.stringify(this.opts.clientVersion)}`;
    this.ws.send(`{"id":${id},"connect":{"token":${JSON.stringify(token)},"name":"bench"${v}}}`);
    return (await reply).connect as Record<string, unknown>;
  }

  /**
   * subscribe subscribes to `channel` and resolves on the server's confirmation. Raw protocol:
   * sends `{"sub":channel,"token":token}` and waits for `{"sub":channel}`. Socket.IO: emits
   * `sub` with an ack id (`42<id>["sub",channel,token]`) and waits for the ack (`43<id>[…]`).
   */
  async subscribe(channel: string, token?: string, timeoutMs = 15_000): Promise<void> {
    const ch = JSON.stringify(channel);
    if (this.opts.protocol === 'socketio') {
      const id = this.nextId++;
      const reply = this.request(id, timeoutMs);
      this.ws.send(token === undefined ? `42${id}["sub",${ch}]` : `42${id}["sub",${ch},${JSON.stringify(token)}]`);
      await reply;
      return;
    }
    if (this.opts.protocol === 'raw') {
      const reply = this.request(`sub:${channel}`, timeoutMs);
      this.ws.send(token === undefined ? `{"sub":${ch}}` : `{"sub":${ch},"token":${JSON.stringify(token)}}`);
      await reply;
      return;
    }
    const id = this.nextId++;
    const reply = this.request(id, timeoutMs);
    const tf = this.opts.tagsFilter === undefined ? '' : `,"tf":${JSON.stringify(this.opts.tagsFilter)}`;
    this.ws.send(`{"id":${id},"subscribe":{"channel":${ch}${tf}}}`);
    await reply;
  }

  /**
   * history reads the newest `limit` publications of `channel` (Centrifugo protocol only) and
   * resolves with the history result; an error reply rejects with `error <code>: <message>`
   * (e.g. `error 111: …` when the node sheds reads).
   */
  async history(channel: string, limit: number, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    if (this.opts.protocol !== 'centrifugo') throw new Error('history: Centrifugo protocol only');
    const id = this.nextId++;
    const reply = this.request(id, timeoutMs);
    this.ws.send(`{"id":${id},"history":{"channel":${JSON.stringify(channel)},"limit":${limit}}}`);
    return (await reply).history as Record<string, unknown>;
  }

  /**
   * publish sends one publication with `dataJson` (already-encoded JSON) to `channel`,
   * fire-and-forget: Centrifugo replies are only counted (`publishAcks`/`publishErrors`);
   * Socket.IO emits `pub` without an ack id (`42["pub",channel,data]`).
   */
  publish(channel: string, dataJson: string): void {
    if (this.opts.protocol === 'raw') {
      this.ws.send(`{"pub":${JSON.stringify(channel)},"data":${dataJson}}`);
    } else if (this.opts.protocol === 'socketio') {
      this.ws.send(`42["pub",${JSON.stringify(channel)},${dataJson}]`);
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
    return this.pending.wait(key, timeoutMs);
  }

  private settle(key: number | string, msg: Record<string, unknown>): boolean {
    return this.pending.settle(key, msg.error as ReplyError | undefined, msg);
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

  /** One Engine.IO packet (Socket.IO protocol): one per WebSocket frame. */
  private onSocketIoFrame(buf: Buffer): void {
    // Hot path: a bench push, decoded in place.
    if (this.opts.onPush && decodeSocketIoBenchPush(buf, this.opts.onPush)) return;
    const kind = buf[0];
    if (kind === 0x32 && buf.length === 1) {
      // Engine.IO ping ('2', server → client): answer pong ('3') or the server closes us.
      this.pings++;
      this.ws.send('3');
      return;
    }
    if (kind === 0x30) {
      // Engine.IO open ('0{"sid":…,"pingInterval":…}'): connect to the default namespace.
      this.ws.send('40');
      return;
    }
    if (kind !== 0x34) return; // '1' close (the socket close follows), '6' noop
    let packet: SocketIoPacket;
    try {
      packet = parseSocketIoPacket(buf.toString('utf8', 1));
    } catch {
      this.lastError = `unparsable message: ${buf.toString('utf8', 0, Math.min(buf.length, 200))}`;
      return;
    }
    switch (packet.type) {
      case 0: // namespace connect confirmed: '40{"sid":…}'
        this.socketIoConnected?.();
        return;
      case 1: // namespace disconnect: the server closes the socket next
        this.lastError = 'disconnected by the server (Socket.IO disconnect packet)';
        return;
      case 3: {
        // Ack: the server acks `sub` with the channel, or with {"error":…} when refused.
        if (packet.ackId === undefined) return;
        const arg = Array.isArray(packet.data) ? (packet.data[0] as unknown) : undefined;
        const error = typeof arg === 'object' && arg !== null ? (arg as { error?: unknown }).error : undefined;
        this.settle(packet.ackId, error === undefined ? { ack: packet.data } : { error: { message: String(error) } });
        return;
      }
      case 4: // connect error: '44{"message":…}'
        this.lastError = `Socket.IO connect error: ${JSON.stringify(packet.data)}`;
        this.ws.close();
        return;
      default:
        this.onSocketIoEvent(packet.data);
    }
  }

  /** An event the fast path did not decode: a `push` with markers read from the parsed JSON. */
  private onSocketIoEvent(args: unknown): void {
    const [name, , data] = Array.isArray(args) ? (args as unknown[]) : [];
    const d = data as Record<string, unknown> | undefined;
    if (
      name === 'push' &&
      this.opts.onPush &&
      typeof d === 'object' &&
      d !== null &&
      typeof d.bch === 'number' &&
      typeof d.bseq === 'number' &&
      typeof d.bts === 'number'
    ) {
      this.opts.onPush(d.bch, d.bseq, d.bts);
    } else {
      this.otherPushes++;
    }
  }
}
