/**
 * The node's HTTP server: WebSocket upgrades at /connection/websocket, the server API at
 * /api/<method>, /health, /ready, /metrics, and the demo page when enabled.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { handleApiRequest } from './api/http-api.js';
import { ClientSession } from './client/session.js';
import { handleDemoRequest } from './demo.js';
import { BulwarkError } from './errors.js';
import { DisconnectCode, disconnect } from './protocol/codes.js';
import type { Node } from './node.js';
import { writeRawResponse } from './protection/admission.js';
import { WebSocketTransport } from './transport/transport-ws.js';

/** The WebSocket endpoint path, as Centrifugo serves it. */
export const websocketPath = '/connection/websocket';

/** HttpServer serves one node's HTTP endpoints. */
export class HttpServer {
  readonly #node: Node;
  readonly #server: Server;
  readonly #wss: WebSocketServer;

  constructor(node: Node) {
    this.#node = node;
    const cfg = node.config;
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: cfg.websocket.message_size_limit,
      perMessageDeflate: cfg.websocket.compression,
      clientTracking: false,
    });
    this.#server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
      this.#upgrade(req, socket, head),
    );
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
    const node = this.#node;
    const cfg = node.config;
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    try {
      if (path.startsWith('/api/') || path === '/api') {
        await handleApiRequest(node, req, res, path.slice('/api/'.length));
        return;
      }
      if (cfg.health.enabled && path === '/health' && req.method === 'GET') {
        sendJson(res, 200, {});
        return;
      }
      if (cfg.health.enabled && path === '/ready' && req.method === 'GET') {
        const ready = node.ready;
        sendJson(res, ready ? 200 : 503, {
          ready,
          draining: node.draining,
          ...(ready || node.draining ? {} : { engine: 'unavailable' }),
        });
        return;
      }
      if (cfg.prometheus.enabled && path === '/metrics' && req.method === 'GET') {
        const body = await node.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': node.metrics.registry.contentType });
        res.end(body);
        return;
      }
      if (path === websocketPath) {
        sendJson(res, 426, { error: 'use a WebSocket upgrade on this path' });
        return;
      }
      if (cfg.demo.enabled && (await handleDemoRequest(node, req, res, url))) return;
      sendJson(res, 404, { error: 'not found' });
    } catch (err) {
      node.log.error({ err, path }, 'http handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal server error' });
      else res.destroy();
    }
  }

  #upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const node = this.#node;
    // A plain split, not WHATWG URL parsing: this runs for every connection attempt.
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
    if (path !== websocketPath) {
      rejectUpgrade(socket, 404, 'Not Found');
      return;
    }
    // Admission first (draining, connection count, accept rate): a refusal is a prepared 503
    // written to the raw socket, before any per-connection work, origin check included.
    if (!node.admission.admit(socket)) return;
    if (!originAllowed(req, node.config.client.allowed_origins)) {
      node.metrics.reject('origin');
      rejectUpgrade(socket, 403, 'Forbidden');
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, req, socket));
  }

  #accept(ws: WebSocket, req: IncomingMessage, socket: Socket): void {
    const node = this.#node;
    // Counted from here until the WebSocket closes ('close' is emitted exactly once, also after
    // 'error'), so admission's count includes sessions that have not sent connect yet.
    const admission = node.admission;
    admission.opened();
    const transport = new WebSocketTransport(ws, node.config.websocket.compression ? undefined : socket);
    const session = new ClientSession(node, transport, forwardedHeaders(req, node.proxies.forwardedHeaders));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      // JSON frames are text; a binary frame means the protobuf format, not spoken here yet.
      if (isBinary) session.disconnect(disconnect(DisconnectCode.InappropriateProtocol));
      else session.handleFrame(data.toString('utf8'));
    });
    // One listener for both: ws 'close' comes exactly once, also after 'error'.
    ws.on('close', () => {
      admission.closed();
      session.onTransportClose();
    });
    ws.on('error', (err: Error) => {
      node.log.debug({ err: err.message, client: session.id }, 'websocket error');
      session.onTransportClose();
    });
  }
}

/**
 * forwardedHeaders keeps the upgrade request headers that proxies forward (their http_headers),
 * so a connection holds nothing of its request when no proxy forwards any.
 */
function forwardedHeaders(req: IncomingMessage, names: readonly string[]): Record<string, string> | undefined {
  if (names.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const name of names) {
    const v = req.headers[name];
    if (v !== undefined) out[name] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/**
 * originAllowed checks a browser's Origin header. Requests without Origin (SDKs outside a
 * browser) pass; a browser page must be same-origin or listed in client.allowed_origins
 * (`*` allows all, `*.example.com` a wildcard).
 */
export function originAllowed(req: IncomingMessage, allowed: readonly string[]): boolean {
  const origin = req.headers.origin;
  if (!origin) return true;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  if (host === req.headers.host) return true;
  const lower = origin.toLowerCase();
  return allowed.some((pattern) => {
    if (pattern === '*') return true;
    const p = pattern.toLowerCase();
    if (!p.includes('*')) return p === lower;
    const re = new RegExp('^' + p.split('*').map(escapeRegExp).join('[^/]*') + '$');
    return re.test(lower);
  });
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function rejectUpgrade(socket: Socket, status: number, text: string): void {
  writeRawResponse(socket, `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** sendJson writes a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
