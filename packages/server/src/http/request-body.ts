/**
 * Reading a request's body whole, up to a size limit (http_api.max_body_size): a body declared
 * (Content-Length) or sent larger is `too_large`, and what was read of it is dropped at once.
 *
 * Two forms: {@link readBody}, a promise, for the routes that await anyway (admin, emulation,
 * streaming), and {@link collectBody}, a callback, for the server API, where a publish on the
 * memory engine completes in the callback without a promise or a microtask between the body's
 * end and the reply (issue 18).
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';

/** declaredTooLarge tells whether the request announces a body larger than `limit` bytes. */
function declaredTooLarge(req: IncomingMessage, limit: number): boolean {
  const declared = req.headers['content-length'];
  return declared !== undefined && Number(declared) > limit;
}

/** readBody reads a request body of at most `limit` bytes (declared or sent); more is `too_large`. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too_large'> {
  if (declaredTooLarge(req, limit)) return Promise.resolve('too_large');
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

/** BodyCallback receives a body read whole (one chunk or several) or `too_large`. */
export type BodyCallback = (body: Buffer | readonly Buffer[] | 'too_large') => void;

/**
 * collectBody reads a request body of at most `limit` bytes and calls `done` once with it: the
 * chunk itself when the body came in one (the usual small body: no copy), the chunks when it
 * came in several, or `too_large` at once when the body is declared or grows past the limit
 * (the rest is then read and dropped; the caller answers and calls `req.resume()`).
 *
 * A request closed before its body ended never calls `done`: nobody is left to answer. Its
 * listeners stay on the request, which ends with its response: an API request is never
 * longer-lived than that (unlike readBody's streams).
 */
export function collectBody(req: IncomingMessage, limit: number, done: BodyCallback): void {
  if (declaredTooLarge(req, limit)) {
    done('too_large');
    return;
  }
  let first: Buffer | undefined;
  let more: Buffer[] | undefined;
  let size = 0;
  req.on('data', (chunk: Buffer): void => {
    if (size > limit) return;
    size += chunk.length;
    if (size > limit) {
      first = more = undefined;
      req.pause();
      done('too_large');
    } else if (first === undefined) first = chunk;
    else (more ??= [first]).push(chunk);
  });
  req.on('end', (): void => {
    if (size > limit) return;
    done(more ?? first ?? Buffer.alloc(0));
  });
}
