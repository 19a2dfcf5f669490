/**
 * The server HTTP API transport: `POST /api/<method>` with a JSON body, authorised by
 * `X-API-Key: <key>` or `Authorization: apikey <key>`, answered `{"result": …}` or
 * `{"error": {"code", "message"}}` (HTTP 200, as Centrifugo). Transport problems get HTTP
 * statuses: 401 bad key, 404 unknown method, 405 not POST, 400 malformed JSON, 413 too large.
 *
 * @module
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from '../http-server.js';
import type { Node } from '../node.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import { EngineUnavailableError } from '../engine/errors.js';
import { callApiMethod, isApiMethod } from './methods.js';

function keyMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function apiKeyOf(req: IncomingMessage): string | undefined {
  const header = req.headers['x-api-key'];
  if (typeof header === 'string') return header;
  const auth = req.headers.authorization;
  if (auth && /^apikey\s+/i.test(auth)) return auth.replace(/^apikey\s+/i, '');
  return undefined;
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too_large'> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return 'too_large';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return 'too_large';
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** handleApiRequest serves one server API request. */
export async function handleApiRequest(
  node: Node,
  req: IncomingMessage,
  res: ServerResponse,
  method: string,
): Promise<void> {
  const cfg = node.config.http_api;
  if (!cfg.insecure) {
    const key = apiKeyOf(req);
    if (key === undefined || !keyMatches(key, cfg.key)) {
      node.metrics.apiCommands.inc({ method: 'auth', result: 'unauthorized' });
      sendJson(res, 401, { error: { code: ErrorCode.Unauthorized, message: 'unauthorized' } });
      return;
    }
  }
  if (!isApiMethod(method)) {
    sendJson(res, 404, { error: { code: ErrorCode.MethodNotFound, message: 'method not found' } });
    return;
  }
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    sendJson(res, 405, { error: { code: ErrorCode.BadRequest, message: 'use POST' } });
    return;
  }
  const body = await readBody(req, cfg.max_body_size);
  if (body === 'too_large') {
    sendJson(res, 413, {
      error: { code: ErrorCode.LimitExceeded, message: `body larger than ${cfg.max_body_size} bytes` },
    });
    req.resume();
    return;
  }
  let parsed: unknown = {};
  if (body.length > 0) {
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      node.metrics.apiCommands.inc({ method, result: 'error' });
      sendJson(res, 400, { error: { code: ErrorCode.BadRequest, message: 'malformed JSON body' } });
      return;
    }
  }
  try {
    const result = await callApiMethod(node, method, parsed);
    node.metrics.apiCommands.inc({ method, result: 'ok' });
    sendJson(res, 200, { result });
  } catch (err) {
    node.metrics.apiCommands.inc({ method, result: 'error' });
    if (err instanceof ProtocolError) {
      sendJson(res, 200, { error: { code: err.code, message: err.message } });
      return;
    }
    if (err instanceof EngineUnavailableError) {
      // Nothing was (reliably) done: the caller must retry. Once per burst in the log.
      node.burstLog.error('engine.api', { method, err: err.message }, 'api method failed: engine unavailable');
      sendJson(res, 200, {
        error: { code: ErrorCode.Internal, message: 'engine unavailable, retry later', temporary: true },
      });
      return;
    }
    node.log.error({ err, method }, 'api method failed');
    sendJson(res, 200, { error: { code: ErrorCode.Internal, message: 'internal server error' } });
  }
}
