/**
 * The node's HTTP surface, registered on the routing servers: the server API, the probes and
 * /metrics (on the internal port when one is configured), the WebSocket endpoint, the enabled transports beside it (HTTP-streaming, SSE, the unidirectional
 * WebSocket, HTTP-streaming and SSE, and /emulation when a bidirectional one is on) and, when
 * enabled, the demo. A transport that is off is not routed: 404.
 *
 * @module
 */
import { registerAdmin, type AdminContext } from '../http/admin.js';
import { apiPrefix, apiRoute, type ApiTransportContext } from '../http/api.js';
import { emulationPath, emulationRoute, type EmulationContext } from '../http/emulation.js';
import { streamPaths, streamingRoute, type StreamKind, type StreamingContext } from '../http/streaming.js';
import type { ApiCluster, ApiNode } from '../http/api-methods.js';
import { demoClient, demoPage, demoToken } from '../http/demo.js';
import { health, metrics, readiness, type ReadinessContext } from '../http/probes.js';
import { HttpServer, type TlsFiles } from '../http/server.js';
import { readTlsFiles } from './tls-files.js';
import type { Admission } from '../protection/admission.js';
import { UniWebSocketEndpoint, uniWebsocketPath } from '../http/uni-websocket.js';
import { WebSocketEndpoint, upgradeRequired, websocketPath, type WebSocketContext } from '../http/websocket.js';

/**
 * NodeHttpContext is what the node's HTTP surface needs from the node: the API transport's,
 * the API methods', readiness and the WebSocket endpoint's needs. Its config also says which
 * routes exist (health.enabled, prometheus.enabled, demo.enabled).
 */
export type NodeHttpContext = ApiTransportContext &
  ApiNode &
  AdminContext &
  ReadinessContext &
  WebSocketContext &
  StreamingContext &
  EmulationContext & {
    /** Admission, with the HTTP connections waiting for a request that the server reports to it. */
    readonly admission: Pick<Admission, 'pending'>;
  };

/** NodeHttpServers are the node's listeners: the public one, and the internal one when configured. */
export interface NodeHttpServers {
  readonly public: HttpServer;
  /** Serves the API, metrics and probes when http_server.internal_port is set. */
  readonly internal: HttpServer | undefined;
}

/**
 * nodeHttpServers makes the node's HTTP servers with their routes registered: clients'
 * endpoints on the public one, and the operators' (server API, /metrics, /health, /ready) on
 * the internal one when http_server.internal_port is set, else on the public one too.
 */
export function nodeHttpServers(node: NodeHttpContext, cluster: ApiCluster): NodeHttpServers {
  const cfg = node.config;
  const server = (tls?: TlsFiles): HttpServer =>
    new HttpServer(node.log, {
      headersTimeout: cfg.http_server.headers_timeout,
      requestTimeout: cfg.http_server.request_timeout,
      keepAliveTimeout: cfg.http_server.keep_alive_timeout,
      sockets: node.admission.pending,
      ...(tls !== undefined ? { tls } : {}),
    });
  const http = server(readTlsFiles(cfg));
  const internal = cfg.http_server.internal_port !== 0 ? server() : undefined;
  const ops = internal ?? http;
  const api = apiRoute(node, { node, cluster });
  ops.route(apiPrefix.slice(0, -1), api).route(`${apiPrefix}*`, api);
  if (cfg.health.enabled) ops.route('/health', health).route('/ready', readiness(node));
  if (cfg.prometheus.enabled) ops.route('/metrics', metrics(node.metrics.registry));
  if (cfg.admin.enabled) registerAdmin(ops, node, { node, cluster });
  const ws = new WebSocketEndpoint(node);
  http.route(websocketPath, upgradeRequired).upgrade(websocketPath, ws.upgrade);
  for (const kind of Object.keys(streamPaths) as StreamKind[]) {
    if (cfg[kind].enabled) http.route(streamPaths[kind], streamingRoute(node, kind));
  }
  if (cfg.http_stream.enabled || cfg.sse.enabled) http.route(emulationPath, emulationRoute(node));
  if (cfg.uni_websocket.enabled) {
    const uni = new UniWebSocketEndpoint(node);
    http.route(uniWebsocketPath, upgradeRequired).upgrade(uniWebsocketPath, uni.upgrade);
  }
  if (cfg.demo.enabled) {
    const hmacSecret = cfg.client.token.hmac_secret_key;
    http.route('/', demoPage).route('/demo/centrifuge.js', demoClient).route('/demo/token', demoToken({ hmacSecret }));
  }
  return { public: http, internal };
}
