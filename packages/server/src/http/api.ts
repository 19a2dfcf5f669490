/**
 * The server HTTP API transport: `POST /api/<method>` with a JSON body, authorised by
 * `X-API-Key: <key>` or `Authorization: apikey <key>`, answered `{"result": …}` or
 * `{"error": {"code", "message"}}` (HTTP 200, as Centrifugo); `POST /api/batch` (api-batch.ts)
 * and `POST /api` with newline-delimited commands (api-pipeline.ts) carry several. Transport
 * problems get HTTP statuses: 401 bad key, 404 unknown method, 405 not POST, 400 malformed
 * JSON, 413 too large.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { BurstLog } from '../protection/burst-log.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import { batchMethod, runBatch } from './api-batch.js';
import { methodNotFound, outcomeJson, runApiCommand, runApiCommandNow } from './api-call.js';
import { isApiMethod, notNow, type ApiContext, type ApiMethod } from './api-methods.js';
import { runPipeline } from './api-pipeline.js';
import { collectBody } from './request-body.js';
import { routeFailed, sendJson, sendJsonText } from './respond.js';
import type { RouteHandler } from './server.js';

/** The path prefix of the API: `/api/<method>`. */
export const apiPrefix = '/api/';

/** ApiTransportContext is what the API transport needs from its node, beside the methods' context. */
export interface ApiTransportContext {
  /** http_api.* (key, insecure, max_body_size). */
  readonly config: Readonly<Config>;
  readonly metrics: Pick<Metrics, 'apiCommands' | 'apiCommand'>;
  readonly burstLog: Pick<BurstLog, 'error'>;
  readonly log: Logger;
}

/**
 * keyMatches compares a request's key with the configured one in a time that depends on their
 * lengths only. Strings, not their UTF-8 bytes: equal strings are equal bytes, and a Buffer
 * and timingSafeEqual per request cost more than the comparison (issue 18).
 */
function keyMatches(given: string, expected: string): boolean {
  if (given.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < given.length; i++) diff |= given.charCodeAt(i) ^ expected.charCodeAt(i);
  return diff === 0;
}

function apiKeyOf(req: IncomingMessage): string | undefined {
  const header = req.headers['x-api-key'];
  if (typeof header === 'string') return header;
  const auth = req.headers.authorization;
  if (auth && /^apikey\s+/i.test(auth)) return auth.replace(/^apikey\s+/i, '');
  return undefined;
}

/** apiRoute serves the server API (registered at `/api` and `/api/*`). */
export function apiRoute(transport: ApiTransportContext, ctx: ApiContext): RouteHandler {
  const cfg = transport.config.http_api;
  const expectedKey = cfg.key;
  const { metrics, log } = transport;
  return (req, res, url) => {
    const method = url.pathname.slice(apiPrefix.length);
    if (!cfg.insecure) {
      const key = apiKeyOf(req);
      if (key === undefined || !keyMatches(key, expectedKey)) {
        metrics.apiCommands.inc({ method: 'auth', result: 'unauthorized' });
        sendJson(res, 401, { error: { code: ErrorCode.Unauthorized, message: 'unauthorized' } });
        return;
      }
    }
    // `/api` itself (with or without the slash) is the newline-delimited form.
    if (method !== '' && method !== batchMethod && !isApiMethod(method)) {
      sendJson(res, 404, { error: methodNotFound });
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      sendJson(res, 405, { error: { code: ErrorCode.BadRequest, message: 'use POST' } });
      return;
    }
    // The rest runs when the body has ended: a callback, no promise, so that a command that
    // completes synchronously (publish on the memory engine) is answered within the body's
    // 'end' (issue 18). What throws or rejects from here is answered 500, as the router would.
    collectBody(req, cfg.max_body_size, (body) => {
      try {
        const pending = answer(transport, ctx, res, method, body);
        if (pending !== undefined) pending.catch((err: unknown) => routeFailed(log, err, res, url.pathname));
      } catch (err) {
        routeFailed(log, err, res, url.pathname);
      }
      if (body === 'too_large') req.resume();
    });
  };
}

/** bodyText is a collected body as text. */
function bodyText(body: Buffer | readonly Buffer[]): string {
  return (Buffer.isBuffer(body) ? body : Buffer.concat(body)).toString('utf8');
}

/**
 * answer answers an API request whose body was read: synchronously when its command completes
 * within the call, else when the returned promise settles.
 */
function answer(
  transport: ApiTransportContext,
  ctx: ApiContext,
  res: ServerResponse,
  method: string,
  body: Buffer | readonly Buffer[] | 'too_large',
): Promise<void> | undefined {
  const cfg = transport.config.http_api;
  if (body === 'too_large') {
    sendJson(res, 413, {
      error: { code: ErrorCode.LimitExceeded, message: `body larger than ${cfg.max_body_size} bytes` },
    });
    return undefined;
  }
  if (method === '') {
    return runPipeline(transport, ctx, bodyText(body)).then((out) => sendJsonText(res, out.status, out.body));
  }
  let parsed: unknown = {};
  const text = bodyText(body);
  if (text.length > 0) {
    try {
      parsed = JSON.parse(text);
    } catch {
      transport.metrics.apiCommands.inc({ method, result: 'error' });
      sendJson(res, 400, { error: { code: ErrorCode.BadRequest, message: 'malformed JSON body' } });
      return undefined;
    }
  }
  if (method === batchMethod) {
    return runBatch(transport, ctx, parsed).then(
      (replies) => {
        transport.metrics.apiCommands.inc({ method, result: 'ok' });
        sendJson(res, 200, replies);
      },
      (err: unknown) => {
        // Only the batch as a whole throws (bad body, too many commands): nothing ran.
        if (!(err instanceof ProtocolError)) throw err;
        transport.metrics.apiCommands.inc({ method, result: 'error' });
        sendJson(res, 200, { error: err.toWire() });
      },
    );
  }
  const m = method as ApiMethod;
  const now = runApiCommandNow(transport, ctx, m, parsed);
  if (now !== notNow) {
    sendJsonText(res, 200, outcomeJson(now));
    return undefined;
  }
  return runApiCommand(transport, ctx, m, parsed).then((out) => sendJsonText(res, 200, outcomeJson(out)));
}
