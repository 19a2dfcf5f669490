/**
 * One WebSocket open attempt that tells a refusal apart from a failure. A server refusing an
 * upgrade (Bulwark's admission: HTTP 503 + Retry-After) answers with a plain HTTP response;
 * `ws` would turn it into an error that only says "Unexpected server response: 503", losing the
 * headers. Listening to ws's 'unexpected-response' event keeps the status and `Retry-After`, which
 * is what a native client (unlike a browser) can read and follow.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import { LeanClient, type LeanClientOptions } from './lean-client.js';

/** OpenOutcome is how an attempt ended. */
export type OpenOutcome =
  /** The upgrade succeeded: a WebSocket ready for protocol commands. */
  | { kind: 'open'; client: LeanClient }
  /** The server answered the upgrade with an HTTP response instead of 101. */
  | { kind: 'refused'; status: number; retryAfter: string | string[] | undefined }
  /** Anything else: timeout, reset, refused TCP connect, ... */
  | { kind: 'failed'; error: string };

/**
 * openAttempt opens one WebSocket with a {@link LeanClient} and resolves with the outcome; it
 * never rejects. On a refusal the socket is torn down (the client is not returned).
 */
export function openAttempt(opts: LeanClientOptions): Promise<OpenOutcome> {
  const client = new LeanClient(opts);
  return new Promise<OpenOutcome>((resolve) => {
    let settled = false;
    const settle = (o: OpenOutcome) => {
      if (settled) return;
      settled = true;
      resolve(o);
    };
    // Attached before any I/O happened: the request is sent on a later tick.
    client.ws.once('unexpected-response', (_req: unknown, res: IncomingMessage) => {
      settle({ kind: 'refused', status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
      res.resume();
      // With a listener, ws leaves the handshake to us: abort it (closes the TCP socket).
      client.terminate();
    });
    client.open().then(
      () => settle({ kind: 'open', client }),
      (err: unknown) => settle({ kind: 'failed', error: (err as Error).message }),
    );
  });
}

/** FailureKind groups attempt failures for reports. */
export type FailureKind = 'timeout' | 'reset' | 'tcp-refused' | 'closed' | 'error-reply' | 'other';

/**
 * classifyFailure maps an error message from {@link openAttempt} or a LeanClient command to a
 * {@link FailureKind}: handshake or reply timeouts, connection resets (incl. "socket hang
 * up"), refused TCP connects (nothing listening, or a full accept queue), closes before a
 * reply, and error replies to connect/subscribe.
 */
export function classifyFailure(message: string): FailureKind {
  if (/timed out|timeout/i.test(message)) return 'timeout';
  if (/ECONNRESET|EPIPE|socket hang up/i.test(message)) return 'reset';
  if (/ECONNREFUSED/i.test(message)) return 'tcp-refused';
  if (/^error \d+/.test(message)) return 'error-reply';
  if (/closed/i.test(message)) return 'closed';
  return 'other';
}
