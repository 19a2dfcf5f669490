/**
 * A game backend ("origin") for Bulwark's RPC proxy, in the bench process: an HTTP server on
 * loopback that answers Centrifugo proxy requests (`POST`, JSON `{client, user, method, data,
 * …}`, answered `200 {"result": {"data": …}}` or `{"error": {...}}`; see docs/PROXY.md) and
 * measures what a database behind it would feel:
 *
 * - every call's arrival time ({@link Arrivals}: the peak rate in any 1 s window), and calls per
 *   key (the key is read from the request by `keyOf`, e.g. `data.id`);
 * - a service time: each answer is sent no earlier than `serviceMs` after the request arrived,
 *   measured on performance.now() (a timer alone may fire a little early) — so one connection
 *   slot of the caller can start at most one call per `serviceMs`, which the cold-cache
 *   scenario's arithmetic relies on;
 * - an optional capacity: over `capacity` calls in flight it answers 503 at once, as a
 *   database sized for so many concurrent queries would start failing; those calls are counted
 *   in `rejected` (and still in `calls`, arrivals and per key: the database saw them).
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Arrivals } from './arrivals.js';

/** ProxyRequest is the part of a Centrifugo proxy request body the origin looks at. */
export interface ProxyRequest {
  client?: string;
  user?: string;
  method?: string;
  data?: unknown;
  [field: string]: unknown;
}

/** ProxyReply is a proxy answer body: a result or an error (docs/PROXY.md, "Responses"). */
export type ProxyReply =
  { result: { data?: unknown } } | { error: { code: number; message: string; temporary?: boolean } };

/** OriginOptions configure an {@link OriginServer}. */
export interface OriginOptions {
  /** Minimum time between a request's arrival and its answer (ms). Default: 0. */
  serviceMs?: number;
  /** Most calls in flight; more are answered 503 at once. Default: unlimited. */
  capacity?: number;
  /** The key a request is about, for per-key counts. Default: `data.id` as a string, else "". */
  keyOf?: (req: ProxyRequest) => string;
  /** The answer to a request. Default: `{"result": {"data": {"id": <key>}}}`. */
  answer?: (req: ProxyRequest, key: string) => ProxyReply;
}

/** OriginStats is what the origin measured since the last reset. */
export interface OriginStats {
  /** Requests received, whatever their fate. */
  calls: number;
  /** Requests answered 503 for being over capacity. */
  rejected: number;
  /** Requests whose caller went away before the answer (e.g. a proxy timeout). */
  aborted: number;
  /** Requests whose body was not a JSON object (answered 400). */
  malformed: number;
  /** Most requests in flight at once. */
  maxInFlight: number;
}

/** defaultKeyOf reads `data.id` (a string or number) as the key; "" when absent. */
export function defaultKeyOf(req: ProxyRequest): string {
  const data = req.data;
  if (typeof data !== 'object' || data === null) return '';
  const id = (data as { id?: unknown }).id;
  return typeof id === 'string' || typeof id === 'number' ? String(id) : '';
}

/** OriginServer is a measuring Centrifugo-proxy origin on 127.0.0.1 and a free port. */
export class OriginServer {
  /** Every call's arrival time (performance.now() ms). */
  readonly arrivals = new Arrivals();
  /** Calls per key. */
  readonly perKey = new Map<string, number>();

  readonly #serviceMs: number;
  readonly #capacity: number;
  readonly #keyOf: (req: ProxyRequest) => string;
  readonly #answer: (req: ProxyRequest, key: string) => ProxyReply;
  readonly #server: Server;
  readonly #timers = new Set<NodeJS.Timeout>();
  #stats: OriginStats = { calls: 0, rejected: 0, aborted: 0, malformed: 0, maxInFlight: 0 };
  #inFlight = 0;
  /** Called with each arrival time (for live progress and timelines). */
  onCall: ((atMs: number) => void) | undefined;

  private constructor(options: OriginOptions) {
    this.#serviceMs = options.serviceMs ?? 0;
    this.#capacity = options.capacity ?? Number.POSITIVE_INFINITY;
    this.#keyOf = options.keyOf ?? defaultKeyOf;
    this.#answer = options.answer ?? ((_req, key) => ({ result: { data: { id: key } } }));
    this.#server = createServer((req, res) => this.#handle(req, res));
    // Bulwark's proxy reuses its connections: keep them open across the quiet moments of a run.
    this.#server.keepAliveTimeout = 60_000;
  }

  /** start listens on 127.0.0.1 on a free port. */
  static async start(options: OriginOptions = {}): Promise<OriginServer> {
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

  /** inFlight is the number of requests being answered now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** stats returns the counters. */
  stats(): OriginStats {
    return { ...this.#stats };
  }

  /** reset forgets every count and arrival (not the requests in flight). */
  reset(): void {
    this.#stats = { calls: 0, rejected: 0, aborted: 0, malformed: 0, maxInFlight: this.#inFlight };
    this.arrivals.clear();
    this.perKey.clear();
  }

  /** close drops every connection and stops listening. */
  async close(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const arrivedAt = performance.now();
    this.#stats.calls++;
    this.arrivals.add(arrivedAt);
    this.onCall?.(arrivedAt);
    this.#inFlight++;
    this.#stats.maxInFlight = Math.max(this.#stats.maxInFlight, this.#inFlight);
    res.once('close', () => {
      this.#inFlight--;
      if (!res.writableFinished) this.#stats.aborted++;
    });
    const overCapacity = this.#inFlight > this.#capacity;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = parseObject(chunks);
      const key = body === undefined ? '' : this.#keyOf(body);
      this.perKey.set(key, (this.perKey.get(key) ?? 0) + 1);
      if (overCapacity) {
        this.#stats.rejected++;
        send(res, 503, { error: 'over capacity' });
      } else if (body === undefined) {
        this.#stats.malformed++;
        send(res, 400, { error: 'not a JSON object' });
      } else {
        this.#answerAfterService(res, arrivedAt, () => this.#answer(body, key));
      }
    });
  }

  /** answerAfterService sends the answer once `serviceMs` have passed since `arrivedAt`. */
  #answerAfterService(res: ServerResponse, arrivedAt: number, answer: () => ProxyReply): void {
    const left = this.#serviceMs - (performance.now() - arrivedAt);
    if (left <= 0) {
      if (!res.destroyed) send(res, 200, answer());
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#answerAfterService(res, arrivedAt, answer);
    }, Math.ceil(left));
    this.#timers.add(timer);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** parseObject parses the body as a JSON object; undefined when it is not one. */
function parseObject(chunks: Buffer[]): ProxyRequest | undefined {
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as ProxyRequest) : undefined;
  } catch {
    return undefined;
  }
}
