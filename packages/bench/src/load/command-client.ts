/**
 * A pipelining command client for request/reply load (history polls, presence, RPC): it sends
 * numbered Centrifugo commands without waiting and reports each reply's id and error code.
 *
 * Why not {@link LeanClient}: that client is built for pushes and parses every other line with
 * JSON.parse, which for a 30 KB history page costs the load generator ~40 µs — as much as the
 * server spends serving it — so the generator, not the server, would set the measured capacity.
 * Here a reply is read from its first bytes only (`{"id":N,` and, for an error, its code).
 *
 * @module
 */
import WebSocket from 'ws';
import { connectionToken } from '../harness/jwt.js';

/** ReplyHead is a reply's command id and error code (0 for a successful reply). */
export interface ReplyHead {
  id: number;
  errorCode: number;
}

const ID_PREFIX = Buffer.from('{"id":');
const ERROR_INFIX = Buffer.from(',"error":{"code":');

/** Reads the unsigned integer at buf[pos…end) (at most 15 digits); -1 without a digit. */
function digitsAt(buf: Buffer, pos: number, end: number): number {
  const text = buf.toString('latin1', pos, Math.min(end, pos + 15));
  return /^\d/.test(text) ? parseInt(text, 10) : -1;
}

/**
 * parseReplyHead reads the id and error code of the reply in buf[start…end) from its prefix,
 * as Bulwark encodes replies: `{"id":N,"<method>":…}` or `{"id":N,"error":{"code":C,…}}`.
 * Returns undefined for anything else (pushes, pings, other key orders).
 */
export function parseReplyHead(buf: Buffer, start: number, end: number): ReplyHead | undefined {
  if (
    end - start < ID_PREFIX.length + 2 ||
    buf.compare(ID_PREFIX, 0, ID_PREFIX.length, start, start + ID_PREFIX.length) !== 0
  ) {
    return undefined;
  }
  let pos = start + ID_PREFIX.length;
  const id = digitsAt(buf, pos, end);
  if (id <= 0) return undefined;
  while (pos < end && (buf[pos] as number) >= 48 && (buf[pos] as number) <= 57) pos++;
  if (
    pos + ERROR_INFIX.length > end ||
    buf.compare(ERROR_INFIX, 0, ERROR_INFIX.length, pos, pos + ERROR_INFIX.length) !== 0
  ) {
    return { id, errorCode: 0 };
  }
  const errorCode = digitsAt(buf, pos + ERROR_INFIX.length, end);
  return errorCode < 0 ? undefined : { id, errorCode };
}

/** CommandClient is one connection sending numbered commands and reporting their replies. */
export class CommandClient {
  /** Close code once closed, else undefined. */
  closeCode: number | undefined;
  /** The latest socket error. */
  lastError: string | undefined;
  /** Bytes of WebSocket message payloads received (replies, pushes and pings alike). */
  bytesReceived = 0;

  private readonly ws: WebSocket;
  private readonly opened: Promise<void>;
  /** The next command id; 1 is the connect command. */
  private nextId = 2;
  private onConnected: ((head: ReplyHead) => void) | undefined;

  /**
   * Starts connecting to `url`; `onReply` gets every reply after the connect reply, with the
   * reply's line (buf[start…end), valid only during the call) for callers that read its body.
   */
  constructor(
    url: string,
    private readonly onReply: (head: ReplyHead, buf: Buffer, start: number, end: number) => void,
  ) {
    this.ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: 15_000 });
    this.opened = new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('close', (code: number) => reject(new Error(`could not open ${url}: ${this.lastError ?? code}`)));
    });
    this.opened.catch(() => undefined);
    this.ws.on('error', (err) => {
      this.lastError = err.message;
    });
    this.ws.on('close', (code) => {
      this.closeCode = code;
    });
    this.ws.on('message', (data: Buffer) => {
      this.bytesReceived += data.length;
      let start = 0;
      while (start < data.length) {
        let end = data.indexOf(10, start);
        if (end === -1) end = data.length;
        if (end > start) this.onLine(data, start, end);
        start = end + 1;
      }
    });
  }

  /** connect opens the socket and sends a connect command with a JWT for `user` signed with `secret`. */
  async connect(user: string, secret: string, timeoutMs = 15_000): Promise<void> {
    await this.opened;
    const head = await new Promise<ReplyHead>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connect reply in ${timeoutMs} ms`)), timeoutMs);
      this.onConnected = (h) => {
        clearTimeout(timer);
        resolve(h);
      };
      this.ws.send(`{"id":1,"connect":{"token":${JSON.stringify(connectionToken(user, secret))},"name":"bench"}}`);
    });
    this.onConnected = undefined;
    if (head.errorCode !== 0) throw new Error(`connect refused with error ${head.errorCode}`);
  }

  /** isOpen reports whether commands can be sent. */
  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** peekId is the id the next command will get. */
  get peekId(): number {
    return this.nextId;
  }

  /**
   * send sends `count` commands `{"id":N,<body>}` with consecutive ids in one frame (newline
   * separated, as the protocol allows) and returns the first id; nothing is sent when closed.
   * `body` is the command without its id, e.g. `"history":{"channel":"c","limit":10}`.
   */
  send(body: string, count = 1): number {
    const first = this.nextId;
    this.nextId += count;
    if (!this.isOpen) return first;
    let frame = `{"id":${first},${body}}`;
    for (let id = first + 1; id < first + count; id++) frame += `\n{"id":${id},${body}}`;
    this.ws.send(frame);
    return first;
  }

  /** terminate destroys the socket at once. */
  terminate(): void {
    this.ws.terminate();
  }

  private onLine(buf: Buffer, start: number, end: number): void {
    // A server ping is an empty object; the pong is an empty object too.
    if (end - start === 2 && buf[start] === 0x7b && buf[start + 1] === 0x7d) {
      this.ws.send('{}');
      return;
    }
    // Anything else that is not a reply by its prefix (a push) is not this client's business.
    const head = parseReplyHead(buf, start, end);
    if (!head) return;
    if (head.id === 1 && this.onConnected) this.onConnected(head);
    else this.onReply(head, buf, start, end);
  }
}
