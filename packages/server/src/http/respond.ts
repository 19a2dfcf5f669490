/**
 * Writing HTTP responses: JSON bodies, and the raw refusal of a WebSocket upgrade.
 *
 * @module
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { writeRawResponse } from '../protection/admission.js';

/** sendJson writes a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** rejectUpgrade refuses an upgrade request with a bodiless status, straight on its socket. */
export function rejectUpgrade(socket: Socket, status: number, text: string): void {
  writeRawResponse(socket, `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
