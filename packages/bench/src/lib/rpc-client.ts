/**
 * One player's connection making RPC calls (`{"id":N,"rpc":{"method":…,"data":…}}`) and
 * learning each call's outcome: ok, the error code of the reply, a client-side timeout, or the
 * connection closing under it. Replies are matched by id from their first bytes
 * ({@link parseReplyHead}), so a reply costs the load generator no JSON parse.
 *
 * Why not {@link CommandClient}: a retrying player needs to know when its connection closes
 * (and with which code: 3013 is the rate limiter's disconnect) to fail the calls in flight and
 * reconnect, and each call needs its own completion callback.
 *
 * @module
 */
import WebSocket from 'ws';
import { parseReplyHead, type ReplyHead } from './command-client.js';
import { connectionToken } from './jwt.js';

/**
 * RpcOutcome is how one call ended: 0 for a successful reply, the error code of an error reply
 * (e.g. 100 temporary, 108 disabled, 111 too many requests), `timeout` when no reply came in
 * time, `disconnect` when the connection closed before the reply.
 */
export type RpcOutcome = number | 'timeout' | 'disconnect';

/** RpcDone receives a call's outcome and its latency (ms from send to outcome). */
export type RpcDone = (outcome: RpcOutcome, latencyMs: number) => void;

interface Pending {
  sentAt: number;
  done: RpcDone;
}

/** RpcClient is one WebSocket connection making RPC calls. */
export class RpcClient {
  /** Close code once closed, else undefined. */
  closeCode: number | undefined;
  /** The latest socket error. */
  lastError: string | undefined;

  readonly #ws: WebSocket;
  readonly #opened: Promise<void>;
  readonly #pending = new Map<number, Pending>();
  #nextId = 2;
  #onConnected: ((head: ReplyHead) => void) | undefined;

  /** Starts connecting to `url`; `onClose` is called once when the socket closes, after every pending call failed. */
  constructor(url: string, onClose: (code: number) => void = () => undefined) {
    this.#ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: 15_000 });
    this.#opened = new Promise<void>((resolve, reject) => {
      this.#ws.once('open', () => resolve());
      this.#ws.once('close', (code: number) => reject(new Error(`could not open ${url}: ${this.lastError ?? code}`)));
    });
    this.#opened.catch(() => undefined);
    this.#ws.on('error', (err) => {
      this.lastError = err.message;
    });
    this.#ws.on('close', (code: number) => {
      this.closeCode = code;
      const now = performance.now();
      const pending = [...this.#pending.values()];
      this.#pending.clear();
      for (const p of pending) p.done('disconnect', now - p.sentAt);
      onClose(code);
    });
    this.#ws.on('message', (data: Buffer) => {
      let start = 0;
      while (start < data.length) {
        let end = data.indexOf(10, start);
        if (end === -1) end = data.length;
        if (end > start) this.#onLine(data, start, end);
        start = end + 1;
      }
    });
  }

  /** connect waits for the socket and sends a connect command with a JWT for `user` signed with `secret`. */
  async connect(user: string, secret: string, timeoutMs = 15_000): Promise<void> {
    await this.#opened;
    const head = await new Promise<ReplyHead>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connect reply in ${timeoutMs} ms`)), timeoutMs);
      this.#onConnected = (h) => {
        clearTimeout(timer);
        resolve(h);
      };
      this.#ws.send(`{"id":1,"connect":{"token":${JSON.stringify(connectionToken(user, secret))},"name":"bench"}}`);
    });
    this.#onConnected = undefined;
    if (head.errorCode !== 0) throw new Error(`connect refused with error ${head.errorCode}`);
  }

  /** isOpen reports whether calls can be sent. */
  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  /** pending is the number of calls waiting for their outcome. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * call sends RPC `method` with `dataJson` (encoded JSON) and reports its outcome to `done`
   * exactly once. Returns false, without calling `done`, when the connection is not open.
   */
  call(method: string, dataJson: string, done: RpcDone): boolean {
    if (!this.isOpen) return false;
    const id = this.#nextId++;
    this.#pending.set(id, { sentAt: performance.now(), done });
    this.#ws.send(`{"id":${id},"rpc":{"method":${JSON.stringify(method)},"data":${dataJson}}}`);
    return true;
  }

  /** expire fails with `timeout` every call sent more than `timeoutMs` before `now`. */
  expire(now: number, timeoutMs: number): void {
    for (const [id, p] of this.#pending) {
      // Map order is send order: the first call young enough ends the scan.
      if (now - p.sentAt < timeoutMs) break;
      this.#pending.delete(id);
      p.done('timeout', now - p.sentAt);
    }
  }

  /** terminate destroys the socket at once (pending calls fail with `disconnect`). */
  terminate(): void {
    this.#ws.terminate();
  }

  #onLine(buf: Buffer, start: number, end: number): void {
    // A server ping is an empty object; the pong is an empty object too.
    if (end - start === 2 && buf[start] === 0x7b && buf[start + 1] === 0x7d) {
      this.#ws.send('{}');
      return;
    }
    const head = parseReplyHead(buf, start, end);
    if (!head) return;
    if (head.id === 1 && this.#onConnected) {
      this.#onConnected(head);
      return;
    }
    const p = this.#pending.get(head.id);
    if (!p) return; // timed out already
    this.#pending.delete(head.id);
    p.done(head.errorCode, performance.now() - p.sentAt);
  }
}
