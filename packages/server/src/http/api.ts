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
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { BurstLog } from '../protection/burst-log.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import { batchMethod, runBatch } from './api-batch.js';
import { methodNotFound, runApiCommand } from './api-call.js';
import { isApiMethod, type ApiContext } from './api-methods.js';
import { runPipeline } from './api-pipeline.js';
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

/** keyMatches compares a request's key with the configured one (its bytes made once) in constant time. */
function keyMatches(given: string, expected: Buffer): boolean {
  const a = Buffer.from(given);
  return a.length === expected.length && timingSafeEqual(a, expected);
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
  const cfg = transport.config.http_api;
  const expectedKey = Buffer.from(cfg.key);
  return async (req, res, url) => {
    const method = url.pathname.slice(apiPrefix.length);
    if (!cfg.insecure) {
      const key = apiKeyOf(req);
      if (key === undefined || !keyMatches(key, expectedKey)) {
        transport.metrics.apiCommands.inc({ method: 'auth', result: 'unauthorized' });
        sendJson(res, 401, { error: { code: ErrorCode.Unauthorized, message: 'unauthorized' } });
        return;
      }
    }
    // `/api` itself (with or without the slash) is the newline-delimited form.
    const pipeline = method === '';
    if (!pipeline && method !== batchMethod && !isApiMethod(method)) {
      sendJson(res, 404, { error: methodNotFound });
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
    if (pipeline) {
      const out = await runPipeline(transport, ctx, body.toString('utf8'));
      res.writeHead(out.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out.body) });
      res.end(out.body);
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
    if (method === batchMethod) {
      try {
        const replies = await runBatch(transport, ctx, parsed);
        transport.metrics.apiCommands.inc({ method, result: 'ok' });
        sendJson(res, 200, replies);
      } catch (err) {
        // Only the batch as a whole throws (bad body, too many commands): nothing ran.
        if (!(err instanceof ProtocolError)) throw err;
        transport.metrics.apiCommands.inc({ method, result: 'error' });
        sendJson(res, 200, { error: err.toWire() });
      }
      return;
    }
    sendJson(res, 200, await runApiCommand(transport, ctx, method, parsed));
  };
}
