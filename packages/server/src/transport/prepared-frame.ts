/**
 * Prepared WebSocket frames: a broadcast is the same bytes for every subscriber, and server
 * frames are never masked, so the whole wire frame (header + payload) can be built once per
 * broadcast and written as is to every socket — one `write` per subscriber, no per-subscriber
 * framing or header allocation (what Centrifugo does with gorilla's PreparedMessage).
 *
 * @module
 */
import * as ws from 'ws';

interface FrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
}

// ws exports its frame encoder (`Sender`, a named export of its ESM entry); @types/ws does not declare it.
const Sender = (ws as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } }).Sender;

const textFrame: FrameOptions = { fin: true, rsv1: false, opcode: 0x1, mask: false, readOnly: false };
const binaryFrame: FrameOptions = { ...textFrame, opcode: 0x2 };

/** Payloads marked shared (fan-out), with their wire frame once built. */
const prepared = new WeakMap<Buffer, Buffer | null>();

/** markShared records that `payload` goes to many sockets, so its wire frame is worth caching. */
export function markShared(payload: Buffer): Buffer {
  prepared.set(payload, null);
  return payload;
}

/**
 * preparedFrame returns the unmasked frame (text, or binary for Protobuf) for a shared payload
 * (built on first use, then reused by every subscriber), or undefined for a payload that was
 * not marked shared. A payload is encoded for one format, so it always asks for one frame type.
 */
export function preparedFrame(payload: Buffer, binary: boolean): Buffer | undefined {
  const cached = prepared.get(payload);
  if (cached === undefined) return undefined;
  if (cached !== null) return cached;
  const wire = Buffer.concat(Sender.frame(payload, binary ? binaryFrame : textFrame));
  prepared.set(payload, wire);
  return wire;
}
