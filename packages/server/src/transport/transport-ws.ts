/**
 * The WebSocket transport (`/connection/websocket`), on the `ws` library. Frames are text;
 * disconnect advice travels as the WebSocket close code and reason, as the protocol defines.
 *
 * @module
 */
import type { WebSocket } from 'ws';
import type { Disconnect } from '../protocol/codes.js';
import type { Transport } from './transport.js';

/** WebSocketTransport adapts one `ws` socket to the Transport contract. */
export class WebSocketTransport implements Transport {
  readonly name = 'websocket';
  readonly #ws: WebSocket;

  constructor(ws: WebSocket) {
    this.#ws = ws;
  }

  send(frame: Buffer): void {
    // JSON protocol frames are text frames: browsers' SDKs expect strings.
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(frame, { binary: false });
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
}
