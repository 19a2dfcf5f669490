/**
 * A game backend with a fixed capacity, answering Bulwark's RPC proxy: the origin of the
 * `retry-storm` scenario (incident 4, where a storage service throttled under 10× the expected
 * requests).
 *
 * It degrades the way a real backend does rather than failing cleanly:
 * - `concurrency` workers each spend `serviceMs` on a call: capacity = concurrency × 1000 /
 *   serviceMs calls per second;
 * - over that, calls wait in a FIFO queue (latency grows) of at most `queueLimit` calls;
 * - past the queue it throttles: HTTP 503 at once (as Azure Storage did in the incident),
 *   which Bulwark's proxy turns into error 100 (temporary) for the client;
 * - a call whose caller went away (Bulwark's proxy timeout aborted the request) is still
 *   served when its turn comes — a backend does not know nobody waits for the answer — and
 *   counted as `wasted`: work that costs capacity and helps no one.
 *
 * The proxy request body is read for its `method` so calls are counted per RPC method.
 *
 * @module
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** RpcOriginOptions size the backend. */
export interface RpcOriginOptions {
  /** Calls worked on at once. */
  concurrency: number;
  /** Work per call, ms. */
  serviceMs: number;
  /** Calls that may wait for a worker; past it the origin answers 503. */
  queueLimit: number;
}

/** OriginFate is what the origin does with an arriving call. */
export type OriginFate = 'serve' | 'queue' | 'throttle';

/**
 * originFate decides an arriving call's fate from the workers busy and the calls waiting:
 * served at once while a worker is free, queued while the queue has room, else throttled.
 */
export function originFate(busy: number, queued: number, opts: RpcOriginOptions): OriginFate {
  if (busy < opts.concurrency) return 'serve';
  if (queued < opts.queueLimit) return 'queue';
  return 'throttle';
}

/** originCapacity is the calls per second `concurrency` workers of `serviceMs` each complete. */
export function originCapacity(concurrency: number, serviceMs: number): number {
  return (concurrency * 1000) / serviceMs;
}

/** RpcOriginStats are the origin's counters since start. */
export interface RpcOriginStats {
  /** Calls received (served, queued or throttled). */
  arrivals: number;
  /** Calls answered 200 after their work. */
  served: number;
  /** Calls answered 503 at once. */
  throttled: number;
  /** Calls served after their caller had gone away. */
  wasted: number;
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
  arrivalsByMethod: Record<string, number>;
}

/** A call waiting for a worker. */
interface Waiting {
  res: ServerResponse;
  method: string;
  arrivedAt: number;
  callerGone: boolean;
}

/** RpcOrigin is the capacity-limited backend on 127.0.0.1 and a free port. */
export class RpcOrigin {
  readonly #opts: RpcOriginOptions;
  readonly #server: Server;
  readonly #queue: Waiting[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #byMethod = new Map<string, number>();
  #busy = 0;
  #stats = { arrivals: 0, served: 0, throttled: 0, wasted: 0, maxInFlight: 0, maxBusy: 0, maxWaitMs: 0 };
  #workMs = 0;
  #worked = 0;

  private constructor(
    opts: RpcOriginOptions,
    /** Called on every arrival with the call's method and fate (for timelines). */
    private readonly onArrival: (method: string, fate: OriginFate) => void,
  ) {
    if (!(opts.concurrency >= 1) || !(opts.serviceMs > 0) || !(opts.queueLimit >= 0)) {
      throw new TypeError(`rpc origin: bad options ${JSON.stringify(opts)}`);
    }
    this.#opts = { ...opts };
    this.#server = createServer((req, res) => this.#handle(req, res));
    this.#server.keepAliveTimeout = 30_000;
  }

  /** start listens on 127.0.0.1 on a free port. */
  static async start(
    opts: RpcOriginOptions,
    onArrival: (method: string, fate: OriginFate) => void = () => undefined,
  ): Promise<RpcOrigin> {
    const origin = new RpcOrigin(opts, onArrival);
    await new Promise<void>((resolve, reject) => {
      origin.#server.once('error', reject);
      origin.#server.listen(0, '127.0.0.1', resolve);
    });
    return origin;
  }

  /** url is the base address, e.g. `http://127.0.0.1:38211`. */
  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** capacity is the calls per second the origin completes when saturated. */
  get capacity(): number {
    return originCapacity(this.#opts.concurrency, this.#opts.serviceMs);
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
      arrivalsByMethod: Object.fromEntries(this.#byMethod),
    };
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
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const method = methodOf(Buffer.concat(chunks));
      const s = this.#stats;
      s.arrivals++;
      this.#byMethod.set(method, (this.#byMethod.get(method) ?? 0) + 1);
      const fate = originFate(this.#busy, this.#queue.length, this.#opts);
      this.onArrival(method, fate);
      if (fate === 'throttle') {
        s.throttled++;
        reply(res, 503, '{"error":"server busy"}');
        return;
      }
      const call: Waiting = { res, method, arrivedAt: performance.now(), callerGone: false };
      res.once('close', () => {
        if (!res.writableFinished) call.callerGone = true;
      });
      if (fate === 'serve') this.#work(call);
      else this.#queue.push(call);
      s.maxInFlight = Math.max(s.maxInFlight, this.inFlight);
    });
  }

  /** work occupies a worker for serviceMs, answers, and takes the next waiting call. */
  #work(call: Waiting): void {
    this.#busy++;
    const s = this.#stats;
    s.maxBusy = Math.max(s.maxBusy, this.#busy);
    const started = performance.now();
    s.maxWaitMs = Math.max(s.maxWaitMs, started - call.arrivedAt);
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#busy--;
      this.#workMs += performance.now() - started;
      this.#worked++;
      if (call.callerGone || call.res.destroyed) s.wasted++;
      else {
        s.served++;
        reply(call.res, 200, `{"result":{"data":{"method":${JSON.stringify(call.method)},"ok":true}}}`);
      }
      const next = this.#queue.shift();
      if (next) this.#work(next);
    }, this.#opts.serviceMs);
    this.#timers.add(timer);
  }
}

/** methodOf reads the `method` of a proxy RPC request body; '' when absent or unreadable. */
export function methodOf(body: Buffer): string {
  try {
    const m = (JSON.parse(body.toString('utf8')) as { method?: unknown }).method;
    return typeof m === 'string' ? m : '';
  } catch {
    return '';
  }
}

function reply(res: ServerResponse, status: number, body: string): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
