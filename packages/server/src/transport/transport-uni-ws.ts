/**
 * The unidirectional WebSocket transport (`/connection/uni_websocket`): the WebSocket
 * transport (transport-ws.ts) speaking the unidirectional protocol, in which the client
 * receives bare `Push` objects (protocol/json-codec.ts `jsonUniCodec`) and sends nothing after
 * its connect request.
 *
 * As Centrifugo does for uni_websocket, pushes go one per WebSocket message unless
 * `uni_websocket.join_push_messages` joins those flushed together (newline-separated), and a
 * disconnect is told twice: a `disconnect` push (unless `uni_websocket.disable_disconnect_push`)
 * and then the close frame with the same code and reason.
 *
 * @module
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { joinMessages, type Codec } from '../protocol/codec.js';
import { isReconnectAllowed, type Disconnect } from '../protocol/codes.js';
import type { Transport } from './transport.js';
import { WebSocketTransport } from './transport-ws.js';

/** UniWebSocketOptions are the uni_websocket settings its transport applies. */
export interface UniWebSocketOptions {
  /** uni_websocket.join_push_messages: pushes flushed together leave as one message. */
  readonly joinPushMessages: boolean;
  /** uni_websocket.disable_disconnect_push: the close frame alone tells the disconnect. */
  readonly disableDisconnectPush: boolean;
}

/** UniWebSocketTransport carries one unidirectional WebSocket connection. */
export class UniWebSocketTransport implements Transport {
  readonly name = 'uni_websocket';
  readonly codec: Codec;
  readonly #ws: WebSocketTransport;
  readonly #opts: UniWebSocketOptions;
  #closed = false;

  /**
   * @param socket the upgraded socket, only when compression is off (see WebSocketTransport).
   * @param closeTimeoutMs websocket.close_timeout: the wait for the peer's close frame.
   * @param codec the unidirectional codec (bare pushes).
   */
  constructor(
    ws: WebSocket,
    socket: Socket | undefined,
    closeTimeoutMs: number,
    codec: Codec,
    opts: UniWebSocketOptions,
  ) {
    this.codec = codec;
    this.#ws = new WebSocketTransport(ws, socket, closeTimeoutMs, codec);
    this.#opts = opts;
  }

  send(frame: Buffer): void {
    this.#ws.send(frame);
  }

  sendMany(messages: readonly Buffer[]): void {
    if (this.#opts.joinPushMessages) this.#ws.send(joinMessages(this.codec, messages));
    else for (const m of messages) this.#ws.send(m);
  }

  close(d: Disconnect): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#opts.disableDisconnectPush) {
      this.#ws.send(
        this.codec.push({ type: 'disconnect', code: d.code, reason: d.reason, reconnect: isReconnectAllowed(d.code) }),
      );
    }
    this.#ws.close(d);
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  get remoteAddress(): string {
    return this.#ws.remoteAddress;
  }
}
