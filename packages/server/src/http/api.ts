/**
 * The server HTTP API transport: `POST /api/<method>` with a JSON body, authorised by
 * `X-API-Key: <key>` or `Authorization: apikey <key>`, answered `{"result": …}` or
 * `{"error": {"code", "message"}}` (HTTP 200, as Centrifugo). Transport problems get HTTP
 * statuses: 401 bad key, 404 unknown method, 405 not POST, 400 malformed JSON, 413 too large.
 *
 * @module
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { EngineUnavailableError } from '../engine/errors.js';
import type { Metrics } from '../metrics.js';
import type { BurstLog } from '../protection/burst-log.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import { engineErrorJson } from './api-json.js';
import { callApiMethod, isApiMethod, isRepeatSafe, type ApiContext } from './api-methods.js';
import { sendJson } from './respond.js';
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

/** readBody reads a request body of at most `limit` bytes (declared or sent); more is `too_large`. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too_large'> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return Promise.resolve('too_large');
  // Listeners, not `for await`: the async iterator leaves its end-of-stream listeners on the
  // request, and an HTTP stream's request lives as long as the connection.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (out: Buffer | 'too_large' | Error): void => {
      req.off('data', onData).off('end', onEnd).off('error', done).off('close', onClose);
      if (out instanceof Error) reject(out);
      else resolve(out);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        done('too_large');
      } else chunks.push(chunk);
    };
    const onEnd = (): void => done(Buffer.concat(chunks));
    const onClose = (): void => done(new Error('request closed before its body was read'));
    req.on('data', onData).on('end', onEnd).on('error', done).on('close', onClose);
  });
}

/** apiRoute serves the server API (registered at `/api` and `/api/*`). */
export function apiRoute(transport: ApiTransportContext, ctx: ApiContext): RouteHandler {
  return async (req, res, url) => {
    const method = url.pathname.slice(apiPrefix.length);
    const cfg = transport.config.http_api;
    if (!cfg.insecure) {
      const key = apiKeyOf(req);
      if (key === undefined || !keyMatches(key, cfg.key)) {
        transport.metrics.apiCommands.inc({ method: 'auth', result: 'unauthorized' });
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
        transport.metrics.apiCommands.inc({ method, result: 'error' });
        sendJson(res, 400, { error: { code: ErrorCode.BadRequest, message: 'malformed JSON body' } });
        return;
      }
    }
    const started = performance.now();
    try {
      const result = await callApiMethod(ctx, method, parsed);
      transport.metrics.apiCommands.inc({ method, result: 'ok' });
      sendJson(res, 200, { result });
    } catch (err) {
      transport.metrics.apiCommands.inc({ method, result: 'error' });
      if (err instanceof ProtocolError) {
        sendJson(res, 200, { error: { code: err.code, message: err.message } });
        return;
      }
      if (err instanceof EngineUnavailableError) {
        // Temporary when nothing was done (or doing it again changes nothing), else "outcome
        // unknown" (see engineErrorJson). Once per burst in the log.
        transport.burstLog.error('engine.api', { method, err: err.message }, 'api method failed: engine unavailable');
        sendJson(res, 200, { error: engineErrorJson(err, isRepeatSafe(method, parsed)) });
        return;
      }
      transport.log.error({ err, method }, 'api method failed');
      sendJson(res, 200, { error: { code: ErrorCode.Internal, message: 'internal server error' } });
    } finally {
      transport.metrics.apiCommand(method, started);
    }
  };
}
