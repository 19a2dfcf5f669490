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
import { signConnectionToken } from '../auth/token-signer.js';
import { sendJson } from './respond.js';
import type { RouteHandler } from './server.js';

const pagePath = fileURLToPath(new URL('../../../demo/index.html', import.meta.url));
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

/** DemoContext is what the demo needs from its node. */
export interface DemoContext {
  /** client.token.hmac_secret_key: the demo signs its tokens with it. */
  readonly hmacSecret: string | undefined;
}

/** demoPage serves the bulletin board page (`/`). */
export async function demoPage(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  if (req.method !== 'GET') return false;
  const html = await readFile(pagePath);
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(html);
  return true;
}

/** demoClient serves the `centrifuge` browser client (`/demo/centrifuge.js`). */
export async function demoClient(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  if (req.method !== 'GET') return false;
  const js = await readFile(centrifugeBundlePath());
  res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'max-age=3600' });
  res.end(js);
  return true;
}

/** demoToken signs a connection token for `?user=NAME` (`/demo/token`). */
export function demoToken(ctx: DemoContext): RouteHandler {
  return async (req, res, url) => {
    if (req.method !== 'GET') return false;
    const user = (url.searchParams.get('user') ?? '').trim().slice(0, 32);
    const secret = ctx.hmacSecret;
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
  };
}
