/**
 * An RPC caller over one Centrifugo protocol v2 (JSON) connection: `call(method, data)`
 * resolves with the reply's data or error code, so a scenario can both time each RPC and check
 * that the answer is the right one (a cache that mixed up keys would answer quickly and wrongly).
 *
 * Why not {@link CommandClient}: it reads only a reply's id and error code from its first bytes,
 * which is what a history-polling load needs; here the reply's data is checked, and RPC replies
 * are small enough that parsing each one costs the load generator little.
 *
 * @module
 */
import WebSocket from 'ws';
import { connectionToken } from '../lib/jwt.js';

/** RpcOutcome is how one call ended: `code` 0 with the reply's data, or an error code. */
export interface RpcOutcome {
  /** 0: answered; > 0: the server's error code; < 0: no usable answer ({@link RPC_TIMEOUT}, …). */
  code: number;
  /** The reply's `data` (undefined for an empty reply or an error). */
  data?: unknown;
}

/** RPC_TIMEOUT is the outcome code of a call without an answer in time. */
export const RPC_TIMEOUT = -1;
/** RPC_CLOSED is the outcome code of a call whose connection closed before the answer. */
export const RPC_CLOSED = -2;

/** RPC_BAD_REPLY is the outcome code of an error reply without a numeric code. */
export const RPC_BAD_REPLY = -3;

/** outcomeLabel names an outcome code for tallies: "ok", "timeout", "closed" or the error code. */
export function outcomeLabel(code: number): string {
  if (code === 0) return 'ok';
  if (code === RPC_TIMEOUT) return 'timeout';
  if (code === RPC_CLOSED) return 'closed';
  if (code === RPC_BAD_REPLY) return 'bad reply';
  return String(code);
}

interface Pending {
  resolve: (o: RpcOutcome) => void;
  timer: NodeJS.Timeout;
}

/** Reply is the part of a reply line this client reads. */
interface Reply {
  id?: number;
  error?: { code?: number };
  connect?: unknown;
  rpc?: { data?: unknown };
}

/** RpcClient is one connection calling RPCs, any number in flight, matched to replies by id. */
export class RpcClient {
  private readonly ws: WebSocket;
  private readonly opened: Promise<void>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  /** Starts connecting to `url` (a Bulwark WebSocket URL). */
  constructor(url: string) {
    this.ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 15_000 });
    this.opened = new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('close', (code: number) => reject(new Error(`could not open ${url} (close ${code})`)));
    });
    this.opened.catch(() => undefined);
    this.ws.on('error', () => undefined); // the close that follows settles everything
    this.ws.on('close', () => {
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.resolve({ code: RPC_CLOSED });
      }
    });
    this.ws.on('message', (data: Buffer) => {
      for (const line of data.toString('utf8').split('\n')) if (line !== '') this.onLine(line);
    });
  }

  /** connect opens the socket and connects as `user` with a token signed with `secret`. */
  async connect(user: string, secret: string, timeoutMs = 15_000): Promise<void> {
    await this.opened;
    const id = this.nextId++;
    const reply = await this.request(
      id,
      `{"id":${id},"connect":{"token":${JSON.stringify(connectionToken(user, secret))},"name":"bench"}}`,
      timeoutMs,
    );
    if (reply.code !== 0) throw new Error(`connect refused: ${outcomeLabel(reply.code)}`);
  }

  /** call sends RPC `method` with `data` and resolves with its outcome (never rejects). */
  call(method: string, data: unknown, timeoutMs = 10_000): Promise<RpcOutcome> {
    const id = this.nextId++;
    return this.request(id, JSON.stringify({ id, rpc: { method, data } }), timeoutMs);
  }

  /** close closes the connection; calls in flight resolve as {@link RPC_CLOSED}. */
  close(): void {
    this.ws.terminate();
  }

  private request(id: number, frame: string, timeoutMs: number): Promise<RpcOutcome> {
    if (this.ws.readyState !== WebSocket.OPEN) return Promise.resolve({ code: RPC_CLOSED });
    return new Promise<RpcOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ code: RPC_TIMEOUT });
      }, timeoutMs);
      this.pending.set(id, { resolve, timer });
      this.ws.send(frame);
    });
  }

  private onLine(line: string): void {
    // A server ping is an empty object; the pong is an empty object too.
    if (line === '{}') {
      this.ws.send('{}');
      return;
    }
    let reply: Reply;
    try {
      reply = JSON.parse(line) as Reply;
    } catch {
      return;
    }
    const p = reply.id === undefined ? undefined : this.pending.get(reply.id);
    if (p === undefined || reply.id === undefined) return; // a push, or a reply that came too late
    this.pending.delete(reply.id);
    clearTimeout(p.timer);
    if (reply.error !== undefined) {
      const code = reply.error.code;
      p.resolve({ code: typeof code === 'number' && code > 0 ? code : RPC_BAD_REPLY });
    } else p.resolve({ code: 0, data: reply.rpc?.data });
  }
}
