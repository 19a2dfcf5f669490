/**
 * RawSessionClient: the fan-out subscriber of the raw reader (`--reader raw`, issue 18) — the
 * same {@link SessionClient} as {@link LeanClient} and {@link ProtobufClient}, for the same four
 * wire formats (Centrifugo JSON and Protobuf, the raw-ws reference server's messages, Engine.IO /
 * Socket.IO), but on a {@link RawWebSocket} instead of `ws`: each message arrives as a byte range
 * of its TCP chunk and a bench push is decoded there, without a Buffer, string or object per
 * delivery. The rare other messages (replies, pings, pushes without markers) take the slow path
 * through the same decoders the `ws` clients use, so both readers agree on everything.
 *
 * @module
 */
import {
  decodeBenchPush,
  decodeSocketIoBenchPush,
  parseSocketIoPacket,
  type PushHandler,
  type SocketIoPacket,
} from './lean-client.js';
import { PendingReplies, type ReplyError } from './pending-replies.js';
import { connectCommand, publishCommand, readReplies, subscribeCommand, type ReplyEvents } from './protobuf-client.js';
import { scanProtobufFrame } from './protobuf-push-scan.js';
import { RawWebSocket } from './raw-ws-socket.js';
import type { WireProtocol } from '../harness/wire.js';

/** RawSessionClientOptions configure a {@link RawSessionClient}. */
export interface RawSessionClientOptions {
  /** WebSocket URL of the server (Protobuf: `format=protobuf` is added to the query). */
  url: string;
  protocol: WireProtocol;
  /** Centrifugo only: JSON text frames or Protobuf binary frames. */
  format?: 'json' | 'protobuf';
  localAddress?: string;
  onPush?: PushHandler;
  onClose?: (code: number, reason: string) => void;
  /** A publication tags filter (FilterNode) every subscribe carries (Centrifugo only). */
  tagsFilter?: object;
  /** The `version` the connect command declares (Centrifugo only). */
  clientVersion?: string;
}

const PONG_JSON = '{}';
const PONG_PROTOBUF = new Uint8Array([0]);

/** RawSessionClient is one load-generator connection over the raw reader. */
export class RawSessionClient {
  closeCode: number | undefined;
  closeReason = '';
  publishAcks = 0;
  publishErrors = 0;
  /** Pushes without the bench markers (join/leave, other data). */
  otherPushes = 0;
  /** Server pings answered (WebSocket and protocol-level). */
  pings = 0;
  /** Whether a Protobuf server asked for pongs (the connect result's `pong`). */
  private pong = false;

  private readonly ws: RawWebSocket;
  private readonly protobuf: boolean;
  private readonly opened: Promise<void>;
  private readonly pending = new PendingReplies<number | string, unknown>();
  private readonly replyEvents: ReplyEvents;
  private nextId = 1;
  private socketIoConnected: (() => void) | undefined;
  private failOpen: ((err: Error) => void) | undefined;

  constructor(private readonly opts: RawSessionClientOptions) {
    this.protobuf = opts.protocol === 'centrifugo' && opts.format === 'protobuf';
    const url = this.protobuf ? `${opts.url}${opts.url.includes('?') ? '&' : '?'}format=protobuf` : opts.url;
    this.ws = new RawWebSocket({
      url,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      onMessage: (binary, buf, start, end) => this.onMessage(binary, buf, start, end),
      onClose: (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason;
        this.pending.rejectAll(new Error(`connection closed: ${code} ${reason}`.trim()));
        this.failOpen?.(new Error(`closed with ${code} before the Socket.IO connect: ${this.ws.lastError ?? ''}`));
        opts.onClose?.(code, reason);
      },
    });
    const connected =
      opts.protocol === 'socketio' ? new Promise<void>((resolve) => (this.socketIoConnected = resolve)) : undefined;
    // Socket.IO: open also covers the namespace connect, which a close may cut short.
    this.opened = connected
      ? Promise.race([this.ws.opened.then(() => connected), new Promise<void>((_, reject) => (this.failOpen = reject))])
      : this.ws.opened;
    this.opened.catch(() => undefined);
    this.replyEvents = {
      onPush: opts.onPush,
      onOtherPush: () => this.otherPushes++,
      onPing: () => {
        this.pings++;
        if (this.pong) this.ws.send(PONG_PROTOBUF);
      },
      onReply: (id, error, pong) => this.onReply(id, error, pong),
    };
  }

  /** The latest error (socket, protocol, reply). */
  get lastError(): string | undefined {
    return this.ws.lastError;
  }

  open(): Promise<void> {
    return this.opened;
  }

  get isOpen(): boolean {
    return this.ws.isOpen;
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** connect sends the Centrifugo connect command; a no-op for the raw and Socket.IO protocols. */
  async connect(token: string, timeoutMs = 15_000): Promise<unknown> {
    if (this.opts.protocol !== 'centrifugo') return {};
    const id = this.nextId++;
    const reply = this.pending.wait(id, timeoutMs);
    if (this.protobuf) {
      this.ws.send(connectCommand(id, token, 'bench', this.opts.clientVersion));
      this.pong = (await reply) === true;
      return { pong: this.pong };
    }
    const v = this.opts.clientVersion === undefined ? '' : `,"version":${JSON.stringify(this.opts.clientVersion)}`;
    this.ws.send(`{"id":${id},"connect":{"token":${JSON.stringify(token)},"name":"bench"${v}}}`);
    return reply;
  }

  /** subscribe subscribes and resolves on the server's confirmation (see LeanClient.subscribe). */
  async subscribe(channel: string, token?: string, timeoutMs = 15_000): Promise<void> {
    const ch = JSON.stringify(channel);
    const tok = token === undefined ? '' : `,${JSON.stringify(token)}`;
    if (this.opts.protocol === 'socketio') {
      const id = this.nextId++;
      const reply = this.pending.wait(id, timeoutMs);
      this.ws.send(`42${id}["sub",${ch}${tok}]`);
      await reply;
    } else if (this.opts.protocol === 'raw') {
      const reply = this.pending.wait(`sub:${channel}`, timeoutMs);
      this.ws.send(token === undefined ? `{"sub":${ch}}` : `{"sub":${ch},"token":${JSON.stringify(token)}}`);
      await reply;
    } else {
      const id = this.nextId++;
      const reply = this.pending.wait(id, timeoutMs);
      if (this.protobuf) this.ws.send(subscribeCommand(id, channel, this.opts.tagsFilter));
      else {
        const tf = this.opts.tagsFilter === undefined ? '' : `,"tf":${JSON.stringify(this.opts.tagsFilter)}`;
        this.ws.send(`{"id":${id},"subscribe":{"channel":${ch}${tf}}}`);
      }
      await reply;
    }
  }

  /** publish sends one publication, fire-and-forget (see LeanClient.publish). */
  publish(channel: string, dataJson: string): void {
    const ch = JSON.stringify(channel);
    if (this.opts.protocol === 'raw') this.ws.send(`{"pub":${ch},"data":${dataJson}}`);
    else if (this.opts.protocol === 'socketio') this.ws.send(`42["pub",${ch},${dataJson}]`);
    else if (this.protobuf) this.ws.send(publishCommand(this.nextId++, channel, dataJson));
    else this.ws.send(`{"id":${this.nextId++},"publish":{"channel":${ch},"data":${dataJson}}}`);
  }

  close(): void {
    this.ws.close();
  }

  terminate(): void {
    this.ws.terminate();
  }

  private onMessage(binary: boolean, buf: Buffer, start: number, end: number): void {
    if (this.protobuf) {
      if (!binary) {
        this.ws.lastError = `text frame on a Protobuf connection: ${buf.toString('utf8', start, start + 200)}`;
        this.ws.terminate();
        return;
      }
      try {
        scanProtobufFrame(buf, start, end, this.opts.onPush, (s, e) =>
          readReplies(buf.subarray(s, e), this.replyEvents),
        );
      } catch (err) {
        this.ws.lastError = `malformed frame: ${(err as Error).message}`;
      }
    } else if (this.opts.protocol === 'socketio') {
      this.onEngineIoPacket(buf, start, end);
    } else {
      // Centrifugo JSON may put several `\n`-separated messages in one frame; the raw server one.
      let from = start;
      while (from < end) {
        let to = buf.indexOf(10, from);
        if (to === -1 || to > end) to = end;
        if (to > from) this.onLine(buf, from, to);
        from = to + 1;
      }
    }
  }

  private onLine(buf: Buffer, start: number, end: number): void {
    // Hot path: a bench push, decoded in place.
    if (this.opts.onPush && decodeBenchPush(buf, start, end, this.opts.onPush)) return;
    if (end - start === 2 && buf[start] === 0x7b && buf[start + 1] === 0x7d) {
      this.pings++;
      if (this.opts.protocol === 'centrifugo') this.ws.send(PONG_JSON);
      return;
    }
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(buf.toString('utf8', start, end)) as Record<string, unknown>;
    } catch {
      this.ws.lastError = `unparsable message: ${buf.toString('utf8', start, Math.min(end, start + 200))}`;
      return;
    }
    if (msg.push !== undefined) {
      this.otherPushes++;
    } else if (this.opts.protocol === 'raw') {
      if (typeof msg.sub === 'string') this.pending.settle(`sub:${msg.sub}`, undefined, msg);
    } else if (typeof msg.id === 'number' && msg.id !== 0) {
      this.onReply(msg.id, msg.error as ReplyError | undefined, undefined);
    }
  }

  private onReply(id: number, error: ReplyError | undefined, pong: boolean | undefined): void {
    if (this.pending.settle(id, error, pong)) return;
    if (id === 0) return;
    // Not a pending request: the reply to a fire-and-forget publish.
    if (error) {
      this.publishErrors++;
      this.ws.lastError = `publish error ${error.code}: ${error.message}`;
    } else {
      this.publishAcks++;
    }
  }

  /** One Engine.IO packet (one per WebSocket message); see LeanClient's Socket.IO handling. */
  private onEngineIoPacket(buf: Buffer, start: number, end: number): void {
    if (this.opts.onPush && decodeSocketIoBenchPush(buf, this.opts.onPush, start, end)) return;
    const kind = buf[start];
    if (kind === 0x32 && end - start === 1) {
      this.pings++;
      this.ws.send('3');
      return;
    }
    if (kind === 0x30) {
      this.ws.send('40');
      return;
    }
    if (kind !== 0x34) return;
    let packet: SocketIoPacket;
    try {
      packet = parseSocketIoPacket(buf.toString('utf8', start + 1, end));
    } catch {
      this.ws.lastError = `unparsable message: ${buf.toString('utf8', start, Math.min(end, start + 200))}`;
      return;
    }
    if (packet.type === 0) this.socketIoConnected?.();
    else if (packet.type === 3 && packet.ackId !== undefined) {
      const arg = Array.isArray(packet.data) ? (packet.data[0] as unknown) : undefined;
      const error = typeof arg === 'object' && arg !== null ? (arg as { error?: unknown }).error : undefined;
      this.pending.settle(packet.ackId, error === undefined ? undefined : { code: 0, message: String(error) }, arg);
    } else if (packet.type === 4) {
      this.ws.lastError = `Socket.IO connect error: ${JSON.stringify(packet.data)}`;
      this.ws.close();
    } else if (packet.type === 2) {
      this.otherPushes++;
    }
  }
}
