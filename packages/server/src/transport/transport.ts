/**
 * The Transport contract: how bytes reach one client. A transport knows framing and
 * backpressure, nothing about channels.
 *
 * @module
 */
import type { Codec } from '../protocol/codec.js';
import type { Disconnect } from '../protocol/codes.js';

/** Transport carries frames to one client. */
export interface Transport {
  /** Name for logs and metrics ("websocket"). */
  readonly name: string;
  /** The protocol format spoken over this transport (JSON or Protobuf). */
  readonly codec: Codec;
  /** send writes one frame (one or more protocol messages, joined by the codec's separator). */
  send(frame: Buffer): void;
  /**
   * sendMany, when a transport has it, writes several protocol messages flushed together and
   * frames them itself (uni_websocket: one WebSocket message each); without it they are
   * joined into one frame for send.
   */
  sendMany?(messages: readonly Buffer[]): void;
  /**
   * pauseReading stops reading the client's frames until resumeReading: TCP backpressure, its
   * sends wait in its own buffers. Optional: HTTP-streaming and SSE clients send their
   * commands in separate requests, which are not held back this way.
   */
  pauseReading?(): void;
  resumeReading?(): void;
  /** close ends the connection with a disconnect advice (WebSocket close code and reason). */
  close(d: Disconnect): void;
  /** Bytes accepted by send() but not yet written to the socket. */
  readonly bufferedAmount: number;
  /** The peer's address, read on demand (for logs): a syscall, not paid per connect. */
  readonly remoteAddress: string;
  /**
   * The emulation session id of an HTTP-streaming or SSE connection: its clients name it in
   * their /emulation requests, and the connect result tells it. Unguessable, and not the client
   * id (client ids are public in presence). Undefined for other transports.
   */
  readonly session?: string | undefined;
}
