/**
 * The HTTP-streaming transport: one long-lived HTTP response carries every message the server
 * sends a client (`/connection/http_stream` with bidirectional emulation, and
 * `/connection/uni_http_stream`). In JSON each message ends with a newline; in Protobuf each
 * message carries its varint length already (the codec's framing), so frames are written as
 * they are. The write queue hands over a flush's messages unjoined (sendMany), so each is framed
 * once.
 *
 * Closing writes the disconnect advice as a push — an HTTP response has no close code — and
 * ends the response. A client that stopped reading may never take those last bytes: the socket
 * is destroyed when they are not written within `websocket.close_timeout`.
 *
 * @module
 */
import type { ServerResponse } from 'node:http';
import type { Codec } from '../protocol/codec.js';
import { isReconnectAllowed, type Disconnect } from '../protocol/codes.js';
import type { Transport } from './transport.js';

const newline = Buffer.from('\n');

/** HttpStreamOptions describe one streaming response. */
export interface HttpStreamOptions {
  /** The transport's name for logs, metrics and proxies (`http_stream`, `uni_http_stream`). */
  readonly name: string;
  readonly codec: Codec;
  /** websocket.close_timeout: the wait for the last bytes after close. */
  readonly closeTimeoutMs: number;
  /** The emulation session id (bidirectional emulation only). */
  readonly session?: string | undefined;
}

/** HttpStreamTransport adapts one streaming HTTP response to the Transport contract. */
export class HttpStreamTransport implements Transport {
  readonly name: string;
  readonly codec: Codec;
  readonly session: string | undefined;
  protected readonly res: ServerResponse;
  readonly #closeTimeoutMs: number;
  #ended = false;

  constructor(res: ServerResponse, opts: HttpStreamOptions) {
    this.res = res;
    this.name = opts.name;
    this.codec = opts.codec;
    this.session = opts.session;
    this.#closeTimeoutMs = opts.closeTimeoutMs;
  }

  /** open is true until the server ended the response or the peer went away. */
  get open(): boolean {
    return !this.#ended && !this.res.destroyed;
  }

  /** send writes one message. */
  send(message: Buffer): void {
    if (this.open) this.res.write(this.encode([message]));
  }

  /** sendMany writes the messages of one flush in one write, each framed for the stream. */
  sendMany(messages: readonly Buffer[]): void {
    if (this.open) this.res.write(this.encode(messages));
  }

  close(d: Disconnect): void {
    if (!this.open) return;
    this.#ended = true;
    const res = this.res;
    const push = this.codec.push({
      type: 'disconnect',
      code: d.code,
      reason: d.reason,
      reconnect: isReconnectAllowed(d.code),
    });
    res.end(this.encode([push]));
    const timer = setTimeout(() => res.destroy(), this.#closeTimeoutMs);
    timer.unref();
    res.once('close', () => clearTimeout(timer));
  }

  get bufferedAmount(): number {
    return this.res.writableLength;
  }

  get remoteAddress(): string {
    return this.res.socket?.remoteAddress ?? '';
  }

  /** encode frames messages for the stream: each JSON message ends with a newline; Protobuf ones carry their length. */
  protected encode(messages: readonly Buffer[]): Buffer {
    if (this.codec.separator === undefined)
      return messages.length === 1 ? (messages[0] as Buffer) : Buffer.concat(messages);
    const parts: Buffer[] = [];
    for (const m of messages) parts.push(m, newline);
    return Buffer.concat(parts);
  }
}
