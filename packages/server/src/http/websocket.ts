/**
 * The WebSocket transport's HTTP side: the upgrade at /connection/websocket — admission,
 * origin check, handshake — and accepting the connection as a client session.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { SessionContext } from '../client/context.js';
import { ClientSession } from '../client/session.js';
import type { Admission } from '../protection/admission.js';
import type { Codec } from '../protocol/codec.js';
import { DisconnectCode, disconnect } from '../protocol/codes.js';
import { jsonCodec } from '../protocol/json-codec.js';
import { protobufCodec } from '../protocol/protobuf-codec.js';
import type { Transport } from '../transport/transport.js';
import { WebSocketTransport } from '../transport/transport-ws.js';
import { originMatches, parseOrigin, parseOriginPattern, sameOrigin, type OriginPattern } from '../util/origin.js';
import { rejectUpgrade, sendJson } from './respond.js';

/** The WebSocket endpoint path, as Centrifugo serves it. */
export const websocketPath = '/connection/websocket';

/** The WebSocket subprotocols that name a format, as the Centrifugo SDKs offer them. */
const protobufSubprotocol = 'centrifuge-protobuf';
const jsonSubprotocol = 'centrifuge-json';

/**
 * chooseSubprotocol picks the format subprotocol a client offers (Protobuf first); a client
 * offering neither gets none, and speaks JSON unless its URL says `format=protobuf`.
 */
function chooseSubprotocol(offered: Set<string>): string | false {
  if (offered.has(protobufSubprotocol)) return protobufSubprotocol;
  if (offered.has(jsonSubprotocol)) return jsonSubprotocol;
  return false;
}

/**
 * codecOf is the format of an accepted WebSocket: the `centrifuge-protobuf` subprotocol (the
 * JavaScript SDK) or `?format=protobuf` in the URL (the Go, Swift, Java, Dart and C# SDKs).
 */
function codecOf(ws: WebSocket, url: string | undefined): Codec {
  if (ws.protocol === protobufSubprotocol) return protobufCodec;
  const q = url?.indexOf('?') ?? -1;
  if (q >= 0 && new URLSearchParams((url as string).slice(q + 1)).get('format') === 'protobuf') return protobufCodec;
  return jsonCodec;
}

/**
 * WebSocketContext is what the WebSocket endpoint needs from its node: the node as its
 * sessions see it (config websocket.* and client.allowed_origins, metrics, log, and proxies,
 * whose http_headers the sessions keep), and admission.
 */
export interface WebSocketContext extends SessionContext {
  /** Accepts or refuses each upgrade, and counts the open connections. */
  readonly admission: Pick<Admission, 'admit' | 'opened' | 'closed'>;
}

/** WebSocketEndpoint takes the upgrades of one node. */
export class WebSocketEndpoint {
  readonly #ctx: WebSocketContext;
  readonly #wss: WebSocketServer;
  readonly #origins: OriginCheck;

  constructor(ctx: WebSocketContext) {
    this.#ctx = ctx;
    const cfg = ctx.config;
    this.#origins = new OriginCheck(cfg.client.allowed_origins);
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: cfg.websocket.message_size_limit,
      perMessageDeflate: cfg.websocket.compression,
      clientTracking: false,
      handleProtocols: chooseSubprotocol,
    });
  }

  /** upgrade takes one upgrade request on the WebSocket path. */
  readonly upgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    if (!admitUpgrade(this.#ctx, this.#origins, req, socket)) return;
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, req, socket));
  };

  #accept(ws: WebSocket, req: IncomingMessage, socket: Socket): void {
    const wsCfg = this.#ctx.config.websocket;
    const codec = codecOf(ws, req.url);
    const transport = new WebSocketTransport(ws, wsCfg.compression ? undefined : socket, wsCfg.close_timeout, codec);
    const session = openWebSocketSession(this.#ctx, ws, req, transport);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      // JSON frames are text, Protobuf frames binary: the other kind is the other format (3506).
      if (isBinary !== codec.binary) session.disconnect(disconnect(DisconnectCode.InappropriateProtocol));
      else session.handleFrame(data);
    });
  }
}

/**
 * admitUpgrade decides an upgrade before any per-connection work: admission first (draining,
 * connection count, accept rate; a refusal is a prepared 503 written to the raw socket), then
 * the origin (403). Every WebSocket endpoint goes through it.
 */
export function admitUpgrade(
  ctx: WebSocketContext,
  origins: OriginCheck,
  req: IncomingMessage,
  socket: Socket,
): boolean {
  if (!ctx.admission.admit(socket)) return false;
  if (origins.allows(req)) return true;
  ctx.metrics.reject('origin');
  rejectUpgrade(socket, 403, 'Forbidden');
  return false;
}

/**
 * openWebSocketSession makes the client session of an accepted WebSocket and ties it to the
 * socket's life: counted by admission from here until the WebSocket closes ('close' is emitted
 * exactly once, also after 'error'), so the count includes sessions that have not connected
 * yet, and counted by transport in bulwark_transport_connections_total.
 */
export function openWebSocketSession(
  ctx: WebSocketContext,
  ws: WebSocket,
  req: IncomingMessage,
  transport: Transport,
): ClientSession {
  const admission = ctx.admission;
  admission.opened();
  ctx.metrics.transportConnections.inc({ transport: transport.name });
  const session = new ClientSession(ctx, transport, forwardedHeaders(req, ctx.proxies.forwardedHeaders));
  ws.on('close', () => {
    admission.closed();
    session.onTransportClose();
  });
  ws.on('error', (err: Error) => {
    ctx.log.debug({ err: err.message, client: session.id, transport: transport.name }, 'websocket error');
    session.onTransportClose();
  });
  return session;
}

/** upgradeRequired answers a plain request on the WebSocket path (426). */
export function upgradeRequired(_req: IncomingMessage, res: ServerResponse): void {
  sendJson(res, 426, { error: 'use a WebSocket upgrade on this path' });
}

/**
 * forwardedHeaders keeps the upgrade request headers that proxies forward (their http_headers),
 * so a connection holds nothing of its request when no proxy forwards any.
 */
export function forwardedHeaders(req: IncomingMessage, names: readonly string[]): Record<string, string> | undefined {
  if (names.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const name of names) {
    const v = req.headers[name];
    if (v !== undefined) out[name] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/**
 * OriginCheck decides a browser's Origin header against client.allowed_origins (patterns
 * parsed once). Requests without Origin (SDKs outside a browser) pass; a browser page must be
 * same-origin — same scheme, host and port as the request — or match a pattern (`*` allows
 * all, `https://*.example.com` any subdomain). Origins are parsed (util/origin.ts), never
 * matched as raw strings.
 */
export class OriginCheck {
  readonly #any: boolean;
  readonly #patterns: OriginPattern[] = [];

  /** Parses the patterns; an invalid one (config validation refuses them) matches nothing. */
  constructor(allowed: readonly string[]) {
    for (const p of allowed) {
      const parsed = parseOriginPattern(p);
      if (typeof parsed !== 'string') this.#patterns.push(parsed);
    }
    this.#any = this.#patterns.some((p) => p.any);
  }

  /** allows tells whether the upgrade request `req` may connect from its Origin. */
  allows(req: IncomingMessage): boolean {
    const header = req.headers.origin;
    if (header === undefined || header === '') return true;
    if (this.#any) return true;
    const origin = parseOrigin(header);
    if (origin === undefined) return false;
    if (sameOrigin(origin, requestScheme(req), req.headers.host)) return true;
    return this.#patterns.some((p) => originMatches(origin, p));
  }
}

/**
 * requestScheme is the scheme the browser used to reach this node: the first
 * X-Forwarded-Proto value when a proxy in front terminates TLS (a browser cannot set that
 * header on a WebSocket), else https on a TLS socket, else http.
 */
function requestScheme(req: IncomingMessage): string {
  const forwarded = req.headers['x-forwarded-proto'];
  if (typeof forwarded === 'string' && forwarded !== '') {
    const first = forwarded.split(',')[0]?.trim().toLowerCase() ?? '';
    if (first === 'https' || first === 'wss') return 'https';
    if (first === 'http' || first === 'ws') return 'http';
  }
  return (req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
}
