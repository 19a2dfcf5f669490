/**
 * The WebSocket transport (`/connection/websocket`), on the `ws` library. Frames are text;
 * disconnect advice travels as the WebSocket close code and reason, as the protocol defines.
 *
 * @module
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Disconnect } from '../protocol/codes.js';
import { preparedTextFrame } from './prepared-frame.js';
import type { Transport } from './transport.js';

/** WebSocketTransport adapts one `ws` socket to the Transport contract. */
export class WebSocketTransport implements Transport {
  readonly name = 'websocket';
  readonly #ws: WebSocket;
  /** The upgraded TCP socket, for prepared frames; undefined when frames must go through ws (compression). */
  readonly #socket: Socket | undefined;

  /**
   * @param socket the socket `ws` took over in the upgrade. Pass it only when compression is
   *   off: without compression ws writes each frame to the socket synchronously, so a complete
   *   prepared frame written beside it can never land inside another frame.
   */
  constructor(ws: WebSocket, socket?: Socket) {
    this.#ws = ws;
    this.#socket = socket;
  }

  send(frame: Buffer): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    const wire = this.#socket ? preparedTextFrame(frame) : undefined;
    if (wire) this.#socket?.write(wire);
    // JSON protocol frames are text frames: browsers' SDKs expect strings.
    else this.#ws.send(frame, { binary: false });
  }

  close(d: Disconnect): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    this.#ws.close(d.code, d.reason);
    // A peer that never answers the close handshake must not hold the socket forever.
    const ws = this.#ws;
    setTimeout(() => ws.terminate(), 5000).unref();
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  get remoteAddress(): string {
    return this.#socket?.remoteAddress ?? '';
  }
}
