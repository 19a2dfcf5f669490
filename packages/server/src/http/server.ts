/**
 * The node's HTTP server, routing only: whoever composes the node registers request routes
 * (`route`) and upgrade routes (`upgrade`); this file knows none of them. A request no route
 * takes gets 404, an upgrade no route takes a raw 404, and a route that throws a 500.
 *
 * It also bounds how long a connection may hold a file descriptor without a complete request
 * (http_server.headers_timeout, request_timeout, keep_alive_timeout: slow-loris), and tells a
 * {@link SocketWatch} when a connection opens, starts and ends a request, or times out, so
 * admission can count the sockets that wait for a request (protection/pending-sockets.ts).
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { BulwarkError } from '../errors.js';
import { RequestUrl } from './request-url.js';
import { rejectUpgrade, routeFailed, sendJson } from './respond.js';

/**
 * RouteHandler serves a request on its route. Returning false passes it on (e.g. a method the
 * route does not serve): the next matching route, or 404.
 */
export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  url: RequestUrl,
) => void | boolean | Promise<void | boolean>;

/**
 * SocketWatch follows each connection's requests: `connected` on accept, `requestStarted` once
 * a request's headers are complete (request or upgrade), `requestEnded` when its response is
 * sent, `timedOut` when a timeout closes it (408).
 */
export interface SocketWatch {
  connected(socket: Socket): void;
  requestStarted(socket: Socket): void;
  requestEnded(socket: Socket): void;
  timedOut(socket: Socket): void;
}

/** HttpServerOptions are the timeouts of the server (ms; config http_server.*) and who watches its sockets. */
export interface HttpServerOptions {
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  sockets?: SocketWatch;
  /** Serve HTTPS with this certificate chain and key (PEM); plain HTTP without. */
  tls?: TlsFiles;
}

/** TlsFiles are a certificate chain and its private key, PEM-encoded. */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/** Responses to a request that cannot be served (as Node.js answers them without a 'clientError' listener). */
const clientErrorResponses: Readonly<Record<string, string>> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n',
  HPE_HEADER_OVERFLOW: 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n',
};
const badRequestResponse = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n';

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

  readonly #sockets: SocketWatch | undefined;
  /** Tells the socket watch that the response of `this` was sent: one listener for every response. */
  readonly #requestEnded: (this: ServerResponse) => void;

  constructor(log: Logger, options: HttpServerOptions) {
    this.#log = log;
    const sockets = (this.#sockets = options.sockets);
    this.#requestEnded = function (this: ServerResponse): void {
      const socket = this.socket;
      if (socket != null) sockets?.requestEnded(socket);
    };
    const serverOptions = {
      headersTimeout: options.headersTimeout,
      requestTimeout: options.requestTimeout,
      keepAliveTimeout: options.keepAliveTimeout,
      // Node checks the two request timeouts on this period (30 s by default: a 60 s header
      // timeout fired after up to 90 s). A quarter of the header timeout, at most 1 s.
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(options.headersTimeout / 4))),
    };
    const handle = (req: IncomingMessage, res: ServerResponse): void => this.#handle(req, res);
    this.#server =
      options.tls === undefined
        ? createServer(serverOptions, handle)
        : createTlsServer(
            // A TLS handshake that never ends is a slow-loris too: bounded like the headers.
            { ...serverOptions, ...options.tls, handshakeTimeout: options.headersTimeout },
            handle,
          );
    this.#server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      sockets?.requestStarted(socket);
      this.#upgrade(req, socket, head);
    });
    // Requests carry the TLS socket, not the TCP one under it: watch the one they carry.
    if (sockets !== undefined) this.#server.on(options.tls ? 'secureConnection' : 'connection', sockets.connected);
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.#clientError(err, socket));
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

  /** setTls replaces the certificate and key of an HTTPS server (new connections use them). */
  setTls(tls: TlsFiles): void {
    (this.#server as TlsServer).setSecureContext(tls);
  }

  /** listen binds the server; resolves with the bound port and address. */
  listen(port: number, address: string): Promise<{ port: number; address: string }> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const where = `${address || '*'}:${port}`;
        const why =
          err.code === 'EADDRINUSE'
            ? 'the port is in use by another program (choose another with -p or http_server.port)'
            : err.code === 'EACCES'
              ? 'permission denied (ports below 1024 need privileges)'
              : err.message;
        reject(new BulwarkError('BW_ERR_LISTEN', `cannot listen on ${where}: ${why}`, { cause: err }));
      };
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

  /**
   * #clientError answers a request that cannot be served, as Node.js does without a listener
   * (408, 431, 413 or 400, unless a response already began), and tells the socket watch of a
   * timeout.
   */
  #clientError(err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') this.#sockets?.timedOut(socket);
    // `_httpMessage` is the response in flight on this socket, if any (Node's own check).
    const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (socket.writable && (res == null || !res.headersSent)) {
      socket.write(clientErrorResponses[err.code ?? ''] ?? badRequestResponse);
    }
    socket.destroy();
  }

  /**
   * #handle starts a request on the first route that takes it. Synchronous until a route is:
   * a route that answers within the call (the server API's publish on the memory engine) costs
   * no promise here, and only a route that returns a promise is followed by one (issue 18).
   */
  #handle(req: IncomingMessage, res: ServerResponse): void {
    const sockets = this.#sockets;
    if (sockets !== undefined) {
      sockets.requestStarted(req.socket);
      // One shared listener, not a closure per request; first, so that the response still
      // holds its socket (Node's own 'finish' listener detaches it).
      res.prependListener('finish', this.#requestEnded);
    }
    this.#route(req, res, new RequestUrl(req.url ?? '/'), 0);
  }

  /** #route tries the routes from index `from` on, in registration order; none is 404. */
  #route(req: IncomingMessage, res: ServerResponse, url: RequestUrl, from: number): void {
    const path = url.pathname;
    const routes = this.#routes;
    for (let i = from; i < routes.length; i++) {
      const r = routes[i] as Route;
      if (r.prefix ? !path.startsWith(r.path) : path !== r.path) continue;
      let out: ReturnType<RouteHandler>;
      try {
        out = r.handler(req, res, url);
      } catch (err) {
        routeFailed(this.#log, err, res, path);
        return;
      }
      if (out === false) continue;
      if (out !== undefined && out !== true) {
        out.then(
          (taken) => {
            if (taken === false) this.#route(req, res, url, i + 1);
          },
          (err: unknown) => routeFailed(this.#log, err, res, path),
        );
      }
      return;
    }
    sendJson(res, 404, { error: 'not found' });
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
