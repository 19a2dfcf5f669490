/**
 * Writing HTTP responses: JSON bodies, the 500 of a route that failed, and the raw refusal of a
 * WebSocket upgrade.
 *
 * @module
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { writeRawResponse } from '../protection/admission.js';

/** sendJson writes a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  sendJsonText(res, status, JSON.stringify(body));
}

/**
 * sendJsonText writes a JSON response from its text. The headers as a flat [name, value, …]
 * array, which Node writes as it would the object's own keys (same names, values and order;
 * on a response with headers already set, each name replaces its own): no object per reply
 * and no `for…in` over it, on every API reply (issue 18).
 */
export function sendJsonText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, ['content-type', 'application/json', 'content-length', Buffer.byteLength(text)]);
  res.end(text);
}

/**
 * routeFailed answers a request whose route threw or rejected with a logged 500; a response
 * already begun is cut instead. The router calls it, and so does a route that goes on in
 * callbacks of its own (the server API reading a body).
 */
export function routeFailed(log: Logger, err: unknown, res: ServerResponse, path: string): void {
  log.error({ err, path }, 'http handler failed');
  if (!res.headersSent) sendJson(res, 500, { error: 'internal server error' });
  else res.destroy();
}

/** rejectUpgrade refuses an upgrade request with a bodiless status, straight on its socket. */
export function rejectUpgrade(socket: Socket, status: number, text: string): void {
  writeRawResponse(socket, `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
