/**
 * RawWebSocket: a WebSocket client connection on a bare `net.Socket` for the fan-out load
 * generator's raw reader — a fixed HTTP/1.1 upgrade request written by hand (the `101` status
 * and `Sec-WebSocket-Accept` checked), then {@link FrameReader} on every TCP chunk and masked
 * frames out ({@link encodeClientFrame}). Pings are answered with pongs and a server close
 * with a close, here, so the protocol clients above see only messages.
 *
 * Every socket of the process reads into one shared buffer (net's `onread`), straight into the
 * frame parser: no Buffer allocated per read and none of the stream machinery behind a `data`
 * event. Safe because a read is parsed synchronously before the next one, and the parser keeps
 * no reference to a chunk.
 *
 * Why not `ws`: see ws-frame-reader.ts — its per-message overhead is what issue 18 removes.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { acceptFor, encodeClientFrame, FrameReader, OP } from './ws-frame-reader.js';

/** RawWebSocketOptions configure a {@link RawWebSocket}. */
export interface RawWebSocketOptions {
  /** ws://host:port/path?query (no TLS: the bench runs on loopback). */
  url: string;
  /** Source address to bind (a 127.0.0.0/8 address). */
  localAddress?: string;
  /** Longest wait for the TCP connect and the upgrade response. */
  handshakeTimeoutMs?: number;
  /** A complete message in buf[start…end) (in place: see FrameEvents.onMessage). */
  onMessage(binary: boolean, buf: Buffer, start: number, end: number): void;
  /** Called once when the connection is gone, with the close code (1006: no close frame) and reason. */
  onClose(code: number, reason: string): void;
}

/** The memory every socket of this process reads into (see the module comment). */
const readBuffer = Buffer.allocUnsafe(256 * 1024);

/** The longest upgrade response accepted (Bulwark's and `ws`'s are ~150 bytes). */
const MAX_RESPONSE_HEAD = 8192;

/** RawWebSocket is one client connection; {@link RawWebSocket.opened} settles with the upgrade. */
export class RawWebSocket {
  readonly opened: Promise<void>;
  /** True between the 101 response and the close. */
  isOpen = false;
  /** The latest error (socket error, protocol violation, refused upgrade). */
  lastError: string | undefined;
  /** Server pings answered. */
  pings = 0;

  private readonly socket: net.Socket;
  private readonly reader: FrameReader;
  /** The upgrade response so far; undefined once it has been read. */
  private head: Buffer | undefined = Buffer.alloc(0);
  private onHead: ((buf: Buffer, n: number) => void) | undefined;
  private closed = false;
  private closeCode = 1006;
  private closeReason = '';

  constructor(private readonly opts: RawWebSocketOptions) {
    const url = new URL(opts.url);
    if (url.protocol !== 'ws:') throw new Error(`raw reader: only ws:// URLs, got ${opts.url}`);
    const host = url.hostname;
    const port = Number(url.port || 80);
    const key = randomBytes(16).toString('base64');
    this.reader = new FrameReader({
      onMessage: opts.onMessage,
      onPing: (payload) => {
        this.pings++;
        this.sendFrame(OP.pong, payload);
      },
      onClose: (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason;
        // Echo the close (RFC 6455 §5.5.1), then let the server end the TCP connection.
        const echo = Buffer.alloc(code === 1005 ? 0 : 2);
        if (code !== 1005) echo.writeUInt16BE(code, 0);
        this.sendFrame(OP.close, echo);
        this.socket.end();
      },
      onError: (message) => {
        this.lastError = `protocol error: ${message}`;
        this.closeCode = 1002;
        this.socket.destroy();
      },
    });
    this.socket = net.connect({
      host,
      port,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      onread: {
        buffer: readBuffer,
        callback: (n: number, buf: Uint8Array) => {
          if (this.head === undefined) this.reader.push(buf as Buffer, 0, n);
          else this.onHead?.(buf as Buffer, n);
          return true;
        },
      },
    });
    this.socket.setNoDelay(true);
    this.opened = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.lastError = `handshake timeout after ${opts.handshakeTimeoutMs ?? 15_000} ms`;
        this.socket.destroy();
      }, opts.handshakeTimeoutMs ?? 15_000);
      this.socket.once('connect', () => {
        this.socket.write(
          `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\n` +
            `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      this.onHead = (buf: Buffer, n: number): void => {
        const head = Buffer.concat([this.head as Buffer, buf.subarray(0, n)]);
        const at = head.indexOf('\r\n\r\n');
        if (at === -1) {
          this.head = head;
          if (head.length > MAX_RESPONSE_HEAD) this.refuse('upgrade response head too long');
          return;
        }
        clearTimeout(timer);
        const problem = checkUpgrade(head.toString('latin1', 0, at), acceptFor(key));
        if (problem !== undefined) {
          this.refuse(problem);
          return;
        }
        this.head = undefined;
        this.onHead = undefined;
        this.isOpen = true;
        resolve();
        // Frames that came in the same read as the response (`head` is a copy: safe to keep).
        if (at + 4 < head.length) this.reader.push(head, at + 4, head.length);
      };
      this.socket.once('close', () => {
        clearTimeout(timer);
        const wasOpen = this.isOpen;
        this.isOpen = false;
        this.closed = true;
        if (!wasOpen) reject(new Error(`could not open ${opts.url}: ${this.lastError ?? 'connection closed'}`));
        opts.onClose(this.closeCode, this.closeReason);
      });
    });
    this.opened.catch(() => undefined);
    this.socket.on('error', (err) => {
      this.lastError = err.message;
    });
  }

  /** send writes one text (string) or binary (bytes) message. */
  send(data: string | Uint8Array): void {
    if (typeof data === 'string') this.sendFrame(OP.text, Buffer.from(data));
    else this.sendFrame(OP.binary, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  /** Bytes queued to the socket but not yet written. */
  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  /** close starts a normal close (1000); the server answers and ends the connection. */
  close(): void {
    if (!this.isOpen) return;
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(1000, 0);
    this.sendFrame(OP.close, payload);
    this.isOpen = false;
  }

  /** terminate destroys the socket at once (fast teardown of thousands of connections). */
  terminate(): void {
    this.socket.destroy();
  }

  private sendFrame(opcode: number, payload: Buffer): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(encodeClientFrame(opcode, payload));
  }

  /** refuse fails the handshake; the message is worded as `ws` words it, so error tallies match. */
  private refuse(problem: string): void {
    this.lastError = problem;
    this.socket.destroy();
  }
}

/**
 * checkUpgrade returns why the response head (status line and headers, without the blank line)
 * is not a valid upgrade for `expectedAccept`, or undefined when it is.
 */
export function checkUpgrade(head: string, expectedAccept: string): string | undefined {
  const lines = head.split('\r\n');
  const status = /^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '');
  if (!status) return `malformed upgrade response: ${(lines[0] ?? '').slice(0, 80)}`;
  if (status[1] !== '101') return `Unexpected server response: ${status[1]}`;
  let accept: string | undefined;
  let upgrade: string | undefined;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon === -1) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'sec-websocket-accept') accept = value;
    else if (name === 'upgrade') upgrade = value.toLowerCase();
    else if (name === 'sec-websocket-extensions') return `unexpected extension negotiated: ${value}`;
  }
  if (upgrade !== 'websocket') return `upgrade response without "Upgrade: websocket"`;
  if (accept !== expectedAccept) return `invalid Sec-WebSocket-Accept: ${accept ?? '(none)'}`;
  return undefined;
}
