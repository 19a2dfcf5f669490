/**
 * Cross-origin requests to the HTTP transports (HTTP-streaming, SSE, /emulation): a browser
 * page on another origin may use them only when client.allowed_origins allows its Origin (the
 * same check as a WebSocket upgrade). An allowed origin is echoed back with credentials
 * allowed, as Centrifugo answers; a refused one gets 403. A preflight (OPTIONS) is answered
 * here, 200 without a body.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Metrics } from '../metrics.js';
import { sendJson } from './respond.js';
import type { OriginCheck } from './websocket.js';

/**
 * corsGate checks the Origin of `req` and sets the CORS headers on `res`. Returns true when the
 * request goes on; false when it was answered (a refused origin, or a preflight).
 */
export function corsGate(
  req: IncomingMessage,
  res: ServerResponse,
  origins: OriginCheck,
  metrics: Pick<Metrics, 'reject'>,
): boolean {
  if (!origins.allows(req)) {
    metrics.reject('origin');
    sendJson(res, 403, { error: 'origin not allowed' });
    return false;
  }
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== '') {
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('access-control-allow-credentials', 'true');
    res.setHeader('vary', 'Origin');
  }
  if (req.method !== 'OPTIONS') return true;
  res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
  const asked = req.headers['access-control-request-headers'];
  if (typeof asked === 'string' && asked !== '' && asked !== 'null')
    res.setHeader('access-control-allow-headers', asked);
  res.writeHead(200, { 'content-length': 0 });
  res.end();
  return false;
}
