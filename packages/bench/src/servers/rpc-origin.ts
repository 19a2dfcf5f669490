/**
 * A game backend ("origin") for Bulwark's RPC proxy, in the bench process: an HTTP server on
 * loopback that answers Centrifugo proxy requests (`POST`, JSON `{client, user, method, data,
 * …}`, answered `200 {"result": {"data": …}}` or `{"error": {...}}`; see docs/PROXY.md) and
 * behaves and measures like the database or service behind it.
 *
 * Behaviour — it degrades the way a real backend does rather than failing cleanly:
 * - `workers` calls are worked on at once (default: unlimited), each for at least `serviceMs`:
 *   capacity = workers × 1000 / serviceMs calls per second. The service time is re-checked
 *   against performance.now() (a timer alone may fire a little early), so one worker — and
 *   one connection slot of the caller — completes at most one call per `serviceMs`, which the
 *   scenarios' arithmetic relies on;
 * - over that, calls wait in a FIFO queue (latency grows) of at most `queueLimit` calls;
 * - past the queue it throttles: HTTP 503 at once (as a database sized for so many concurrent
 *   queries starts failing, or as Azure Storage did in incident 4), which Bulwark's proxy turns
 *   into error 100 (temporary) for the client. `queueLimit: 0` (the default) answers 503 as
 *   soon as every worker is busy;
 * - a call whose caller went away (Bulwark's proxy timeout aborted the request) is still
 *   worked on when its turn comes — a backend does not know nobody waits for the answer — and
 *   counted as `wasted`: work that costs capacity and helps no one.
 *
 * Measurements: every call's arrival time ({@link Arrivals}: the peak rate in any window),
 * calls per key (read from the request by `keyOf`, e.g. `data.id`) and per RPC method, each
 * call's fate (for timelines, via `onArrival`), and the counters of {@link RpcOriginStats}.
 * A throttled call still counts as a call, with its key and method: the database saw it.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Arrivals } from '../harness/arrivals.js';

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

/** OriginFate is what the origin does with an arriving call. */
export type OriginFate = 'serve' | 'queue' | 'throttle';

/** OriginArrival is one call as it reached the origin, for timelines. */
export interface OriginArrival {
  /** When the request arrived (performance.now() ms). */
  atMs: number;
  /** The RPC method ('' when absent). */
  method: string;
  /** The key ({@link RpcOriginOptions.keyOf}). */
  key: string;
  fate: OriginFate;
}

/** RpcOriginOptions size and script the backend. */
export interface RpcOriginOptions {
  /** Calls worked on at once. Default: unlimited. */
  workers?: number;
  /** Minimum work per call, ms (from when a worker takes it to its answer). Default: 0. */
  serviceMs?: number;
  /** Calls that may wait for a worker; past it the origin answers 503. Default: 0 (503 at once). */
  queueLimit?: number;
  /** The key a request is about, for per-key counts. Default: {@link defaultKeyOf}. */
  keyOf?: (req: ProxyRequest) => string;
  /** The answer to a served request. Default: `{"result": {"data": {"id": <key>}}}`. */
  answer?: (req: ProxyRequest, key: string) => ProxyReply;
  /** Called on every arrival once its fate is decided (also settable later: `origin.onArrival`). */
  onArrival?: (call: OriginArrival) => void;
}

/** OriginLimits are the limits {@link originFate} decides with. */
export interface OriginLimits {
  workers: number;
  queueLimit: number;
}

/**
 * originFate decides an arriving call's fate from the workers busy and the calls waiting:
 * served at once while a worker is free, queued while the queue has room, else throttled.
 */
export function originFate(busy: number, queued: number, limits: OriginLimits): OriginFate {
  if (busy < limits.workers) return 'serve';
  if (queued < limits.queueLimit) return 'queue';
  return 'throttle';
}

/** originCapacity is the calls per second `workers` workers of `serviceMs` each complete. */
export function originCapacity(workers: number, serviceMs: number): number {
  return (workers * 1000) / serviceMs;
}

/** defaultKeyOf reads `data.id` (a string or number) as the key; "" when absent. */
export function defaultKeyOf(req: ProxyRequest): string {
  const data = req.data;
  if (typeof data !== 'object' || data === null) return '';
  const id = (data as { id?: unknown }).id;
  return typeof id === 'string' || typeof id === 'number' ? String(id) : '';
}

/** methodOf reads the `method` of a proxy request; '' when absent. */
export function methodOf(req: ProxyRequest | undefined): string {
  const m = req?.method;
  return typeof m === 'string' ? m : '';
}

/** parseProxyRequest parses a request body as a JSON object; undefined when it is not one. */
export function parseProxyRequest(body: Buffer): ProxyRequest | undefined {
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as ProxyRequest) : undefined;
  } catch {
    return undefined;
  }
}

/** RpcOriginStats are the origin's counters since start (or the last reset). */
export interface RpcOriginStats {
  /** Calls received, whatever their fate. */
  calls: number;
  /** Calls answered after their work. */
  served: number;
  /** Calls answered 503 at once (every worker busy, queue full). */
  throttled: number;
  /** Calls whose caller went away before the answer (e.g. a proxy timeout). */
  abandoned: number;
  /** Calls worked on to the end after their caller had gone away. */
  wasted: number;
  /** Calls whose body was not a JSON object (answered 400). */
  malformed: number;
  /** Most calls at the origin at once (working + waiting). */
  maxInFlight: number;
  /** Most workers busy at once. */
  maxBusy: number;
  /** Longest a call waited for a worker, ms. */
  maxWaitMs: number;
  /**
   * Mean time a worker really spent per call, ms: above serviceMs when this process's event
   * loop is late (a busy machine), which lowers the capacity the origin really has.
   */
  meanServiceMs: number;
  /** Calls received per RPC method. */
  callsByMethod: Record<string, number>;
}

/** emptyOriginStats are the counters of an origin that saw no call. */
export function emptyOriginStats(): RpcOriginStats {
  return {
    calls: 0,
    served: 0,
    throttled: 0,
    abandoned: 0,
    wasted: 0,
    malformed: 0,
    maxInFlight: 0,
    maxBusy: 0,
    maxWaitMs: 0,
    meanServiceMs: Number.NaN,
    callsByMethod: {},
  };
}

/** A call waiting for, or held by, a worker. */
interface Call {
  res: ServerResponse;
  req: ProxyRequest;
  key: string;
  /** When its body was read (performance.now() ms): the wait for a worker starts here. */
  readAt: number;
  callerGone: boolean;
}

/** RpcOrigin is a measuring Centrifugo-proxy origin on 127.0.0.1 and a free port. */
export class RpcOrigin {
  /** Every call's arrival time (performance.now() ms). */
  readonly arrivals = new Arrivals();
  /** Calls per key. */
  readonly perKey = new Map<string, number>();
  /** Called on every arrival once its fate is decided (for live progress and timelines). */
  onArrival: ((call: OriginArrival) => void) | undefined;

  readonly #limits: OriginLimits;
  readonly #serviceMs: number;
  readonly #keyOf: (req: ProxyRequest) => string;
  readonly #answer: (req: ProxyRequest, key: string) => ProxyReply;
  readonly #server: Server;
  readonly #queue: Call[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #byMethod = new Map<string, number>();
  #busy = 0;
  #stats = emptyOriginStats();
  #workMs = 0;
  #worked = 0;

  private constructor(options: RpcOriginOptions) {
    const workers = options.workers ?? Number.POSITIVE_INFINITY;
    const serviceMs = options.serviceMs ?? 0;
    const queueLimit = options.queueLimit ?? 0;
    if (!(workers >= 0) || !(serviceMs >= 0) || !(queueLimit >= 0)) {
      throw new TypeError(`rpc origin: bad options ${JSON.stringify({ workers, serviceMs, queueLimit })}`);
    }
    this.#limits = { workers, queueLimit };
    this.#serviceMs = serviceMs;
    this.#keyOf = options.keyOf ?? defaultKeyOf;
    this.#answer = options.answer ?? ((_req, key) => ({ result: { data: { id: key } } }));
    this.onArrival = options.onArrival;
    this.#server = createServer((req, res) => this.#handle(req, res));
    // Bulwark's proxy reuses its connections: keep them open across the quiet moments of a run.
    this.#server.keepAliveTimeout = 60_000;
  }

  /** start listens on 127.0.0.1 on a free port. */
  static async start(options: RpcOriginOptions = {}): Promise<RpcOrigin> {
    const origin = new RpcOrigin(options);
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

  /** capacity is the calls per second the origin completes when saturated (Infinity when unlimited). */
  get capacity(): number {
    return this.#serviceMs > 0 ? originCapacity(this.#limits.workers, this.#serviceMs) : Number.POSITIVE_INFINITY;
  }

  /** inFlight is the calls at the origin now (working + waiting). */
  get inFlight(): number {
    return this.#busy + this.#queue.length;
  }

  /** stats returns a snapshot of the counters. */
  stats(): RpcOriginStats {
    return {
      ...this.#stats,
      meanServiceMs: this.#worked > 0 ? this.#workMs / this.#worked : Number.NaN,
      callsByMethod: Object.fromEntries(this.#byMethod),
    };
  }

  /** reset forgets every count and arrival (not the calls at the origin). */
  reset(): void {
    this.#stats = { ...emptyOriginStats(), maxInFlight: this.inFlight, maxBusy: this.#busy };
    this.#workMs = 0;
    this.#worked = 0;
    this.arrivals.clear();
    this.perKey.clear();
    this.#byMethod.clear();
  }

  /** close drops every connection and stops listening (calls in progress are abandoned). */
  async close(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#queue.length = 0;
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const atMs = performance.now();
    this.#stats.calls++;
    this.arrivals.add(atMs);
    const call: Call = { res, req: {}, key: '', readAt: atMs, callerGone: false };
    res.once('close', () => {
      if (res.writableFinished) return;
      call.callerGone = true;
      this.#stats.abandoned++;
    });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = this.#stats;
      const body = parseProxyRequest(Buffer.concat(chunks));
      const key = body === undefined ? '' : this.#keyOf(body);
      const method = methodOf(body);
      this.perKey.set(key, (this.perKey.get(key) ?? 0) + 1);
      this.#byMethod.set(method, (this.#byMethod.get(method) ?? 0) + 1);
      const fate = originFate(this.#busy, this.#queue.length, this.#limits);
      this.onArrival?.({ atMs, method, key, fate });
      if (fate === 'throttle') {
        s.throttled++;
        send(res, 503, '{"error":"over capacity"}');
      } else if (body === undefined) {
        s.malformed++;
        send(res, 400, '{"error":"not a JSON object"}');
      } else {
        call.req = body;
        call.key = key;
        call.readAt = performance.now();
        if (fate === 'serve') this.#work(call);
        else this.#queue.push(call);
        s.maxInFlight = Math.max(s.maxInFlight, this.inFlight);
      }
    });
  }

  /** work occupies a worker for at least serviceMs, answers, and takes the next waiting call. */
  #work(call: Call): void {
    this.#busy++;
    const s = this.#stats;
    s.maxBusy = Math.max(s.maxBusy, this.#busy);
    const started = performance.now();
    s.maxWaitMs = Math.max(s.maxWaitMs, started - call.readAt);
    this.#finishAfterService(call, started);
  }

  /** finishAfterService completes `call` once serviceMs have passed since `started`. */
  #finishAfterService(call: Call, started: number): void {
    const left = this.#serviceMs - (performance.now() - started);
    if (left > 0) {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.#finishAfterService(call, started);
      }, Math.ceil(left));
      this.#timers.add(timer);
      return;
    }
    const s = this.#stats;
    this.#busy--;
    this.#workMs += performance.now() - started;
    this.#worked++;
    if (call.callerGone || call.res.destroyed) s.wasted++;
    else {
      s.served++;
      send(call.res, 200, JSON.stringify(this.#answer(call.req, call.key)));
    }
    const next = this.#queue.shift();
    if (next) this.#work(next);
  }
}

function send(res: ServerResponse, status: number, body: string): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
