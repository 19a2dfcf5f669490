/**
 * The HTTP-streaming transport: one long-lived HTTP response carries every message the server
 * sends a client (`/connection/http_stream` with bidirectional emulation, and
 * `/connection/uni_http_stream`). In JSON each message ends with a newline; in Protobuf each
 * message carries its varint length already (the codec's framing), so frames are written as
 * they are. The write queue hands over a flush's messages unjoined (sendMany), so each is framed
 * once.
 *
 * The body goes to a {@link StreamSink}: the socket itself once it was taken over from the HTTP
 * server (socket-sink.ts, http/takeover.ts), else the ServerResponse (stream-sink.ts).
 *
 * Closing writes the disconnect advice as a push — an HTTP response has no close code — and
 * ends the response. A client that stopped reading may never take those last bytes: the socket
 * is destroyed when they are not written within `websocket.close_timeout`.
 *
 * @module
 */
import type { Codec } from '../protocol/codec.js';
import { isReconnectAllowed, type Disconnect } from '../protocol/codes.js';
import type { StreamSink } from './stream-sink.js';
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

/** HttpStreamTransport adapts one streaming HTTP response body to the Transport contract. */
export class HttpStreamTransport implements Transport {
  readonly name: string;
  readonly codec: Codec;
  readonly session: string | undefined;
  /** Where the body goes: a SocketSink once the socket was taken over from the HTTP server. */
  readonly sink: StreamSink;
  readonly #closeTimeoutMs: number;
  #ended = false;

  constructor(sink: StreamSink, opts: HttpStreamOptions) {
    this.sink = sink;
    this.name = opts.name;
    this.codec = opts.codec;
    this.session = opts.session;
    this.#closeTimeoutMs = opts.closeTimeoutMs;
  }

  /** open is true until the server ended the response or the peer went away. */
  get open(): boolean {
    return !this.#ended && !this.sink.destroyed;
  }

  /** send writes one message. */
  send(message: Buffer): void {
    if (this.open) this.sink.write(this.encode([message]));
  }

  /** sendMany writes the messages of one flush in one write, each framed for the stream. */
  sendMany(messages: readonly Buffer[]): void {
    if (this.open) this.sink.write(this.encode(messages));
  }

  close(d: Disconnect): void {
    if (!this.open) return;
    this.#ended = true;
    const sink = this.sink;
    const push = this.codec.push({
      type: 'disconnect',
      code: d.code,
      reason: d.reason,
      reconnect: isReconnectAllowed(d.code),
    });
    sink.end(this.encode([push]));
    const timer = setTimeout(() => sink.destroy(), this.#closeTimeoutMs);
    timer.unref();
    sink.onClose(() => clearTimeout(timer));
  }

  get bufferedAmount(): number {
    return this.sink.writableLength;
  }

  get remoteAddress(): string {
    return this.sink.remoteAddress;
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
