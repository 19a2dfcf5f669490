/**
 * The WebSocket transport (`/connection/websocket`), on the `ws` library. Frames are text in
 * the JSON format and binary in the Protobuf format; disconnect advice travels as the WebSocket close code and reason, as the protocol defines.
 *
 * Closing is two steps: the close frame is written at once (the moment the session decides),
 * then the server waits for the peer's close frame — the close handshake — and destroys the
 * TCP socket itself after `websocket.close_timeout` (default {@link closeHandshakeTimeoutMs})
 * if the peer never answers. A peer
 * that ignores close frames therefore sees its TCP connection end that long after the
 * disconnect it was told about; a browser or SDK answers at once and sees both together.
 *
 * @module
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Codec } from '../protocol/codec.js';
import type { Disconnect } from '../protocol/codes.js';
import { preparedFrame } from './prepared-frame.js';
import type { Transport } from './transport.js';

/**
 * How long a closed connection waits by default (`websocket.close_timeout`) for the peer's side
 * of the close handshake before the socket is destroyed: Centrifugo's fixed `closeFrameWait` (5 s). Long enough for a slow
 * mobile link to receive the close frame (destroying the socket discards what is unsent,
 * the close code included); short enough that a client ignoring it holds a descriptor briefly.
 */
export const closeHandshakeTimeoutMs = 5000;

/** WebSocketTransport adapts one `ws` socket to the Transport contract. */
export class WebSocketTransport implements Transport {
  readonly name = 'websocket';
  readonly codec: Codec;
  readonly #ws: WebSocket;
  /** The upgraded TCP socket, for prepared frames; undefined when frames must go through ws (compression). */
  readonly #socket: Socket | undefined;
  readonly #closeTimeoutMs: number;

  /**
   * @param socket the socket `ws` took over in the upgrade. Pass it only when compression is
   *   off: without compression ws writes each frame to the socket synchronously, so a complete
   *   prepared frame written beside it can never land inside another frame.
   * @param closeTimeoutMs websocket.close_timeout: the wait for the peer's close frame.
   * @param codec the connection's format.
   */
  constructor(ws: WebSocket, socket: Socket | undefined, closeTimeoutMs: number, codec: Codec) {
    this.codec = codec;
    this.#ws = ws;
    this.#socket = socket;
    this.#closeTimeoutMs = closeTimeoutMs;
  }

  send(frame: Buffer): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    const binary = this.codec.binary;
    const wire = this.#socket ? preparedFrame(frame, binary) : undefined;
    if (wire) this.#socket?.write(wire);
    // JSON frames are text frames (browsers' SDKs expect strings); Protobuf frames are binary.
    else this.#ws.send(frame, { binary });
  }

  pauseReading(): void {
    this.#ws.pause();
  }

  resumeReading(): void {
    this.#ws.resume();
  }

  close(d: Disconnect): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    const ws = this.#ws;
    ws.close(d.code, d.reason);
    // A peer that never answers the close handshake must not hold the socket forever (ws's
    // own fallback is 30 s). Cleared when the handshake completes: the timer would otherwise
    // keep the closed socket and its buffers reachable for the whole wait.
    const timer = setTimeout(() => ws.terminate(), this.#closeTimeoutMs);
    timer.unref();
    ws.once('close', () => clearTimeout(timer));
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  get remoteAddress(): string {
    return this.#socket?.remoteAddress ?? '';
  }
}
