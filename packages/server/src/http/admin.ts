/**
 * The operator console (`/admin`, with `admin.enabled`): a static page (packages/server/admin/,
 * no build step, served under a strict Content-Security-Policy: no inline script, nothing
 * from elsewhere) and its JSON API:
 *
 * - `POST /admin/api/login` `{password}` → `{token, expires_in}` (see admin-auth.ts);
 * - `POST /admin/api/call` `{method, params}` → the server API method's `{result}` / `{error}`,
 *   exactly as `/api/<method>` answers it: every console action goes through the server API,
 *   and is logged with the session that made it;
 * - `POST /admin/api/overview` → this node's state and the cluster's nodes, for the live charts;
 * - `POST /admin/api/user` `{user}` → the user's connections on this node.
 *
 * Every call but login needs `Authorization: Bearer <token>`, on whichever port serves it.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { BurstLog } from '../protection/burst-log.js';
import { AdminAuth } from './admin-auth.js';
import { methodNotFound, runApiCommand } from './api-call.js';
import { callApiMethod, isApiMethod, type ApiContext } from './api-methods.js';
import { readBody } from './request-body.js';
import { sendJson } from './respond.js';
import type { HttpServer } from './server.js';

/** The console's files, served as they are in the package. */
const assets: Readonly<Record<string, { file: string; type: string }>> = {
  '/admin': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/admin/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/admin/admin.js': { file: 'admin.js', type: 'text/javascript; charset=utf-8' },
  '/admin/admin.css': { file: 'admin.css', type: 'text/css; charset=utf-8' },
};
const assetDir = new URL('../../../admin/', import.meta.url);

/** Headers of every console response: nothing inline, nothing from elsewhere, never framed. */
const securityHeaders = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** AdminContext is what the console needs from its node. */
export interface AdminContext {
  readonly config: Readonly<Config>;
  readonly log: Logger;
  readonly metrics: Pick<Metrics, 'registry' | 'loopLagP99' | 'apiCommands' | 'apiCommand'>;
  readonly burstLog: Pick<BurstLog, 'error'>;
  readonly hub: {
    userSessions(user: string): ReadonlySet<{
      readonly id: string;
      readonly remoteAddress: string;
      readonly transport: { readonly name: string };
      readonly subs: ReadonlyMap<string, unknown>;
    }>;
  };
  /** ready and draining, as /ready reports them. */
  readonly ready: boolean;
  readonly draining: boolean;
}

/** Metrics the overview reads, by the name the page shows them under. */
const overviewMetrics = {
  connections: 'bulwark_connections',
  subscriptions: 'bulwark_subscriptions',
  deliveries: 'bulwark_deliveries_total',
  publications: 'bulwark_publications_total',
  rejections: 'bulwark_rejections_total',
  shedding: 'bulwark_shedding',
  killSwitches: 'bulwark_kill_switches',
  engineUp: 'bulwark_engine_up',
  admissionOpen: 'bulwark_admission_connections',
  admissionLimit: 'bulwark_admission_connection_limit',
  breakerOpen: 'bulwark_proxy_breaker_open',
  proxyCalls: 'bulwark_proxy_calls_total',
  rpcCache: 'bulwark_rpc_cache',
  slowDisconnects: 'bulwark_slow_disconnects_total',
} as const;

/** registerAdmin adds the console's routes to `http`. */
export function registerAdmin(http: HttpServer, ctx: AdminContext, api: ApiContext): void {
  const auth = new AdminAuth(ctx.config.admin, ctx.log);
  for (const [path, asset] of Object.entries(assets)) {
    http.route(path, async (req, res) => {
      if (req.method !== 'GET') return false;
      const body = await readFile(fileURLToPath(new URL(asset.file, assetDir)));
      res.writeHead(200, { 'content-type': asset.type, ...securityHeaders });
      res.end(body);
      return true;
    });
  }
  http.route('/admin/api/*', async (req, res, url) => {
    const name = url.pathname.slice('/admin/api/'.length);
    if (req.method !== 'POST') return reply(res, 405, { error: 'use POST' });
    const raw = await readBody(req, ctx.config.http_api.max_body_size);
    if (raw === 'too_large') return reply(res, 413, { error: 'body too large' });
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      body = parsed as Record<string, unknown>;
    } catch {
      return reply(res, 400, { error: 'malformed JSON body' });
    }
    const address = req.socket.remoteAddress ?? '';
    if (name === 'login') {
      const out = await auth.login(typeof body['password'] === 'string' ? body['password'] : '', address);
      if ('refused' in out) {
        return out.refused === 'rate'
          ? reply(res, 429, { error: 'too many login attempts; wait a minute' })
          : reply(res, 401, { error: 'wrong password' });
      }
      return reply(res, 200, { token: out.token, expires_in: out.expiresIn });
    }
    const session = await auth.verify(req.headers.authorization);
    if (session === undefined) return reply(res, 401, { error: 'log in again' });
    if (name === 'overview') return reply(res, 200, await overview(ctx, api));
    if (name === 'user') return reply(res, 200, userConnections(ctx, body['user']));
    if (name === 'call') return call(ctx, api, res, body, session.id, address);
    return reply(res, 404, { error: 'no such console call' });
  });
}

/** call runs a server API method for the console (as /api runs it), and logs who ran what. */
async function call(
  ctx: AdminContext,
  api: ApiContext,
  res: ServerResponse,
  body: Record<string, unknown>,
  session: string,
  address: string,
): Promise<boolean> {
  const method = typeof body['method'] === 'string' ? body['method'] : '';
  if (!isApiMethod(method)) return reply(res, 404, { error: methodNotFound });
  const params = body['params'] ?? {};
  ctx.log.info({ session, address, method, params: summary(params) }, 'admin action');
  return reply(res, 200, await runApiCommand(ctx, api, method, params));
}

/** summary is what the audit log keeps of a call's parameters: short, never whole payloads. */
function summary(params: unknown): string {
  const text = JSON.stringify(params) ?? '';
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/** overview is this node's state and the cluster's nodes, as the console's first page shows them. */
async function overview(ctx: AdminContext, api: ApiContext): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(overviewMetrics)) {
    const metric = ctx.metrics.registry.getSingleMetric(name);
    const values = metric === undefined ? [] : (await metric.get()).values;
    out[key] = values.map((v) => ({ labels: withoutNode(v.labels), value: v.value }));
  }
  // The info method lists this node first, then the others.
  const nodes = (await callApiMethod(api, 'info', {})) as { nodes: unknown[] };
  return {
    time: Date.now(),
    node: nodes.nodes[0],
    ready: ctx.ready,
    draining: ctx.draining,
    engine: ctx.config.engine.type,
    loopLagP99: ctx.metrics.loopLagP99(),
    nodes: nodes.nodes,
    metrics: out,
  };
}

function withoutNode(labels: Partial<Record<string, string | number>>): Partial<Record<string, string | number>> {
  const { node: _node, ...rest } = labels;
  return rest;
}

/** userConnections lists a user's connections on this node (disconnect and send reach every node). */
function userConnections(ctx: AdminContext, user: unknown): unknown {
  if (typeof user !== 'string' || user === '') return { connections: [] };
  return {
    connections: [...ctx.hub.userSessions(user)].map((s) => ({
      client: s.id,
      transport: s.transport.name,
      address: s.remoteAddress,
      channels: [...s.subs.keys()],
    })),
  };
}

function reply(res: ServerResponse, status: number, body: unknown): true {
  res.setHeader('cache-control', 'no-store');
  sendJson(res, status, body);
  return true;
}
