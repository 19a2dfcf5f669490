/**
 * The JSON format as a Codec: commands are newline-separated JSON objects in text frames,
 * replies and pushes are JSON objects (encode.ts), several to a frame separated by newlines.
 *
 * `jsonUniCodec` is the variant of unidirectional connections (uni_websocket, uni_sse,
 * uni_http_stream): they receive the protocol's Push objects bare, not wrapped in a reply, and
 * send no commands.
 *
 * @module
 */
import type { Codec } from './codec.js';
import { FrameError, decodeFrame } from './decode.js';
import { encodeErrorReply, encodePush, encodePushBody, encodeReply, encodeResult, pingFrame } from './encode.js';

const newline = Buffer.from('\n');

/** jsonCodec is the JSON format of bidirectional connections. */
export const jsonCodec: Codec = {
  format: 'json',
  slot: 0,
  binary: false,
  decode: (frame) => decodeFrame(frame.toString('utf8')),
  reply: (id, reply) => Buffer.from(encodeReply(id, reply.method, encodeResult(reply))),
  error: (id, err) => Buffer.from(encodeErrorReply(id, err)),
  push: (push) => Buffer.from(encodePush(push)),
  ping: Buffer.from(pingFrame),
  separator: newline,
};

/** jsonUniCodec is the JSON format of unidirectional connections: bare pushes, no commands. */
export const jsonUniCodec: Codec = {
  format: 'json',
  slot: 2,
  binary: false,
  unidirectional: true,
  decode: () => {
    throw new FrameError('a unidirectional connection takes no commands');
  },
  reply: (id, reply) => Buffer.from(encodeReply(id, reply.method, encodeResult(reply))),
  error: (id, err) => Buffer.from(encodeErrorReply(id, err)),
  push: (push) => Buffer.from(encodePushBody(push)),
  ping: Buffer.from(pingFrame),
  separator: newline,
};
