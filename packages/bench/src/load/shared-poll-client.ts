/**
 * A shared poll player over a raw WebSocket in JSON (the Centrifugo client protocol, as the
 * `centrifuge` SDK's `newSharedPollSubscription` speaks it): connect with a JWT, subscribe with
 * `type: 4`, then track signed keys with `sub_refresh {type: 1, track: [{signature, items:
 * [{key, version}]}]}`. Item values arrive in the track reply's `items` (what the node already
 * knew) and later as pushes `{"pub": {"data", "key", "version"}}`; both carry the bench markers
 * of board posts, read without JSON.parse ({@link scanBenchMarkers}), so thousands of players
 * cost the load generator little.
 *
 * Why not the SDK: 2,000 SDK clients with their timers and promise chains would make the load
 * generator, not the server, the thing measured (as for the lean client).
 *
 * @module
 */
import WebSocket from 'ws';
import { connectionToken } from '../harness/jwt.js';
import { scanBenchMarkers, type BenchMarker } from './bench-markers.js';
import { parseReplyHead } from './command-client.js';

/** TrackBatch is one signed batch of keys (each tracked from version 0: no value held). */
export interface TrackBatch {
  signature: string;
  keys: readonly string[];
}

/** trackCommand encodes a track of `batches` in `channel` as command `id`. */
export function trackCommand(id: number, channel: string, batches: readonly TrackBatch[]): string {
  const track = batches.map((b) => ({ signature: b.signature, items: b.keys.map((key) => ({ key, version: 0 })) }));
  return JSON.stringify({ id, sub_refresh: { channel, type: 1, track } });
}

interface Waiting {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** SharedPollClient is one player tracking items of one shared poll channel. */
export class SharedPollClient {
  /** WebSocket payload bytes received (replies, pushes, pings). */
  bytesReceived = 0;
  /** Item publications received (pushes; the track reply's items are counted in `replyItems`). */
  pushes = 0;
  /** Close code once closed. */
  closeCode: number | undefined;

  readonly #ws: WebSocket;
  readonly #opened: Promise<void>;
  readonly #waiting = new Map<number, Waiting>();
  #nextId = 1;

  /**
   * Starts connecting to `url`; `onMarkers` gets the bench markers of every frame that carries
   * any (a track reply or a push), with the receive time (performance.now() ms).
   */
  constructor(
    url: string,
    private readonly onMarkers: (markers: BenchMarker[], atMs: number) => void,
  ) {
    this.#ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: 15_000 });
    this.#opened = new Promise<void>((resolve, reject) => {
      this.#ws.once('open', () => resolve());
      this.#ws.once('close', (code: number) => reject(new Error(`could not open ${url}: closed with ${code}`)));
    });
    this.#opened.catch(() => undefined);
    this.#ws.on('error', () => undefined);
    this.#ws.on('close', (code) => {
      this.closeCode = code;
      for (const [id, w] of this.#waiting) this.#settle(id, w, new Error('connection closed'));
    });
    this.#ws.on('message', (data: Buffer) => this.#onFrame(data));
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  /** connect opens the socket and connects as `user` (JWT signed with `secret`). */
  async connect(user: string, secret: string): Promise<void> {
    await this.#opened;
    await this.#command((id) =>
      JSON.stringify({ id, connect: { token: connectionToken(user, secret), name: 'bench' } }),
    );
  }

  /** subscribe makes the shared poll subscription (`type: 4`) to `channel`. */
  async subscribe(channel: string): Promise<void> {
    await this.#command((id) => JSON.stringify({ id, subscribe: { channel, type: 4 } }));
  }

  /** track tracks the keys of `batches`; resolves once the reply (with the items already known) came. */
  async track(channel: string, batches: readonly TrackBatch[]): Promise<void> {
    await this.#command((id) => trackCommand(id, channel, batches));
  }

  terminate(): void {
    this.#ws.terminate();
  }

  #command(encode: (id: number) => string, timeoutMs = 15_000): Promise<void> {
    const id = this.#nextId++;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const w = this.#waiting.get(id);
        if (w) this.#settle(id, w, new Error(`no reply to command ${id} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(id, { resolve, reject, timer });
      this.#ws.send(encode(id));
    });
  }

  #settle(id: number, w: Waiting, err?: Error): void {
    this.#waiting.delete(id);
    clearTimeout(w.timer);
    if (err) w.reject(err);
    else w.resolve();
  }

  #onFrame(data: Buffer): void {
    const now = performance.now();
    this.bytesReceived += data.length;
    let start = 0;
    while (start < data.length) {
      let end = data.indexOf(10, start);
      if (end === -1) end = data.length;
      if (end - start === 2 && data[start] === 0x7b && data[start + 1] === 0x7d) {
        // A server ping is an empty object; so is the pong.
        this.#ws.send('{}');
      } else if (end > start) {
        const head = parseReplyHead(data, start, end);
        if (head === undefined) this.pushes++;
        const markers = scanBenchMarkers(data, start, end);
        if (markers.length > 0) this.onMarkers(markers, now);
        const w = head ? this.#waiting.get(head.id) : undefined;
        if (head && w) {
          this.#settle(
            head.id,
            w,
            head.errorCode !== 0 ? new Error(`command refused with ${head.errorCode}`) : undefined,
          );
        }
      }
      start = end + 1;
    }
  }
}
