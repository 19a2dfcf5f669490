/**
 * The team boards' backend for shared poll (board-event's `shared-poll` mode, incident 1): an
 * HTTP server on loopback that answers Bulwark's shared poll refresh proxy in `versioned` mode
 * from the posts the scenario's poster writes to it, and counts what it is asked.
 *
 * Request (docs/SHARED_POLL.md): `POST {"channel", "items": [{"key", "version"}]}` — the keys
 * tracked anywhere in the cluster with the versions Bulwark holds. Answer: `{"result": {"items":
 * [{"key", "data", "version"}]}}` with only the posts newer than the version asked (a post is
 * written once, at version 1): items left out are unchanged, as the protocol allows, so a
 * steady board costs the backend a request and an empty answer per cycle and batch, and a
 * post's data travels once per cycle. Keys of posts not written yet are left out too.
 *
 * Counters: requests, items asked, items answered, bytes answered, and each request's arrival
 * time (`onRequest`, for the timeline), whatever the channel.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** BoardOriginStats are the origin's counters since start (or the last reset). */
export interface BoardOriginStats {
  /** Refresh requests received. */
  requests: number;
  /** Items asked for, over every request. */
  itemsAsked: number;
  /** Items answered with data (new to Bulwark). */
  itemsAnswered: number;
  /** Bytes of answer bodies. */
  bytesAnswered: number;
  /** Requests whose body was not a refresh request (answered 400). */
  malformed: number;
}

/** Post is one item of a board: its data (encoded JSON) and version. */
interface Post {
  data: string;
  version: number;
}

/** parseRefresh reads a refresh request body; undefined when it is not one. */
export function parseRefresh(
  body: string,
): { channel: string; items: Array<{ key: string; version: number }> } | undefined {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return undefined;
  }
  const r = v as { channel?: unknown; items?: unknown };
  if (typeof r.channel !== 'string' || !Array.isArray(r.items)) return undefined;
  const items: Array<{ key: string; version: number }> = [];
  for (const i of r.items as Array<{ key?: unknown; version?: unknown }>) {
    if (typeof i?.key !== 'string') return undefined;
    items.push({ key: i.key, version: typeof i.version === 'number' ? i.version : 0 });
  }
  return { channel: r.channel, items };
}

/**
 * answerRefresh builds the answer body: the posts of `board` newer than the version asked, with
 * their data embedded as written (it is already JSON). Returns the body and how many items it holds.
 */
export function answerRefresh(
  board: ReadonlyMap<string, Post> | undefined,
  items: ReadonlyArray<{ key: string; version: number }>,
): { body: string; answered: number } {
  const parts: string[] = [];
  for (const { key, version } of items) {
    const post = board?.get(key);
    if (post === undefined || post.version <= version) continue;
    parts.push(`{"key":${JSON.stringify(key)},"data":${post.data},"version":${post.version}}`);
  }
  return { body: `{"result":{"items":[${parts.join(',')}]}}`, answered: parts.length };
}

/** BoardOrigin is a counting shared poll backend on 127.0.0.1 and a free port. */
export class BoardOrigin {
  /** Called on every request (its arrival, performance.now() ms, and the items it asked). */
  onRequest: ((atMs: number, items: number) => void) | undefined;

  readonly #boards = new Map<string, Map<string, Post>>();
  readonly #server: Server;
  #stats: BoardOriginStats = { requests: 0, itemsAsked: 0, itemsAnswered: 0, bytesAnswered: 0, malformed: 0 };

  private constructor() {
    this.#server = createServer((req, res) => this.#handle(req, res));
    // Bulwark's proxy reuses its connections between cycles.
    this.#server.keepAliveTimeout = 60_000;
  }

  /** start listens on 127.0.0.1 on a free port. */
  static async start(): Promise<BoardOrigin> {
    const origin = new BoardOrigin();
    await new Promise<void>((resolve, reject) => {
      origin.#server.once('error', reject);
      origin.#server.listen(0, '127.0.0.1', resolve);
    });
    return origin;
  }

  /** url is the refresh endpoint, e.g. `http://127.0.0.1:38211/refresh`. */
  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/refresh`;
  }

  /** post writes item `key` of `channel`'s board (version 1; a rewrite raises it). */
  post(channel: string, key: string, dataJson: string): void {
    let board = this.#boards.get(channel);
    if (board === undefined) this.#boards.set(channel, (board = new Map()));
    board.set(key, { data: dataJson, version: (board.get(key)?.version ?? 0) + 1 });
  }

  /** stats returns a snapshot of the counters. */
  stats(): BoardOriginStats {
    return { ...this.#stats };
  }

  /** reset zeroes the counters (the posts stay). */
  reset(): void {
    this.#stats = { requests: 0, itemsAsked: 0, itemsAnswered: 0, bytesAnswered: 0, malformed: 0 };
  }

  /** close drops every connection and stops listening. */
  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const atMs = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = this.#stats;
      s.requests++;
      const r = parseRefresh(Buffer.concat(chunks).toString('utf8'));
      if (r === undefined) {
        s.malformed++;
        send(res, 400, '{"error":{"code":1000,"message":"not a refresh request"}}');
        return;
      }
      s.itemsAsked += r.items.length;
      this.onRequest?.(atMs, r.items.length);
      const { body, answered } = answerRefresh(this.#boards.get(r.channel), r.items);
      s.itemsAnswered += answered;
      s.bytesAnswered += Buffer.byteLength(body);
      send(res, 200, body);
    });
  }
}

function send(res: ServerResponse, status: number, body: string): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
