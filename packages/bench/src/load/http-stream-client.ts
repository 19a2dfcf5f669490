/**
 * The HTTP-streaming and SSE load clients (JSON): one long-lived response per connection carries
 * the server's replies and pushes, and every later command — subscribe, publish, the pong to a
 * server ping — goes to `/emulation` naming the connection's session and node, as the
 * `centrifuge` SDK does. Used by `connections` (memory per idle connection beside WebSocket's)
 * and `fanout` (`--format http_stream` / `sse`).
 *
 * Lean like the WebSocket client: lines are scanned in place and bench pushes decoded without
 * parsing (lean-client.ts `decodeBenchPush`); only replies are parsed. The stream is a plain
 * `node:http` request with its own socket; `/emulation` requests share a keep-alive agent, so
 * 10,000 idle streams do not cost 10,000 more sockets.
 *
 * @module
 */
import { Agent, request, type ClientRequest, type IncomingMessage } from 'node:http';
import { decodeBenchPush, type PushHandler } from './lean-client.js';
import { PendingReplies, type ReplyError } from './pending-replies.js';

/** HttpStreamClientOptions configure one streaming connection. */
export interface HttpStreamClientOptions {
  /** Bulwark's HTTP base, e.g. http://127.0.0.1:8000. */
  base: string;
  transport: 'http_stream' | 'sse';
  localAddress?: string;
  onPush?: PushHandler;
  onClose?: (code: number, reason: string) => void;
}

/** The agent of every client's /emulation requests: a few reused sockets, not one per client. */
const emulationAgent = new Agent({ keepAlive: true, maxSockets: 64 });
/** The prefix of an SSE line that carries a message. */
const dataPrefix = Buffer.from('data: ');

/** HttpStreamClient is one HTTP-streaming or SSE connection of the load generator. */
export class HttpStreamClient {
  closeCode: number | undefined;
  closeReason = '';
  publishAcks = 0;
  publishErrors = 0;
  lastError: string | undefined;
  /** Server pings answered through /emulation. */
  pings = 0;

  readonly #opts: HttpStreamClientOptions;
  readonly #pending = new PendingReplies<number, Record<string, unknown>>();
  #req: ClientRequest | undefined;
  #res: IncomingMessage | undefined;
  #rest: Buffer | undefined;
  #session = '';
  #node = '';
  #nextId = 2;

  constructor(opts: HttpStreamClientOptions) {
    this.#opts = opts;
  }

  /** open: nothing to open before connect (the stream opens with the connect command). */
  open(): Promise<void> {
    return Promise.resolve();
  }

  /** connect opens the stream with the connect command and resolves on its reply. */
  connect(token: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const { base, transport, localAddress } = this.#opts;
    const command = JSON.stringify({ id: 1, connect: { token } });
    const sse = transport === 'sse';
    const url = sse
      ? `${base}/connection/sse?cf_connect=${encodeURIComponent(command)}`
      : `${base}/connection/http_stream`;
    const reply = this.#pending.wait(1, timeoutMs);
    const req = request(url, {
      method: sse ? 'GET' : 'POST',
      agent: false,
      headers: sse ? {} : { 'content-type': 'application/json' },
      ...(localAddress ? { localAddress } : {}),
    });
    this.#req = req;
    req.on('response', (res) => {
      this.#res = res;
      if (res.statusCode !== 200) this.#closed(res.statusCode ?? 0, `HTTP ${res.statusCode}`);
      res.on('data', (chunk: Buffer) => this.#onData(chunk));
      res.on('end', () => this.#closed(this.closeCode ?? 1006, this.closeReason));
      res.on('error', () => undefined);
    });
    req.on('error', (err) => {
      this.lastError = err.message;
      this.#closed(1006, err.message);
    });
    req.end(sse ? undefined : command);
    return reply.then((r) => {
      const result = r['connect'] as { session?: string; node?: string };
      this.#session = result.session ?? '';
      this.#node = result.node ?? '';
      return r;
    });
  }

  /** subscribe sends subscribe through /emulation and resolves on its reply (on the stream). */
  async subscribe(channel: string, _token?: string, timeoutMs = 15_000): Promise<void> {
    const id = this.#nextId++;
    const reply = this.#pending.wait(id, timeoutMs);
    this.#emulate(JSON.stringify({ id, subscribe: { channel } }));
    await reply;
  }

  /** publish sends one publication through /emulation, fire-and-forget; replies are counted. */
  publish(channel: string, dataJson: string): void {
    this.#emulate(`{"id":${this.#nextId++},"publish":{"channel":${JSON.stringify(channel)},"data":${dataJson}}}`);
  }

  /** Bytes the stream's socket has not sent: a stream client sends nothing on it after connect. */
  get bufferedAmount(): number {
    return 0;
  }

  terminate(): void {
    this.#req?.destroy();
    this.#res?.destroy();
  }

  #emulate(data: string): void {
    const body = JSON.stringify({ node: this.#node, session: this.#session, data });
    const req = request(`${this.#opts.base}/emulation`, {
      method: 'POST',
      agent: emulationAgent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    req.on('response', (res) => {
      if (res.statusCode !== 204) this.lastError = `emulation: HTTP ${res.statusCode}`;
      res.resume();
    });
    req.on('error', (err) => {
      this.lastError = `emulation: ${err.message}`;
    });
    req.end(body);
  }

  #onData(chunk: Buffer): void {
    const buf = this.#rest === undefined ? chunk : Buffer.concat([this.#rest, chunk]);
    let start = 0;
    for (let end = buf.indexOf(10, start); end !== -1; end = buf.indexOf(10, start)) {
      this.#onLine(buf, start, end);
      start = end + 1;
    }
    this.#rest = start < buf.length ? buf.subarray(start) : undefined;
  }

  #onLine(buf: Buffer, start: number, end: number): void {
    if (end > start && buf[end - 1] === 13) end--; // SSE may end lines with \r\n
    if (this.#opts.transport === 'sse') {
      // Only `data:` lines carry messages; the blank line between events and comments do not.
      if (end - start < dataPrefix.length || buf.compare(dataPrefix, 0, dataPrefix.length, start, start + 6) !== 0)
        return;
      start += dataPrefix.length;
    }
    if (end <= start) return;
    if (this.#opts.onPush && decodeBenchPush(buf, start, end, this.#opts.onPush)) return;
    if (end - start === 2 && buf[start] === 0x7b && buf[start + 1] === 0x7d) {
      this.pings++;
      this.#emulate('{}');
      return;
    }
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(buf.toString('utf8', start, end)) as Record<string, unknown>;
    } catch {
      this.lastError = `unparsable message: ${buf.toString('utf8', start, Math.min(end, start + 200))}`;
      return;
    }
    const push = msg['push'] as { disconnect?: { code: number; reason: string } } | undefined;
    if (push?.disconnect) {
      this.closeCode = push.disconnect.code;
      this.closeReason = push.disconnect.reason;
      return;
    }
    const id = msg['id'];
    if (typeof id !== 'number' || id === 0) return;
    if (this.#pending.settle(id, msg['error'] as ReplyError | undefined, msg)) return;
    if (msg['error'] !== undefined) {
      this.publishErrors++;
      const e = msg['error'] as ReplyError;
      this.lastError = `publish error ${e.code}: ${e.message}`;
    } else {
      this.publishAcks++;
    }
  }

  #closed(code: number, reason: string): void {
    if (this.#res === undefined && this.#req === undefined) return;
    this.closeCode ??= code;
    if (this.closeReason === '') this.closeReason = reason;
    this.#pending.rejectAll(new Error(`stream closed: ${this.closeCode} ${this.closeReason}`.trim()));
    const onClose = this.#opts.onClose;
    this.#req = undefined;
    this.#res = undefined;
    onClose?.(this.closeCode, this.closeReason);
  }
}
