/**
 * A real origin (the "game backend") for tests and the simulator: an HTTP server on loopback
 * that counts the calls it receives and can be made slow, failing or capacity-limited.
 *
 * - Routes: `route(path, reply)` answers `path` with a fixed {@link OriginReply} or one computed
 *   per request; `notFound(path)` is the 404 shortcut. Paths without a route get the default
 *   reply: `200 {"path": <path>, "call": <n-th call of that path>}` (`defaultReply: 'echo'`),
 *   or 404 (`defaultReply: 'not_found'`), so a test can ask for 1,000 distinct keys as
 *   `/k/<i>` without configuring each.
 * - Counters: `calls` (every request, whatever its fate), `callsTo(path)`, `inFlight` and
 *   `maxInFlight` (requests being answered, including delayed ones), `aborted` (requests whose
 *   client went away before the answer: a cancelled fetch shows here; a `'reset'` failure does
 *   not), `rejected` (503s sent
 *   over capacity). `resetCounters()` zeroes them.
 * - Behaviour: `delayMs` (answer after a delay), `failure` (`{ status }` answers every request
 *   with that status, `'reset'` destroys the connection without an answer), `capacity` (over
 *   this many requests in flight, answer 503 at once), `workers` (at most this many worked on at
 *   once, the rest queue: latency grows with load, as a real backend's does). All are plain properties, settable at
 *   any time; they apply to requests that arrive afterwards.
 * - `lastRequest(path)` is the last request to `path` (method, headers, parsed JSON body), so
 *   proxy tests can check what was sent.
 *
 * Keys are URL paths without the query string.
 *
 * @example
 * ```ts
 * const origin = await OriginServer.start();
 * origin.route('/user/42', { body: { name: 'Ann' } });
 * origin.delayMs = 200;
 * await fetch(`${origin.url}/user/42`);
 * assert.equal(origin.callsTo('/user/42'), 1);
 * await origin.close();
 * ```
 *
 * @module
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** OriginReply is an answer: a status (default 200) and a body sent as JSON (none when undefined). */
export interface OriginReply {
  status?: number;
  body?: unknown;
}

/** OriginRequest is a request as the origin saw it. */
export interface OriginRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  /** The body parsed as JSON; the raw text when it is not JSON; undefined when empty. */
  body: unknown;
}

/** OriginRoute answers one path: a fixed reply, or one computed from the request. */
export type OriginRoute = OriginReply | ((req: OriginRequest) => OriginReply);

/** OriginFailure makes every request fail: with an HTTP status, or by resetting the connection. */
export type OriginFailure = { status: number } | 'reset';

/** OriginServerOptions: how the origin starts. */
export interface OriginServerOptions {
  /** What paths without a route answer. Default: 'echo'. */
  defaultReply?: 'echo' | 'not_found';
}

/** OriginServer is a counting HTTP origin on 127.0.0.1 and a free port. */
export class OriginServer {
  /** Delay before each answer (ms); 0 answers at once. */
  delayMs = 0;
  /** When set, every request fails this way instead of being answered. */
  failure: OriginFailure | undefined;
  /** When set, requests beyond this many in flight get 503 at once. */
  capacity: number | undefined;
  /**
   * When set, at most this many requests are worked on (for delayMs each) at once; the others
   * wait in arrival order, as a backend's queue does (`capacity` bounds them all, waiting included).
   */
  workers: number | undefined;

  #calls = 0;
  #inFlight = 0;
  #maxInFlight = 0;
  #aborted = 0;
  #rejected = 0;
  #busy = 0;
  readonly #waiting: (() => void)[] = [];
  readonly #perPath = new Map<string, number>();
  readonly #routes = new Map<string, OriginRoute>();
  readonly #last = new Map<string, OriginRequest>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #server: Server;
  readonly #defaultReply: 'echo' | 'not_found';

  private constructor(options: OriginServerOptions) {
    this.#defaultReply = options.defaultReply ?? 'echo';
    this.#server = createServer((req, res) => this.#handle(req, res));
    this.#server.keepAliveTimeout = 30_000;
  }

  /** start listens on 127.0.0.1 on a free port. */
  static async start(options: OriginServerOptions = {}): Promise<OriginServer> {
    const origin = new OriginServer(options);
    await new Promise<void>((resolve, reject) => {
      origin.#server.once('error', reject);
      origin.#server.listen(0, '127.0.0.1', resolve);
    });
    return origin;
  }

  /** url is the base address, e.g. `http://127.0.0.1:38211` (no trailing slash). */
  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** calls counts every request received. */
  get calls(): number {
    return this.#calls;
  }

  /** inFlight is the number of requests being answered now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** maxInFlight is the most requests in flight at once since the last reset. */
  get maxInFlight(): number {
    return this.#maxInFlight;
  }

  /** aborted counts requests whose client closed the connection before the answer. */
  get aborted(): number {
    return this.#aborted;
  }

  /** rejected counts requests answered 503 for being over `capacity`. */
  get rejected(): number {
    return this.#rejected;
  }

  /** callsTo counts the requests received for `path`. */
  callsTo(path: string): number {
    return this.#perPath.get(path) ?? 0;
  }

  /** lastRequest returns the last request received for `path`. */
  lastRequest(path: string): OriginRequest | undefined {
    return this.#last.get(path);
  }

  /** route makes `path` answer with `reply` (replacing any earlier route for it). */
  route(path: string, reply: OriginRoute): void {
    this.#routes.set(path, reply);
  }

  /** notFound makes `path` answer 404. */
  notFound(path: string): void {
    this.route(path, { status: 404, body: { error: 'not found' } });
  }

  /** resetCounters zeroes every counter; routes and behaviour stay. */
  resetCounters(): void {
    this.#calls = 0;
    this.#maxInFlight = this.#inFlight;
    this.#aborted = 0;
    this.#rejected = 0;
    this.#perPath.clear();
  }

  /** close drops every connection and stops listening. */
  async close(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#waiting.length = 0;
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://origin').pathname;
    this.#calls++;
    this.#perPath.set(path, (this.#perPath.get(path) ?? 0) + 1);
    const call = this.#perPath.get(path)!;
    this.#inFlight++;
    this.#maxInFlight = Math.max(this.#maxInFlight, this.#inFlight);
    let reset = false;
    res.once('close', () => {
      this.#inFlight--;
      if (!res.writableFinished && !reset) this.#aborted++;
    });
    if (this.capacity !== undefined && this.#inFlight > this.capacity) {
      this.#rejected++;
      send(res, { status: 503, body: { error: 'over capacity' } });
      return;
    }
    // Read the whole body first: a route may look at it, and the request is then complete.
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request: OriginRequest = { method: req.method ?? 'GET', path, headers: req.headers, body: parse(chunks) };
      this.#last.set(path, request);
      const answer = (): void => {
        if (res.destroyed) return;
        const failure = this.failure;
        if (failure === 'reset') {
          reset = true;
          res.socket?.destroy();
        } else if (failure !== undefined) send(res, { status: failure.status, body: { error: 'failing' } });
        else send(res, this.#reply(request, call));
      };
      if (this.delayMs <= 0) return answer();
      const work = (): void => {
        if (res.destroyed) return this.#next();
        this.#busy++;
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          this.#busy--;
          answer();
          this.#next();
        }, this.delayMs);
        this.#timers.add(timer);
      };
      if (this.workers !== undefined && this.#busy >= this.workers) this.#waiting.push(work);
      else work();
    });
  }

  /** next gives a free worker to the request that waited longest. */
  #next(): void {
    if (this.workers !== undefined && this.#busy >= this.workers) return;
    this.#waiting.shift()?.();
  }

  #reply(req: OriginRequest, call: number): OriginReply {
    const route = this.#routes.get(req.path);
    if (route !== undefined) return typeof route === 'function' ? route(req) : route;
    if (this.#defaultReply === 'not_found') return { status: 404, body: { error: 'not found' } };
    return { body: { path: req.path, call } };
  }
}

function send(res: ServerResponse, reply: OriginReply): void {
  const body = reply.body === undefined ? '' : JSON.stringify(reply.body);
  res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function parse(chunks: Buffer[]): unknown {
  if (chunks.length === 0) return undefined;
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
