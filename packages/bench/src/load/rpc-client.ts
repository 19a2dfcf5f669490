/**
 * One player's connection making RPC calls over the Centrifugo protocol v2 (JSON)
 * (`{"id":N,"rpc":{"method":…,"data":…}}`), any number in flight, matched to replies by id,
 * each ending with one {@link RpcOutcome}: ok, the error code of the reply, a timeout, or the
 * connection closing under it (with its close code for the caller: 3013 is the rate limiter's
 * disconnect, after which a player reconnects).
 *
 * Two ways to call, for two kinds of load:
 * - `call(method, data, timeoutMs)` resolves with the outcome and the reply's data, so a
 *   scenario can both time each RPC and check that the answer is the right one (a cache that
 *   mixed up keys would answer quickly and wrongly); each call has its own timer;
 * - `send(method, dataJson, done)` reports the outcome and latency to a callback, for many
 *   calls on many connections: the reply is read from its first bytes only
 *   ({@link parseReplyHead}, no JSON.parse), and timeouts are found by one sweep over every
 *   connection (`expire`) rather than a timer per call.
 *
 * Why not {@link CommandClient}: a retrying player needs to know when its connection closes
 * (and with which code) to fail the calls in flight and reconnect, each call needs its own
 * completion, and some callers need the reply's data.
 *
 * @module
 */
import WebSocket from 'ws';
import { parseReplyHead } from './command-client.js';
import { connectionToken } from '../harness/jwt.js';

/** RPC_TIMEOUT is the outcome of a call without an answer in time. */
export const RPC_TIMEOUT = 'timeout';
/** RPC_CLOSED is the outcome of a call whose connection closed before the answer (or was not open). */
export const RPC_CLOSED = 'disconnect';
/** RPC_BAD_REPLY is the outcome of an error reply without a positive numeric code. */
export const RPC_BAD_REPLY = 'bad reply';

/**
 * RpcOutcome is how one call ended: 0 for a successful reply, the error code of an error reply
 * (e.g. 100 temporary, 108 disabled, 111 too many requests), or no usable answer:
 * {@link RPC_TIMEOUT}, {@link RPC_CLOSED}, {@link RPC_BAD_REPLY}.
 */
export type RpcOutcome = number | typeof RPC_TIMEOUT | typeof RPC_CLOSED | typeof RPC_BAD_REPLY;

/** outcomeLabel names an outcome for tallies: "ok", the error code, or the kind ("timeout", …). */
export function outcomeLabel(outcome: RpcOutcome): string {
  return outcome === 0 ? 'ok' : String(outcome);
}

/** RpcResult is what {@link RpcClient.call} resolves with. */
export interface RpcResult {
  outcome: RpcOutcome;
  /** The reply's `data` (absent for an empty reply or a failure). */
  data?: unknown;
}

/**
 * RpcDone receives a call's outcome, its latency (ms from send to outcome) and, when the call
 * asked for it, the reply's data.
 */
export type RpcDone = (outcome: RpcOutcome, latencyMs: number, data?: unknown) => void;

interface Pending {
  sentAt: number;
  done: RpcDone;
  /** Parse the reply's data for `done`. */
  withData: boolean;
  /** The call's own timeout timer (calls made with `call`). */
  timer?: NodeJS.Timeout;
}

/** Reply is the part of a reply line read when its head is not enough. */
interface Reply {
  id?: unknown;
  error?: { code?: unknown };
  rpc?: { data?: unknown };
}

const ID_PREFIX = Buffer.from('{"id":');
const ERROR_KEY = Buffer.from(',"error":');
/** The id of the connect command; calls start after it. */
const CONNECT_ID = 1;

/** RpcClient is one WebSocket connection making RPC calls. */
export class RpcClient {
  /** Close code once closed, else undefined. */
  closeCode: number | undefined;
  /** The latest socket error. */
  lastError: string | undefined;

  readonly #ws: WebSocket;
  readonly #opened: Promise<void>;
  readonly #pending = new Map<number, Pending>();
  #nextId = CONNECT_ID + 1;

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
      for (const p of pending) {
        clearTimeout(p.timer);
        p.done(RPC_CLOSED, now - p.sentAt);
      }
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
    const frame = `{"id":${CONNECT_ID},"connect":{"token":${JSON.stringify(connectionToken(user, secret))},"name":"bench"}}`;
    const { outcome } = await this.#request(CONNECT_ID, frame, timeoutMs, false);
    if (outcome !== 0) throw new Error(`connect refused: ${outcomeLabel(outcome)}`);
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
   * call sends RPC `method` with `data` and resolves with its outcome and the reply's data
   * (never rejects): {@link RPC_TIMEOUT} after `timeoutMs`, {@link RPC_CLOSED} when the
   * connection is not open or closes first.
   */
  call(method: string, data: unknown, timeoutMs = 10_000): Promise<RpcResult> {
    const id = this.#nextId++;
    return this.#request(id, rpcFrame(id, method, JSON.stringify(data)), timeoutMs, true);
  }

  /**
   * send sends RPC `method` with `dataJson` (encoded JSON) and reports its outcome to `done`
   * exactly once; the reply's data only when `withData`. No timer: {@link expire} times calls
   * out. Returns false, without calling `done`, when the connection is not open.
   */
  send(method: string, dataJson: string, done: RpcDone, withData = false): boolean {
    if (!this.isOpen) return false;
    const id = this.#nextId++;
    this.#pending.set(id, { sentAt: performance.now(), done, withData });
    this.#ws.send(rpcFrame(id, method, dataJson));
    return true;
  }

  /** expire fails with {@link RPC_TIMEOUT} every call sent more than `timeoutMs` before `now`. */
  expire(now: number, timeoutMs: number): void {
    for (const [id, p] of this.#pending) {
      // Map order is send order: the first call young enough ends the scan.
      if (now - p.sentAt < timeoutMs) break;
      this.#pending.delete(id);
      clearTimeout(p.timer);
      p.done(RPC_TIMEOUT, now - p.sentAt);
    }
  }

  /** terminate destroys the socket at once (pending calls fail with {@link RPC_CLOSED}). */
  terminate(): void {
    this.#ws.terminate();
  }

  /** request sends `frame` (command `id`) and resolves with its outcome, timed out after `timeoutMs`. */
  #request(id: number, frame: string, timeoutMs: number, withData: boolean): Promise<RpcResult> {
    if (!this.isOpen) return Promise.resolve({ outcome: RPC_CLOSED });
    return new Promise<RpcResult>((resolve) => {
      const p: Pending = {
        sentAt: performance.now(),
        withData,
        done: (outcome, _latencyMs, data) => resolve(data === undefined ? { outcome } : { outcome, data }),
        timer: setTimeout(() => {
          this.#pending.delete(id);
          resolve({ outcome: RPC_TIMEOUT });
        }, timeoutMs),
      };
      this.#pending.set(id, p);
      this.#ws.send(frame);
    });
  }

  #onLine(buf: Buffer, start: number, end: number): void {
    // A server ping is an empty object; the pong is an empty object too.
    if (end - start === 2 && buf[start] === 0x7b && buf[start + 1] === 0x7d) {
      this.#ws.send('{}');
      return;
    }
    let id: number;
    let outcome: RpcOutcome;
    let reply: Reply | undefined;
    const head = parseReplyHead(buf, start, end);
    if (head && !(head.errorCode === 0 && isErrorReply(buf, start, end))) {
      // Bulwark's replies: id and error code from the first bytes.
      ({ id, errorCode: outcome } = head);
    } else {
      // Anything else (a push, another key order, an error without a numeric code): parse it.
      reply = parseLine(buf, start, end);
      if (typeof reply?.id !== 'number') return; // a push
      id = reply.id;
      const code = reply.error?.code;
      outcome = reply.error === undefined ? 0 : typeof code === 'number' && code > 0 ? code : RPC_BAD_REPLY;
    }
    const p = this.#pending.get(id);
    if (!p) return; // timed out already
    this.#pending.delete(id);
    clearTimeout(p.timer);
    const data = p.withData && outcome === 0 ? (reply ?? parseLine(buf, start, end))?.rpc?.data : undefined;
    p.done(outcome, performance.now() - p.sentAt, data);
  }
}

function rpcFrame(id: number, method: string, dataJson: string): string {
  return `{"id":${id},"rpc":{"method":${JSON.stringify(method)},"data":${dataJson}}}`;
}

/** isErrorReply says whether the reply in buf[start…end) has `"error"` right after its id. */
function isErrorReply(buf: Buffer, start: number, end: number): boolean {
  let pos = start + ID_PREFIX.length;
  while (pos < end && (buf[pos] as number) >= 48 && (buf[pos] as number) <= 57) pos++;
  return (
    pos + ERROR_KEY.length <= end && buf.compare(ERROR_KEY, 0, ERROR_KEY.length, pos, pos + ERROR_KEY.length) === 0
  );
}

function parseLine(buf: Buffer, start: number, end: number): Reply | undefined {
  try {
    const v = JSON.parse(buf.toString('utf8', start, end)) as unknown;
    return typeof v === 'object' && v !== null ? (v as Reply) : undefined;
  } catch {
    return undefined;
  }
}
