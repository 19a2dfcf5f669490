/**
 * A chat player's client that declares what it is, for publication variants (incident 2): its
 * connect command carries an SDK `name` and `version`, its token a `features` claim, and it
 * subscribes to one channel and reports every publication it receives — the stream offset
 * and the data it was given — so a scenario can check which payload each client got.
 *
 * Why not {@link LeanClient}: that client decodes only the bench's own markers, without
 * parsing the data; here the data itself is what is measured (a sticker or an upgrade text,
 * chosen by the server per client), so every push is parsed. At a few thousand pushes a second
 * per process that is cheap. Also reads the channel's history (a client's history is its own
 * variant) and counts the bytes it receives.
 *
 * @module
 */
import WebSocket from 'ws';
import { signHs256 } from '../harness/jwt.js';

/** ChatIdentity is what a client declares: connect `name` and `version`, and its token's `features`. */
export interface ChatIdentity {
  user: string;
  name: string;
  version: string;
  /** The token's `features` claim; omitted from the token when undefined. */
  features?: readonly string[];
}

/** ChatPublication is a publication as the client got it: live, or in a history reply. */
export interface ChatPublication {
  offset: number;
  data: unknown;
}

/** chatToken signs the connection token of `id` (with its `features` claim) for `ttlSeconds`. */
export function chatToken(id: ChatIdentity, secret: string, ttlSeconds = 3600): string {
  const claims: Record<string, unknown> = { sub: id.user, exp: Math.floor(Date.now() / 1000) + ttlSeconds };
  if (id.features !== undefined) claims['features'] = [...id.features];
  return signHs256(claims, secret);
}

/** Reply is a Centrifugo reply line, as much as this client reads. */
interface ReplyLine {
  id?: number;
  error?: { code?: number; message?: string };
  connect?: unknown;
  subscribe?: unknown;
  history?: { publications?: Array<{ data?: unknown; offset?: number }> };
  push?: { channel?: string; pub?: { data?: unknown; offset?: number } };
}

/** ChatClient is one connection subscribed to one channel. */
export class ChatClient {
  /** Close code once closed, else undefined. */
  closeCode: number | undefined;
  /** The latest socket error. */
  lastError: string | undefined;
  /** Bytes of WebSocket message payloads received (pushes, replies and pings alike). */
  bytesReceived = 0;
  /** Lines that were not JSON, or pushes without data (counted, never thrown). */
  malformed = 0;

  readonly #ws: WebSocket;
  readonly #opened: Promise<void>;
  readonly #waiting = new Map<number, (reply: ReplyLine) => void>();
  #nextId = 1;

  /**
   * Starts connecting to `url`. `onPublication` gets each live publication of `channel`, as it
   * arrives (with performance.now() of its frame).
   */
  constructor(
    url: string,
    private readonly channel: string,
    private readonly onPublication: (pub: ChatPublication, atMs: number) => void,
  ) {
    this.#ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 15_000 });
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
      const waiting = [...this.#waiting.values()];
      this.#waiting.clear();
      for (const w of waiting) w({ error: { code: -1, message: `closed ${code}` } });
    });
    this.#ws.on('message', (data: Buffer) => this.#onMessage(data));
  }

  /** join connects as `id` (token signed with `secret`) and subscribes to the channel. */
  async join(id: ChatIdentity, secret: string, timeoutMs = 15_000): Promise<void> {
    await this.#opened;
    const connect = { token: chatToken(id, secret), name: id.name, version: id.version };
    await this.#command('connect', connect, timeoutMs);
    await this.#command('subscribe', { channel: this.channel }, timeoutMs);
  }

  /** history reads the channel's last `limit` publications, as the server gives them to this client. */
  async history(limit: number, timeoutMs = 15_000): Promise<ChatPublication[]> {
    const reply = await this.#command('history', { channel: this.channel, limit }, timeoutMs);
    return (reply.history?.publications ?? []).map((p) => ({ offset: p.offset ?? 0, data: p.data }));
  }

  /** terminate destroys the socket at once. */
  terminate(): void {
    this.#ws.terminate();
  }

  /** command sends one command and resolves with its reply; rejects on an error reply, a close or a timeout. */
  #command(method: string, body: unknown, timeoutMs: number): Promise<ReplyLine> {
    if (this.#ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error(`${method}: connection not open`));
    const id = this.#nextId++;
    return new Promise<ReplyLine>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`${method}: no reply in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(id, (reply) => {
        clearTimeout(timer);
        if (reply.error) reject(new Error(`${method}: error ${reply.error.code} ${reply.error.message ?? ''}`));
        else resolve(reply);
      });
      this.#ws.send(JSON.stringify({ id, [method]: body }));
    });
  }

  #onMessage(data: Buffer): void {
    const atMs = performance.now();
    this.bytesReceived += data.length;
    // Several replies and pushes may share a frame, one per line.
    for (const line of data.toString('utf8').split('\n')) {
      if (line === '') continue;
      if (line === '{}') {
        this.#ws.send('{}'); // the server's ping: answer with a pong
        continue;
      }
      let msg: ReplyLine;
      try {
        msg = JSON.parse(line) as ReplyLine;
      } catch {
        this.malformed++;
        continue;
      }
      if (msg.push !== undefined) {
        const pub = msg.push.pub;
        if (msg.push.channel !== this.channel || pub === undefined) continue;
        if (pub.data === undefined) this.malformed++;
        else this.onPublication({ offset: pub.offset ?? 0, data: pub.data }, atMs);
        continue;
      }
      if (typeof msg.id === 'number') {
        const w = this.#waiting.get(msg.id);
        this.#waiting.delete(msg.id);
        w?.(msg);
      }
    }
  }
}
