/**
 * Decoding client frames (JSON protocol): one WebSocket message holds one or more commands
 * separated by newlines. Validation is by hand, not zod, because it runs for every command
 * on the hot path; it checks the type of every field Bulwark reads and ignores unknown
 * fields, as protobuf does, so newer SDKs that send extra fields keep working.
 *
 * Failures are {@link FrameError}s: the session answers them with disconnect 3501
 * (bad request), the protocol's answer to malformed frames.
 *
 * @module
 */
import type { ProtocolErrorShape } from './codes.js';
import {
  commandMethods,
  type Command,
  type ConnectRequest,
  type StreamPosition,
  type SubscribeRequest,
  type TrackBatch,
  type TrackItem,
} from './types.js';

/** FrameError says a frame or one of its commands is malformed. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(method: string, field: string, want: string): never {
  throw new FrameError(`${method}.${field}: expected ${want}`);
}

function str(o: Obj, method: string, field: string, required = false): string | undefined {
  const v = o[field];
  if (v === undefined || v === null) {
    if (required) fail(method, field, 'a string');
    return undefined;
  }
  if (typeof v !== 'string') fail(method, field, 'a string');
  return v;
}

function bool(o: Obj, method: string, field: string): boolean | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') fail(method, field, 'a boolean');
  return v;
}

/** Offsets are uint64 in the protocol: JSON clients send numbers, some send decimal strings. */
function uint(o: Obj, method: string, field: string): number | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) fail(method, field, 'a non-negative integer');
  return n;
}

function int(o: Obj, method: string, field: string): number | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail(method, field, 'an integer');
  return v;
}

function channelOf(o: Obj, method: string): string {
  return str(o, method, 'channel', true) as string;
}

function decodeSubscribe(o: Obj, method = 'subscribe'): SubscribeRequest {
  return {
    channel: channelOf(o, method),
    token: str(o, method, 'token'),
    recover: bool(o, method, 'recover'),
    epoch: str(o, method, 'epoch'),
    offset: uint(o, method, 'offset'),
    data: o['data'],
    positioned: bool(o, method, 'positioned'),
    recoverable: bool(o, method, 'recoverable'),
    join_leave: bool(o, method, 'join_leave'),
    tf: filterNode(o, method),
    flag: int(o, method, 'flag'),
    delta: str(o, method, 'delta'),
    type: int(o, method, 'type'),
    phase: int(o, method, 'phase'),
    cursor: str(o, method, 'cursor'),
    limit: int(o, method, 'limit'),
  };
}

/** decodeTrack reads a shared poll `track` list: batches of items, each batch with its signature. */
function decodeTrack(o: Obj): TrackBatch[] | undefined {
  const v = o['track'];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) fail('sub_refresh', 'track', 'an array');
  return v.map((b: unknown, i): TrackBatch => {
    if (!isObj(b)) fail('sub_refresh', `track[${i}]`, 'an object');
    const items = b['items'] ?? [];
    if (!Array.isArray(items)) fail('sub_refresh', `track[${i}].items`, 'an array');
    return {
      signature: str(b, 'sub_refresh.track', 'signature') ?? '',
      items: items.map((it: unknown, j): TrackItem => {
        const at = `sub_refresh.track[${i}].items[${j}]`;
        if (!isObj(it)) fail(at, '', 'an object');
        return { key: str(it, at, 'key', true) as string, version: uint(it, at, 'version') ?? 0 };
      }),
    };
  });
}

/** decodeStrings reads an optional array of strings. */
function decodeStrings(o: Obj, method: string, field: string): string[] | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) fail(method, field, 'an array of strings');
  return v as string[];
}

/** The tags filter is checked at subscribe (107 naming the node); here only that it is an object. */
function filterNode(o: Obj, method: string): unknown {
  const v = o['tf'];
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) fail(method, 'tf', 'an object');
  return v;
}

function decodeSince(o: Obj): StreamPosition | undefined {
  const v = o['since'];
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) fail('history', 'since', 'an object');
  return { offset: uint(v, 'history.since', 'offset') ?? 0, epoch: str(v, 'history.since', 'epoch') ?? '' };
}

/** decodeCommand validates one parsed command object. Unknown methods yield `undefined`. */
export function decodeCommand(raw: unknown): Command | undefined {
  if (!isObj(raw)) throw new FrameError('command must be a JSON object');
  const id = uint(raw, 'command', 'id') ?? 0;
  if (id > 0xffffffff) throw new FrameError('command.id: expected a uint32');
  let method: (typeof commandMethods)[number] | undefined;
  for (const m of commandMethods) {
    const v = raw[m];
    if (v !== undefined && v !== null) {
      if (method !== undefined) throw new FrameError(`command carries both ${method} and ${m}`);
      method = m;
    }
  }
  if (method === undefined) {
    // An empty command is the client's pong; anything else names a method we do not know.
    const known = Object.keys(raw).every((k) => k === 'id');
    if (known && id === 0) return { id: 0, method: 'pong', req: {} };
    return undefined;
  }
  const body = raw[method];
  if (!isObj(body)) fail(method, '', 'an object');
  switch (method) {
    case 'connect': {
      const subsRaw = body['subs'];
      let subs: Record<string, SubscribeRequest> | undefined;
      if (subsRaw !== undefined && subsRaw !== null) {
        if (!isObj(subsRaw)) fail(method, 'subs', 'an object');
        subs = {};
        for (const [ch, s] of Object.entries(subsRaw)) {
          if (!isObj(s)) fail(method, `subs.${ch}`, 'an object');
          subs[ch] = decodeSubscribe({ ...s, channel: ch }, 'connect.subs');
        }
      }
      return {
        id,
        method,
        req: {
          token: str(body, method, 'token'),
          data: body['data'],
          subs,
          name: str(body, method, 'name'),
          version: str(body, method, 'version'),
        },
      };
    }
    case 'subscribe':
      return { id, method, req: decodeSubscribe(body) };
    case 'unsubscribe':
    case 'presence':
    case 'presence_stats':
      return { id, method, req: { channel: channelOf(body, method) } } as Command;
    case 'publish': {
      const type = int(body, method, 'type');
      const removed = bool(body, method, 'removed');
      // A map removal carries no data; every other publish does.
      if (body['data'] === undefined && !(type === 1 && removed === true)) fail(method, 'data', 'a JSON value');
      const req = { channel: channelOf(body, method), data: body['data'] };
      if (type === undefined || type === 0) return { id, method, req };
      return { id, method, req: { ...req, type, key: str(body, method, 'key') ?? '', removed } };
    }
    case 'history':
      return {
        id,
        method,
        req: {
          channel: channelOf(body, method),
          limit: int(body, method, 'limit'),
          since: decodeSince(body),
          reverse: bool(body, method, 'reverse'),
        },
      };
    case 'ping':
      return { id, method, req: {} };
    case 'send':
      return { id, method, req: { data: body['data'] } };
    case 'rpc':
      return { id, method, req: { method: str(body, method, 'method'), data: body['data'] } };
    case 'refresh':
      return { id, method, req: { token: str(body, method, 'token', true) as string } };
    case 'sub_refresh': {
      const type = int(body, method, 'type');
      // A shared poll track/untrack (type 1/2) carries no token; a token refresh must.
      const tokenRequired = type === undefined || type === 0;
      const req = { channel: channelOf(body, method), token: str(body, method, 'token', tokenRequired) ?? '' };
      if (tokenRequired) return { id, method, req };
      return {
        id,
        method,
        req: { ...req, type, track: decodeTrack(body), untrack: decodeStrings(body, method, 'untrack') },
      };
    }
  }
}

/**
 * UndecodableCommand is a command that cannot run but does not spoil its frame: an unknown
 * method (answered 104), or, with `error`, a request the format could decode but Bulwark
 * cannot take (a Protobuf payload that is not JSON text: 107).
 */
export interface UndecodableCommand {
  id: number;
  method: undefined;
  error?: ProtocolErrorShape;
}

/** DecodedFrame is the result of splitting and parsing one frame. */
export interface DecodedFrame {
  /** Valid commands, in frame order, with those that cannot run in their place. */
  commands: Array<Command | UndecodableCommand>;
}

/**
 * decodeFrame splits a frame into commands and decodes each. It throws FrameError on
 * malformed JSON or a malformed known command: the whole frame is rejected, so a partially
 * applied batch never happens.
 */
export function decodeFrame(text: string): DecodedFrame {
  const commands: DecodedFrame['commands'] = [];
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    if (line.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new FrameError('malformed JSON');
    }
    const cmd = decodeCommand(parsed);
    if (cmd) commands.push(cmd);
    else commands.push({ id: isObj(parsed) && typeof parsed['id'] === 'number' ? parsed['id'] : 0, method: undefined });
  }
  if (commands.length === 0) throw new FrameError('empty frame');
  return { commands };
}

/**
 * decodeConnectRequest reads the connect request of a unidirectional connection: one JSON
 * `ConnectRequest` object (`token`, `data`, `subs`, `name`, `version`), as the first
 * uni_websocket message, the `cf_connect` URL parameter or a uni_http_stream body carries it.
 * Malformed JSON or a field of the wrong type is a FrameError (the caller disconnects 3501).
 */
export function decodeConnectRequest(text: string): ConnectRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new FrameError('connect request: malformed JSON');
  }
  if (!isObj(parsed)) throw new FrameError('connect request: expected a JSON object');
  return (decodeCommand({ connect: parsed }) as Extract<Command, { method: 'connect' }>).req;
}
