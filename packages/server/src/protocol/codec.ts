/**
 * The Codec contract: one of the protocol's two formats — JSON and Protobuf — as the session
 * sees it. A session decodes its client's frames and encodes its replies and pushes through
 * the codec of its connection, so the handlers produce results ({@link Reply}, {@link Push})
 * and never bytes.
 *
 * Fan-out encodes a push once per channel per format: each codec has a `slot`, an index into
 * the small per-broadcast array of frames (client/shared-frames.ts).
 *
 * @module
 */
import type { ProtocolErrorShape } from './codes.js';
import type { DecodedFrame } from './decode.js';
import type { Push, Reply } from './types.js';

/** Format names the protocol's two encodings, as Centrifugo names them. */
export type Format = 'json' | 'protobuf';

/** Codec encodes and decodes one connection's messages. */
export interface Codec {
  readonly format: Format;
  /** This codec's index in per-broadcast frame arrays: distinct for every codec. */
  readonly slot: number;
  /** Frames are binary (Protobuf) rather than text (JSON): WebSocket frame type, HTTP content type. */
  readonly binary: boolean;
  /**
   * Set for the codec of unidirectional connections (uni_websocket, uni_sse, uni_http_stream):
   * bare pushes, no commands, and no pong expected for the server's pings.
   */
  readonly unidirectional?: boolean;
  /** decode splits a client frame into commands; throws FrameError when it is malformed. */
  decode(frame: Buffer): DecodedFrame;
  /** reply encodes the successful reply to command `id`. */
  reply(id: number, reply: Reply): Buffer;
  /** error encodes an error reply to command `id`. */
  error(id: number, err: ProtocolErrorShape): Buffer;
  /** push encodes a server push. */
  push(push: Push): Buffer;
  /** The server's ping (an empty reply); never mutated, so shared. */
  readonly ping: Buffer;
  /**
   * Bytes between two messages written as one transport frame: a newline in JSON; none in
   * Protobuf, whose messages carry their own length.
   */
  readonly separator: Buffer | undefined;
}

/** joinMessages makes encoded messages one frame, with the codec's separator between each two. */
export function joinMessages(codec: Codec, messages: readonly Buffer[]): Buffer {
  const separator = codec.separator;
  if (messages.length === 1) return messages[0] as Buffer;
  if (separator === undefined) return Buffer.concat(messages);
  const parts: Buffer[] = new Array(messages.length * 2 - 1);
  for (let i = 0; i < messages.length; i++) {
    if (i > 0) parts[i * 2 - 1] = separator;
    parts[i * 2] = messages[i] as Buffer;
  }
  return Buffer.concat(parts);
}
