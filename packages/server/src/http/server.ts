/**
 * The node's HTTP server, routing only: whoever composes the node registers request routes
 * (`route`) and upgrade routes (`upgrade`); this file knows none of them. A request no route
 * takes gets 404, an upgrade no route takes a raw 404, and a route that throws a 500.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { BulwarkError } from '../errors.js';
import { rejectUpgrade, sendJson } from './respond.js';

/**
 * RouteHandler serves a request on its route. Returning false passes it on (e.g. a method the
 * route does not serve): the next matching route, or 404.
 */
export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
) => void | boolean | Promise<void | boolean>;

/** UpgradeHandler takes an upgrade request on its path (`path` without the query). */
export type UpgradeHandler = (req: IncomingMessage, socket: Socket, head: Buffer) => void;

interface Route {
  /** The exact path, or with `prefix` every path starting with it. */
  path: string;
  prefix: boolean;
  handler: RouteHandler;
}

/** HttpServer routes one node's HTTP requests and WebSocket upgrades to registered handlers. */
export class HttpServer {
  readonly #log: Logger;
  readonly #server: Server;
  readonly #routes: Route[] = [];
  readonly #upgrades = new Map<string, UpgradeHandler>();

  constructor(log: Logger) {
    this.#log = log;
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
      this.#upgrade(req, socket, head),
    );
  }

  /**
   * route registers a request handler: `path` is exact, or a prefix when it ends with `*`
   * (`/api/*` takes `/api/publish`). Routes are tried in registration order.
   */
  route(path: string, handler: RouteHandler): this {
    const prefix = path.endsWith('*');
    this.#routes.push({ path: prefix ? path.slice(0, -1) : path, prefix, handler });
    return this;
  }

  /** upgrade registers the handler of upgrade requests on exactly `path`. */
  upgrade(path: string, handler: UpgradeHandler): this {
    this.#upgrades.set(path, handler);
    return this;
  }

  /** listen binds the server; resolves with the bound port and address. */
  listen(port: number, address: string): Promise<{ port: number; address: string }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) =>
        reject(
          new BulwarkError('BW_ERR_LISTEN', `cannot listen on ${address || '*'}:${port}: ${err.message}`, {
            cause: err,
          }),
        );
      this.#server.once('error', onError);
      this.#server.listen(port, address || undefined, () => {
        this.#server.off('error', onError);
        const a = this.#server.address() as AddressInfo;
        resolve({ port: a.port, address: a.address });
      });
    });
  }

  /** close stops accepting and closes idle HTTP connections. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    try {
      for (const r of this.#routes) {
        if (r.prefix ? !path.startsWith(r.path) : path !== r.path) continue;
        if ((await r.handler(req, res, url)) !== false) return;
      }
      sendJson(res, 404, { error: 'not found' });
    } catch (err) {
      this.#log.error({ err, path }, 'http handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal server error' });
      else res.destroy();
    }
  }

  #upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    // A plain split, not WHATWG URL parsing: this runs for every connection attempt.
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const handler = this.#upgrades.get(q === -1 ? rawUrl : rawUrl.slice(0, q));
    if (handler === undefined) rejectUpgrade(socket, 404, 'Not Found');
    else handler(req, socket, head);
  }
}
