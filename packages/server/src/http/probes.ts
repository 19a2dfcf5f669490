/**
 * The probes an orchestrator and a scraper read: /health (the process answers), /ready (this
 * node can serve new players now) and /metrics (Prometheus). Each answers GET only.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { sendJson } from './respond.js';
import type { RouteHandler } from './server.js';

/** ReadinessContext is what /ready reads from its node. */
export interface ReadinessContext {
  /** Not draining, the engine started and reachable now. */
  readonly ready: boolean;
  /** Draining (or shutting down): not ready, and not for an engine problem. */
  readonly draining: boolean;
}

/** health answers /health: 200 while the process serves HTTP. */
export function health(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== 'GET') return false;
  sendJson(res, 200, {});
  return true;
}

/** readiness answers /ready: 200 when ready, else 503 saying why (draining, or the engine). */
export function readiness(ctx: ReadinessContext): RouteHandler {
  return (req, res) => {
    if (req.method !== 'GET') return false;
    const ready = ctx.ready;
    sendJson(res, ready ? 200 : 503, {
      ready,
      draining: ctx.draining,
      ...(ready || ctx.draining ? {} : { engine: 'unavailable' }),
    });
    return true;
  };
}

/** metrics answers /metrics with the registry's exposition. */
export function metrics(registry: Registry): RouteHandler {
  return async (req, res) => {
    if (req.method !== 'GET') return false;
    const body = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType });
    res.end(body);
    return true;
  };
}
