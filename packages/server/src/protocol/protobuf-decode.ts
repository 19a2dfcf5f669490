/**
 * Decoding client frames in the Protobuf format: one binary frame holds one or more
 * `Command` messages, each prefixed by its length as a varint. The wire format is read by
 * `@bufbuild/protobuf` (conformance-tested) with the code generated from proto/client.proto;
 * this module only maps its messages onto the same {@link Command}s the JSON decoder yields,
 * so the session cannot tell the formats apart.
 *
 * Malformed input (a bad, truncated or out-of-range length, a message that does not parse, a wire type that
 * does not match its field, two methods in one command) is a {@link FrameError}: the session
 * disconnects with 3501, as for malformed JSON. Unknown fields are skipped, as Protobuf does.
 *
 * Payloads (`data` of publish, rpc, send, connect, subscribe) are bytes in Protobuf. Bulwark
 * keeps every payload as JSON, so every subscriber in either format can read every
 * publication: the bytes must be UTF-8 JSON text. A command whose payload is not is answered
 * 107 (bad request) alone; the rest of its frame runs.
 *
 * @module
 */
import { fromBinary } from '@bufbuild/protobuf';
import { BinaryReader, sizeDelimitedPeek } from '@bufbuild/protobuf/wire';
import { ErrorCode, ProtocolError } from './codes.js';
import { FrameError, type DecodedFrame, type UndecodableCommand } from './decode.js';
import {
  CommandSchema,
  type Command as PbCommand,
  type SubscribeRequest as PbSubscribeRequest,
} from './gen/client_pb.js';
import type { Command, SubscribeRequest } from './types.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** NotJsonPayload marks a payload that is not JSON text, to answer its command 107. */
class NotJsonPayload extends Error {}

/** payload turns Protobuf bytes into the JSON value they hold; empty bytes are no payload. */
function payload(bytes: Uint8Array): unknown {
  if (bytes.length === 0) return undefined;
  try {
    return JSON.parse(utf8.decode(bytes)) as unknown;
  } catch {
    throw new NotJsonPayload();
  }
}

/** uint64 reads an offset: within JavaScript's safe integers, as every real offset is. */
function uint64(v: bigint, field: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FrameError(`${field}: offset out of range`);
  return Number(v);
}

/** int64 reads a flag field: within JavaScript's safe integers. */
function int64(v: bigint, field: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new FrameError(`${field}: out of range`);
  }
  return Number(v);
}

/** optional maps Protobuf's empty-string default to absent, as the JSON format sends it. */
function optional(s: string): string | undefined {
  return s === '' ? undefined : s;
}

function toSubscribe(r: PbSubscribeRequest, channel = r.channel): SubscribeRequest {
  if (channel === '') throw new FrameError('subscribe.channel: expected a string');
  return {
    channel,
    token: optional(r.token),
    recover: r.recover,
    epoch: optional(r.epoch),
    offset: uint64(r.offset, 'subscribe.offset'),
    data: payload(r.data),
    positioned: r.positioned,
    recoverable: r.recoverable,
    join_leave: r.joinLeave,
    tf: r.tf,
    flag: int64(r.flag, 'subscribe.flag'),
    delta: optional(r.delta),
    type: r.type,
    phase: r.phase,
    cursor: optional(r.cursor),
    limit: r.limit,
  };
}

function channelOf(req: { channel: string }, method: string): string {
  if (req.channel === '') throw new FrameError(`${method}.channel: expected a string`);
  return req.channel;
}

/** toCommand maps one decoded Protobuf command onto Bulwark's Command. */
function toCommand(c: PbCommand): Command | UndecodableCommand {
  const id = c.id;
  const set = [
    c.connect,
    c.subscribe,
    c.unsubscribe,
    c.publish,
    c.presence,
    c.presenceStats,
    c.history,
    c.ping,
    c.send,
    c.rpc,
    c.refresh,
    c.subRefresh,
  ].filter((f) => f !== undefined).length;
  if (set > 1) throw new FrameError('command carries more than one method');
  if (set === 0) {
    // An empty command is the client's pong; one with fields we do not know names a method we do not know.
    if (id === 0 && (c.$unknown === undefined || c.$unknown.length === 0)) return { id: 0, method: 'pong', req: {} };
    return { id, method: undefined };
  }
  try {
    if (c.connect) {
      const subs: Record<string, SubscribeRequest> = {};
      for (const [ch, s] of Object.entries(c.connect.subs)) subs[ch] = toSubscribe(s, ch);
      return {
        id,
        method: 'connect',
        req: {
          token: optional(c.connect.token),
          data: payload(c.connect.data),
          subs: Object.keys(subs).length > 0 ? subs : undefined,
          name: optional(c.connect.name),
          version: optional(c.connect.version),
        },
      };
    }
    if (c.subscribe) return { id, method: 'subscribe', req: toSubscribe(c.subscribe) };
    if (c.unsubscribe) return { id, method: 'unsubscribe', req: { channel: channelOf(c.unsubscribe, 'unsubscribe') } };
    if (c.publish) {
      const p = c.publish;
      const data = payload(p.data);
      // A map removal carries no data; every other publish does.
      if (data === undefined && !(p.type === 1 && p.removed)) throw new FrameError('publish.data: expected a payload');
      const req = { channel: channelOf(p, 'publish'), data };
      if (p.type === 0) return { id, method: 'publish', req };
      return { id, method: 'publish', req: { ...req, type: p.type, key: p.key, removed: p.removed } };
    }
    if (c.presence) return { id, method: 'presence', req: { channel: channelOf(c.presence, 'presence') } };
    if (c.presenceStats) {
      return { id, method: 'presence_stats', req: { channel: channelOf(c.presenceStats, 'presence_stats') } };
    }
    if (c.history) {
      const h = c.history;
      return {
        id,
        method: 'history',
        req: {
          channel: channelOf(h, 'history'),
          limit: h.limit,
          since: h.since ? { offset: uint64(h.since.offset, 'history.since.offset'), epoch: h.since.epoch } : undefined,
          reverse: h.reverse,
        },
      };
    }
    if (c.ping) return { id, method: 'ping', req: {} };
    if (c.send) return { id, method: 'send', req: { data: payload(c.send.data) } };
    if (c.rpc) return { id, method: 'rpc', req: { method: optional(c.rpc.method), data: payload(c.rpc.data) } };
    if (c.refresh) return { id, method: 'refresh', req: { token: c.refresh.token } };
    const r = c.subRefresh as NonNullable<PbCommand['subRefresh']>;
    const req = { channel: channelOf(r, 'sub_refresh'), token: r.token };
    if (r.type === 0) return { id, method: 'sub_refresh', req };
    const track = r.track.map((b) => ({
      signature: b.signature,
      items: b.items.map((it) => ({ key: it.key, version: uint64(it.version, 'sub_refresh.track.version') })),
    }));
    return { id, method: 'sub_refresh', req: { ...req, type: r.type, track, untrack: r.untrack } };
  } catch (err) {
    if (!(err instanceof NotJsonPayload)) throw err;
    const e = new ProtocolError(ErrorCode.BadRequest, 'data must be UTF-8 JSON text').toWire();
    return { id, method: undefined, error: e };
  }
}

/**
 * decodeProtobufFrame splits a binary frame into length-delimited commands and decodes each.
 * It throws FrameError when any part is malformed: the whole frame is rejected, so a
 * partially applied batch never happens.
 */
export function decodeProtobufFrame(frame: Uint8Array): DecodedFrame {
  const commands: DecodedFrame['commands'] = [];
  let rest = frame;
  while (rest.length > 0) {
    let peek: ReturnType<typeof sizeDelimitedPeek>;
    try {
      peek = sizeDelimitedPeek(rest);
    } catch {
      throw new FrameError('malformed length prefix');
    }
    if (peek.eof) throw new FrameError('truncated length prefix');
    // sizeDelimitedPeek reads the prefix as a uint32, dropping higher bits: a declared 4 GiB + 4
    // would read as 4. Only a prefix of 5 bytes or more can hold that much: read it whole.
    if (peek.offset >= 5 && BigInt(new BinaryReader(rest.subarray(0, peek.offset)).uint64()) !== BigInt(peek.size)) {
      throw new FrameError('length prefix out of range');
    }
    const end = peek.offset + peek.size;
    if (end > rest.length) throw new FrameError('truncated command');
    let cmd: PbCommand;
    try {
      cmd = fromBinary(CommandSchema, rest.subarray(peek.offset, end));
    } catch (err) {
      throw new FrameError(`malformed command: ${err instanceof Error ? err.message : String(err)}`);
    }
    commands.push(toCommand(cmd));
    rest = rest.subarray(end);
  }
  if (commands.length === 0) throw new FrameError('empty frame');
  return { commands };
}
