/**
 * The team bulletin board demo: `/` serves a page that uses the `centrifuge` browser client,
 * `/demo/centrifuge.js` serves that client, and `/demo/token?user=NAME` signs a short-lived
 * connection token for any name. That endpoint makes anyone anyone: it exists only when
 * `demo.enabled` is set, for local demos.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signConnectionToken } from './auth/token-signer.js';
import { sendJson } from './http-server.js';
import type { Node } from './node.js';

const pagePath = fileURLToPath(new URL('../../demo/index.html', import.meta.url));
let clientPath: string | undefined;

/** centrifugeBundlePath finds the SDK's browser bundle (`dist/`, beside its `build/` entry). */
function centrifugeBundlePath(): string {
  if (!clientPath) {
    // The package's `exports` map does not expose dist/, so resolve its entry and step over.
    const entry = createRequire(import.meta.url).resolve('centrifuge');
    clientPath = join(dirname(dirname(entry)), 'dist', 'centrifuge.js');
  }
  return clientPath;
}

/** handleDemoRequest serves the demo routes; returns false for other paths. */
export async function handleDemoRequest(
  node: Node,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<boolean> {
  if (req.method !== 'GET') return false;
  if (url.pathname === '/') {
    const html = await readFile(pagePath);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
    return true;
  }
  if (url.pathname === '/demo/centrifuge.js') {
    const js = await readFile(centrifugeBundlePath());
    res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'max-age=3600' });
    res.end(js);
    return true;
  }
  if (url.pathname === '/demo/token') {
    const user = (url.searchParams.get('user') ?? '').trim().slice(0, 32);
    const secret = node.config.client.token.hmac_secret_key;
    if (!user || !/^[\p{L}\p{N} _.-]+$/u.test(user)) {
      sendJson(res, 400, { error: 'user: 1-32 letters, digits, spaces, _ . -' });
      return true;
    }
    if (!secret) {
      sendJson(res, 503, { error: 'the demo needs client.token.hmac_secret_key' });
      return true;
    }
    const token = await signConnectionToken({ secret, user, ttlSeconds: 3600, info: { name: user } });
    sendJson(res, 200, { token });
    return true;
  }
  return false;
}
