/**
 * A lean load-generator client for Bulwark's Protobuf format (Centrifugo client protocol v2 over
 * a WebSocket with `?format=protobuf`, as the Unity, Swift, Java and Dart SDKs connect): binary
 * frames of varint-length-delimited `Command`s out and `Reply`s in (packages/server/proto/
 * client.proto). It is {@link LeanClient}'s Protobuf twin — connect, subscribe, publish,
 * ping/pong — built, like it, to hold thousands of sockets and consume tens of thousands of
 * pushes per second on one core.
 *
 * Why `@bufbuild/protobuf`'s {@link BinaryReader}/{@link BinaryWriter} and not the generated
 * schema (`fromBinary(ReplySchema, …)`): decoding a whole `Reply` builds a message object per
 * delivery (Push, Publication, ClientInfo, a `bigint` offset, a tags map), several allocations the
 * JSON client does not pay, so the load generator rather than the server would saturate first
 * and the JSON/Protobuf comparison would measure the generator. The reader walks the wire format
 * (varints, tags, lengths, skipping every field it does not need, unknown ones included) with the
 * library's conformance-tested code and reads only: a reply's id, error, connect result `pong`,
 * and a push's `pub.data` as a byte range, where the bench markers are found in place as in the
 * JSON client ({@link decodeMarkers}). Nothing is decoded into objects on the delivery path. It
 * also keeps the bench free of the server's build layout: the field numbers below are
 * client.proto's, and the unit tests check them against the server's own generated code.
 *
 * @module
 */
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import WebSocket from 'ws';
import { decodeMarkers, type PushHandler } from './lean-client.js';
import { PendingReplies } from './pending-replies.js';

/** Field numbers of packages/server/proto/client.proto that this client writes or reads. */
export const FIELD = {
  command: { id: 1, connect: 4, subscribe: 5, publish: 7 },
  connectRequest: { token: 1, name: 4, version: 5 },
  subscribeRequest: { channel: 1, delta: 12, tf: 13 },
  filterNode: { op: 1, key: 2, cmp: 3, val: 4, vals: 5, nodes: 6 },
  publishRequest: { channel: 1, data: 2 },
  reply: { id: 1, error: 2, push: 4, connect: 5 },
  error: { code: 1, message: 2 },
  push: { pub: 4 },
  publication: { data: 4 },
  connectResult: { pong: 8 },
} as const;

/** ReplyEvents receive what {@link readReplies} finds in a frame. */
export interface ReplyEvents {
  /** A push whose publication data carries the bench markers. */
  onPush?: PushHandler;
  /** A push without the markers (join/leave, other data, or no publication). */
  onOtherPush(): void;
  /** An empty Reply: the server's ping. */
  onPing(): void;
  /** A reply to command `id`: an error, or a result (`pong` is set for a connect result). */
  onReply(id: number, error: { code: number; message: string } | undefined, pong: boolean | undefined): void;
}

/** end of a length-delimited field at the reader's position, checked against its parent's end. */
function fieldEnd(r: BinaryReader, parentEnd: number): number {
  const len = r.uint32();
  const end = r.pos + len;
  if (end > parentEnd) throw new Error(`truncated message: field of ${len} bytes past its parent`);
  return end;
}

/** Skips one field, or throws when it runs past `end`. */
function skip(r: BinaryReader, wireType: WireType, end: number): void {
  r.skip(wireType);
  if (r.pos > end) throw new Error('truncated message: skipped field past its parent');
}

/** Reads an Error message in r[pos…end). */
function readError(r: BinaryReader, end: number): { code: number; message: string } {
  let code = 0;
  let message = '';
  while (r.pos < end) {
    const tag = r.uint32();
    const f = tag >>> 3;
    const wt = (tag & 7) as WireType;
    if (f === FIELD.error.code && wt === WireType.Varint) code = r.uint32();
    else if (f === FIELD.error.message && wt === WireType.LengthDelimited) message = r.string();
    else skip(r, wt, end);
  }
  return { code, message };
}

/** Reads ConnectResult.pong in r[pos…end). */
function readPong(r: BinaryReader, end: number): boolean {
  let pong = false;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag >>> 3 === FIELD.connectResult.pong && (tag & 7) === WireType.Varint) pong = r.bool();
    else skip(r, (tag & 7) as WireType, end);
  }
  return pong;
}

/**
 * The byte range of `Push.pub.data` in r[pos…end), or undefined when the push carries no
 * publication (join, leave, unsubscribe, …). The reader ends at `end`.
 */
function publicationData(r: BinaryReader, end: number): [number, number] | undefined {
  let data: [number, number] | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    const wt = (tag & 7) as WireType;
    if (tag >>> 3 !== FIELD.push.pub || wt !== WireType.LengthDelimited) {
      skip(r, wt, end);
      continue;
    }
    const pubEnd = fieldEnd(r, end);
    while (r.pos < pubEnd) {
      const t = r.uint32();
      const w = (t & 7) as WireType;
      if (t >>> 3 === FIELD.publication.data && w === WireType.LengthDelimited) {
        const dataEnd = fieldEnd(r, pubEnd);
        data = [r.pos, dataEnd];
        r.pos = dataEnd;
      } else {
        skip(r, w, pubEnd);
      }
    }
  }
  return data;
}

/** Reads one Reply in r[pos…end) and reports it. */
function readReply(buf: Buffer, r: BinaryReader, end: number, ev: ReplyEvents): void {
  if (r.pos === end) {
    ev.onPing();
    return;
  }
  let id = 0;
  let error: { code: number; message: string } | undefined;
  let pong: boolean | undefined;
  let push = false;
  let data: [number, number] | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    const f = tag >>> 3;
    const wt = (tag & 7) as WireType;
    if (f === FIELD.reply.id && wt === WireType.Varint) {
      id = r.uint32();
    } else if (wt !== WireType.LengthDelimited) {
      skip(r, wt, end);
    } else if (f === FIELD.reply.push) {
      push = true;
      const pushEnd = fieldEnd(r, end);
      data = publicationData(r, pushEnd) ?? data;
    } else if (f === FIELD.reply.error) {
      error = readError(r, fieldEnd(r, end));
    } else if (f === FIELD.reply.connect) {
      pong = readPong(r, fieldEnd(r, end));
    } else {
      // Any other result (subscribe, publish, …): its content is not needed, only that it came.
      skip(r, wt, end);
    }
  }
  if (push) {
    if (!(ev.onPush && data && decodeMarkers(buf, data[0], data[1], ev.onPush))) ev.onOtherPush();
  } else {
    ev.onReply(id, error, pong);
  }
}

/**
 * readReplies reads every length-delimited Reply of a binary frame and reports each to `ev`.
 * Throws on a malformed frame (a bad varint, a length past the frame, a field past its message).
 */
export function readReplies(buf: Buffer, ev: ReplyEvents): void {
  const r = new BinaryReader(buf);
  while (r.pos < r.len) {
    const end = fieldEnd(r, r.len);
    readReply(buf, r, end, ev);
    r.pos = end;
  }
}

const utf8 = new TextEncoder();

/** A Command with `id` and one method field written by `body`, with its varint length prefix. */
function command(id: number, method: number, body: (w: BinaryWriter) => void): Uint8Array {
  const w = new BinaryWriter().fork();
  w.tag(FIELD.command.id, WireType.Varint).uint32(id);
  w.tag(method, WireType.LengthDelimited).fork();
  body(w);
  return w.join().join().finish();
}

/** connectCommand encodes `Command{id, connect{token, name, version}}`, length-prefixed. */
export function connectCommand(id: number, token: string, name = 'bench', version?: string): Uint8Array {
  return command(id, FIELD.command.connect, (w) => {
    w.tag(FIELD.connectRequest.token, WireType.LengthDelimited).string(token);
    w.tag(FIELD.connectRequest.name, WireType.LengthDelimited).string(name);
    if (version !== undefined) w.tag(FIELD.connectRequest.version, WireType.LengthDelimited).string(version);
  });
}

/** FilterNode is a publication tags filter (client.proto's FilterNode). */
export interface FilterNode {
  op?: string;
  key?: string;
  cmp?: string;
  val?: string;
  vals?: string[];
  nodes?: FilterNode[];
}

/** writeFilterNode writes the fields of one FilterNode (its children nested). */
function writeFilterNode(w: BinaryWriter, f: FilterNode): void {
  const F = FIELD.filterNode;
  if (f.op) w.tag(F.op, WireType.LengthDelimited).string(f.op);
  if (f.key) w.tag(F.key, WireType.LengthDelimited).string(f.key);
  if (f.cmp) w.tag(F.cmp, WireType.LengthDelimited).string(f.cmp);
  if (f.val) w.tag(F.val, WireType.LengthDelimited).string(f.val);
  for (const v of f.vals ?? []) w.tag(F.vals, WireType.LengthDelimited).string(v);
  for (const n of f.nodes ?? []) {
    w.tag(F.nodes, WireType.LengthDelimited).fork();
    writeFilterNode(w, n);
    w.join();
  }
}

/** subscribeCommand encodes `Command{id, subscribe{channel, delta?, tf?}}`, length-prefixed. */
export function subscribeCommand(id: number, channel: string, tf?: FilterNode, delta?: string): Uint8Array {
  return command(id, FIELD.command.subscribe, (w) => {
    w.tag(FIELD.subscribeRequest.channel, WireType.LengthDelimited).string(channel);
    if (delta !== undefined) w.tag(FIELD.subscribeRequest.delta, WireType.LengthDelimited).string(delta);
    if (tf !== undefined) {
      w.tag(FIELD.subscribeRequest.tf, WireType.LengthDelimited).fork();
      writeFilterNode(w, tf);
      w.join();
    }
  });
}

/** publishCommand encodes `Command{id, publish{channel, data}}` (data: UTF-8 JSON), length-prefixed. */
export function publishCommand(id: number, channel: string, dataJson: string): Uint8Array {
  return command(id, FIELD.command.publish, (w) => {
    w.tag(FIELD.publishRequest.channel, WireType.LengthDelimited).string(channel);
    w.tag(FIELD.publishRequest.data, WireType.LengthDelimited).bytes(utf8.encode(dataJson));
  });
}

/** The pong: an empty Command, i.e. a zero length prefix. */
const PONG = new Uint8Array([0]);

/** ProtobufClientOptions configure a {@link ProtobufClient}. */
export interface ProtobufClientOptions {
  /** WebSocket URL of Bulwark's `/connection/websocket`; `format=protobuf` is added to its query. */
  url: string;
  /** Source address to bind (a 127.0.0.0/8 address). */
  localAddress?: string;
  /** Called for every push carrying the bench markers. */
  onPush?: PushHandler;
  /** Called once when the socket closes. */
  onClose?: (code: number, reason: string) => void;
  /** A publication tags filter every subscribe carries as `tf`. */
  tagsFilter?: FilterNode;
  /** The `version` the connect command declares (publication variants choose by it). */
  clientVersion?: string;
}

/** ProtobufClient is one Protobuf-format WebSocket connection of the load generator. */
export class ProtobufClient {
  readonly ws: WebSocket;
  closeCode: number | undefined;
  closeReason = '';
  publishAcks = 0;
  publishErrors = 0;
  lastError: string | undefined;
  otherPushes = 0;
  /** Server pings seen; answered only when the connect result said `pong: true`. */
  pings = 0;
  /** Whether the server asked for pongs (the connect result's `pong`). */
  pong = false;

  private nextId = 1;
  private readonly pending = new PendingReplies<number, boolean | undefined>();
  private readonly opened: Promise<void>;
  private readonly events: ReplyEvents;

  constructor(private readonly opts: ProtobufClientOptions) {
    const url = `${opts.url}${opts.url.includes('?') ? '&' : '?'}format=protobuf`;
    this.ws = new WebSocket(url, {
      perMessageDeflate: false,
      handshakeTimeout: 15_000,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    });
    this.opened = new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('close', (code: number) =>
        reject(new Error(`could not open ${url}: ${this.lastError ?? `closed with ${code}`}`)),
      );
    });
    this.opened.catch(() => undefined);
    this.events = {
      onPush: opts.onPush,
      onOtherPush: () => this.otherPushes++,
      onPing: () => {
        this.pings++;
        if (this.pong) this.ws.send(PONG);
      },
      onReply: (id, error, pong) => this.onReply(id, error, pong),
    };
    this.ws.on('error', (err) => {
      this.lastError = err.message;
    });
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        // A text frame means the server picked JSON: every number would be JSON's.
        this.lastError = `text frame on a Protobuf connection: ${data.toString('utf8', 0, 200)}`;
        this.ws.terminate();
        return;
      }
      try {
        readReplies(data, this.events);
      } catch (err) {
        this.lastError = `malformed frame: ${(err as Error).message}`;
      }
    });
    this.ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.pending.rejectAll(new Error(`connection closed: ${code} ${this.closeReason}`.trim()));
      this.opts.onClose?.(code, this.closeReason);
    });
  }

  /** open resolves once the WebSocket handshake completed. */
  open(): Promise<void> {
    return this.opened;
  }

  /** connect sends the connect command with `token`; resolves once accepted (and learns `pong`). */
  async connect(token: string, timeoutMs = 15_000): Promise<{ pong: boolean }> {
    const id = this.nextId++;
    const reply = this.request(id, timeoutMs);
    this.ws.send(connectCommand(id, token, 'bench', this.opts.clientVersion));
    this.pong = (await reply) === true;
    return { pong: this.pong };
  }

  /** subscribe subscribes to `channel` (the token argument is for the raw protocol; unused). */
  async subscribe(channel: string, _token?: string, timeoutMs = 15_000): Promise<void> {
    const id = this.nextId++;
    const reply = this.request(id, timeoutMs);
    this.ws.send(subscribeCommand(id, channel, this.opts.tagsFilter));
    await reply;
  }

  /** publish sends one publication, fire-and-forget; replies are only counted. */
  publish(channel: string, dataJson: string): void {
    this.ws.send(publishCommand(this.nextId++, channel, dataJson));
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
  }

  terminate(): void {
    this.ws.terminate();
  }

  private request(id: number, timeoutMs: number): Promise<boolean | undefined> {
    return this.pending.wait(id, timeoutMs);
  }

  private onReply(id: number, error: { code: number; message: string } | undefined, pong: boolean | undefined): void {
    if (this.pending.settle(id, error, pong)) return;
    if (id === 0) return;
    // Not a pending request: the reply to a fire-and-forget publish.
    if (error) {
      this.publishErrors++;
      this.lastError = `publish error ${error.code}: ${error.message}`;
    } else {
      this.publishAcks++;
    }
  }
}
