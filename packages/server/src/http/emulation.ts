/**
 * The /emulation endpoint: the commands of an HTTP-streaming or SSE client after its connect
 * (the stream only carries server-to-client messages). The body is an EmulationRequest
 * `{node, session, data}`: JSON (`data` a string holding the JSON commands, newline-separated),
 * or Protobuf when Content-Type is application/octet-stream (`data` the varint-delimited
 * Commands). `node` names the node holding the session, from the connect result; a request
 * that reached another node is relayed to it through the broker's control channel, so no
 * sticky sessions are needed behind a load balancer (as Centrifugo does).
 *
 * Answers, as the centrifuge SDK reads them:
 * - 204: taken. The commands went to the session, here or relayed to its node; their replies
 *   arrive on the stream. A session this node does not hold (its stream ended, or it never
 *   was here) drops the commands and is answered 204 too: its stream has ended with its
 *   disconnect push, which tells the client what to do; an error status would make the SDK
 *   close the transport and reconnect even after a disconnect that forbids it.
 * - 404: `node` is neither this node nor a live node of the cluster (e.g. it restarted): the
 *   SDK closes the transport and reconnects.
 * - 400 malformed body (or no session), 405 not POST, 413 body over
 *   emulation.max_request_body_size, 403 refused origin, 503 the relay could not be sent
 *   (the engine is unreachable).
 *
 * @module
 */
import { fromBinary } from '@bufbuild/protobuf';
import type { Logger } from 'pino';
import type { EmulationSessions } from '../client/emulation-sessions.js';
import type { ControlBus } from '../cluster/control.js';
import type { NodeRegistry } from '../cluster/node-registry.js';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import { EmulationRequestSchema } from '../protocol/gen/client_pb.js';
import { readBody } from './request-body.js';
import { corsGate } from './cors.js';
import { sendJson } from './respond.js';
import type { RouteHandler } from './server.js';
import { OriginCheck } from './websocket.js';

/** The emulation endpoint path, as Centrifugo serves it. */
export const emulationPath = '/emulation';

/** EmulationContext is what the emulation endpoint needs from its node. */
export interface EmulationContext {
  /** emulation.max_request_body_size, client.allowed_origins. */
  readonly config: Readonly<Config>;
  readonly metrics: Pick<Metrics, 'emulationRequests' | 'reject'>;
  readonly log: Logger;
  readonly nodeId: string;
  /** This node's emulation sessions. */
  readonly emulation: Pick<EmulationSessions, 'deliver'>;
  /** The other live nodes: a request for one of them is relayed. */
  readonly nodes: Pick<NodeRegistry, 'has'>;
  /** The control channel the relay goes through. */
  readonly control: Pick<ControlBus, 'send'>;
}

/** EmulationRequest is a decoded /emulation body. */
interface EmulationRequest {
  node: string;
  session: string;
  data: Buffer;
}

/** parseRequest decodes an /emulation body; undefined when malformed. */
export function parseEmulationRequest(body: Buffer, protobuf: boolean): EmulationRequest | undefined {
  if (protobuf) {
    try {
      const m = fromBinary(EmulationRequestSchema, body);
      return { node: m.node, session: m.session, data: Buffer.from(m.data) };
    } catch {
      return undefined;
    }
  }
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const node = o['node'] ?? '';
  const session = o['session'];
  const data = o['data'];
  if (typeof node !== 'string' || typeof session !== 'string' || typeof data !== 'string') return undefined;
  return { node, session, data: Buffer.from(data, 'utf8') };
}

/** emulationRoute serves /emulation. */
export function emulationRoute(ctx: EmulationContext): RouteHandler {
  const origins = new OriginCheck(ctx.config.client.allowed_origins);
  const limit = ctx.config.emulation.max_request_body_size;
  const count = (result: string) => ctx.metrics.emulationRequests.inc({ result });
  return async (req, res) => {
    if (!corsGate(req, res, origins, ctx.metrics)) return;
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST, OPTIONS');
      sendJson(res, 405, { error: 'method not allowed' });
      return;
    }
    const body = await readBody(req, limit);
    if (body === 'too_large') {
      count('too_large');
      res.setHeader('connection', 'close');
      sendJson(res, 413, { error: `request body larger than emulation.max_request_body_size (${limit} bytes)` });
      return;
    }
    const emu = parseEmulationRequest(body, req.headers['content-type'] === 'application/octet-stream');
    if (emu === undefined || emu.session === '' || emu.data.length === 0) {
      count('bad_request');
      sendJson(res, 400, { error: 'malformed emulation request: want {node, session, data}' });
      return;
    }
    if (emu.node === '' || emu.node === ctx.nodeId) {
      const found = ctx.emulation.deliver(emu.session, emu.data);
      count(found ? 'delivered' : 'unknown_session');
      if (!found)
        ctx.log.debug({ session: emu.session.slice(0, 6) }, 'emulation request for a session not here: dropped');
    } else if (ctx.nodes.has(emu.node)) {
      try {
        await ctx.control.send({
          type: 'emulation',
          to: emu.node,
          session: emu.session,
          data: emu.data.toString('base64'),
        });
      } catch (err) {
        count('relay_failed');
        ctx.log.warn({ err, node: emu.node }, 'emulation request not relayed: the engine is unreachable');
        sendJson(res, 503, { error: 'emulation request not relayed: engine unavailable' });
        return;
      }
      count('relayed');
    } else {
      count('unknown_node');
      sendJson(res, 404, { error: 'unknown node: reconnect' });
      return;
    }
    res.writeHead(204);
    res.end();
  };
}
