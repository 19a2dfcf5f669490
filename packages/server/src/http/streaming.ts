/**
 * The HTTP transports' endpoints: HTTP-streaming and SSE with bidirectional emulation
 * (`/connection/http_stream`, `/connection/sse`; the client's later commands arrive at
 * /emulation, emulation.ts) and their unidirectional versions (`/connection/uni_http_stream`,
 * `/connection/uni_sse`). Each request that opens a stream becomes one client session, admitted,
 * counted and closed exactly as a WebSocket is (websocket.ts): the same origin check,
 * admission (draining, connection limit and rate, shedding, the connect kill switch), rate
 * limits, slow-consumer rule and drain, with its transport's name in metrics and proxies.
 *
 * How the connect request arrives, as Centrifugo takes it:
 * - http_stream: POST, the body is the connect command (JSON line, or a varint-delimited
 *   Protobuf Command when Content-Type is application/octet-stream: the stream is Protobuf);
 * - sse: GET with the command in the `cf_connect` URL parameter (what EventSource can send), or
 *   POST with it as the body; JSON only;
 * - uni_http_stream: POST, the body is a bare ConnectRequest (JSON; empty means `{}`);
 * - uni_sse: GET with a bare ConnectRequest in `cf_connect` (absent means `{}`), or POST.
 *
 * Answers before the stream opens: 403 refused origin, 405 wrong method, 413 body over the
 * transport's max_request_body_size, 400 no or malformed connect request, 503 (Retry-After)
 * refused by admission. Once open (200) everything else — a refused connect included — is a
 * disconnect push at the end of the stream. An HTTP request's timeouts end with its body: a
 * stream lives until either side ends it, and server pings (client.ping_interval) keep it
 * busy.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SessionContext } from '../client/context.js';
import { newSessionId, type EmulationSessions } from '../client/emulation-sessions.js';
import { ClientSession } from '../client/session.js';
import { connectUnidirectional } from '../client/unidirectional.js';
import type { Admission } from '../protection/admission.js';
import type { Codec } from '../protocol/codec.js';
import { FrameError, decodeCommand } from '../protocol/decode.js';
import { jsonCodec, jsonUniCodec } from '../protocol/json-codec.js';
import { protobufCodec } from '../protocol/protobuf-codec.js';
import type { ConnectRequest } from '../protocol/types.js';
import { HttpStreamTransport } from '../transport/transport-http-stream.js';
import type { RequestUrl } from './request-url.js';
import { SseTransport } from '../transport/transport-sse.js';
import { SocketSink } from '../transport/socket-sink.js';
import { ResponseSink } from '../transport/stream-sink.js';
import { readBody } from './request-body.js';
import { corsGate } from './cors.js';
import { sendJson } from './respond.js';
import type { RouteHandler } from './server.js';
import { takeOver } from './takeover.js';
import { OriginCheck, forwardedHeaders } from './websocket.js';

/** StreamKind names an HTTP transport, as config sections, metrics and proxies name it. */
export type StreamKind = 'http_stream' | 'sse' | 'uni_http_stream' | 'uni_sse';

/** The endpoint path of each HTTP transport, as Centrifugo serves them. */
export const streamPaths: Readonly<Record<StreamKind, string>> = {
  http_stream: '/connection/http_stream',
  sse: '/connection/sse',
  uni_http_stream: '/connection/uni_http_stream',
  uni_sse: '/connection/uni_sse',
};

/** The URL parameter that carries an SSE connect request (EventSource can only GET). */
const connectParam = 'cf_connect';

/** StreamingContext is what the HTTP transports' endpoints need from their node. */
export interface StreamingContext extends SessionContext {
  readonly admission: Pick<Admission, 'admit' | 'opened' | 'closed'>;
  /** The node's emulation sessions, where /emulation requests find them. */
  readonly emulation: Pick<EmulationSessions, 'add' | 'remove'>;
}

/** What the request that opens a stream carries: a bidirectional frame, or a uni connect request. */
type Opening = { frame: Buffer } | { connect: ConnectRequest };

/** streamHeaders are the response headers of a stream: never cached or buffered on the way. */
function streamHeaders(contentType: string): Record<string, string> {
  return {
    'content-type': contentType,
    'cache-control': 'private, no-cache, no-store, must-revalidate, max-age=0',
    pragma: 'no-cache',
    expires: '0',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
  };
}

/** parseUniConnect validates a bare ConnectRequest (JSON; empty is `{}`); undefined when malformed. */
function parseUniConnect(text: string): ConnectRequest | undefined {
  try {
    const cmd = decodeCommand({ id: 1, connect: text.trim() === '' ? {} : (JSON.parse(text) as unknown) });
    return cmd?.method === 'connect' ? cmd.req : undefined;
  } catch (err) {
    if (err instanceof SyntaxError || err instanceof FrameError) return undefined;
    throw err;
  }
}

/** streamingRoute serves one HTTP transport's endpoint. */
export function streamingRoute(ctx: StreamingContext, kind: StreamKind): RouteHandler {
  const origins = new OriginCheck(ctx.config.client.allowed_origins);
  const sse = kind === 'sse' || kind === 'uni_sse';
  const uni = kind === 'uni_http_stream' || kind === 'uni_sse';
  const limit = ctx.config[kind].max_request_body_size;

  /** #opening reads the connect request; undefined when the request was answered instead. */
  const opening = async (req: IncomingMessage, res: ServerResponse, url: RequestUrl): Promise<Opening | undefined> => {
    let text: string | undefined;
    let frame: Buffer | undefined;
    if (req.method === 'POST') {
      const body = await readBody(req, limit);
      if (body === 'too_large') {
        res.setHeader('connection', 'close');
        sendJson(res, 413, { error: `request body larger than ${kind}.max_request_body_size (${limit} bytes)` });
        return undefined;
      }
      frame = body;
    } else if (req.method === 'GET' && sse) {
      text = url.searchParams.get(connectParam) ?? '';
      frame = Buffer.from(text);
    } else {
      res.setHeader('allow', sse ? 'GET, POST, OPTIONS' : 'POST, OPTIONS');
      sendJson(res, 405, { error: 'method not allowed' });
      return undefined;
    }
    if (uni) {
      const connect = parseUniConnect(text ?? frame.toString('utf8'));
      if (connect !== undefined) return { connect };
    } else if (frame.length > 0) {
      return { frame };
    }
    sendJson(res, 400, {
      error: sse ? `no valid connect request (${connectParam} or body)` : 'no valid connect request',
    });
    return undefined;
  };

  return async (req, res, url) => {
    if (!corsGate(req, res, origins, ctx.metrics)) return;
    const open = await opening(req, res, url);
    if (open === undefined) return;
    // After the body, synchronously up to opened(): admission's count stays exact.
    const admission = ctx.admission;
    if (!admission.admit(req.socket)) return;
    admission.opened();
    ctx.metrics.transportConnections.inc({ transport: kind });
    let codec: Codec = jsonCodec;
    if (uni) codec = jsonUniCodec;
    else if (kind === 'http_stream' && req.headers['content-type'] === 'application/octet-stream')
      codec = protobufCodec;
    const session = uni ? undefined : newSessionId();
    const opts = {
      name: kind,
      codec,
      closeTimeoutMs: ctx.config.websocket.close_timeout,
      session,
    };
    const contentType = sse
      ? 'text/event-stream; charset=utf-8'
      : codec.binary
        ? 'application/octet-stream'
        : 'application/json';
    res.writeHead(200, streamHeaders(contentType));
    // The socket leaves the HTTP server once the head is out: what it keeps per connection
    // would double an idle stream's memory (takeover.ts). If it cannot, the response serves.
    const taken = takeOver(req, res);
    const sink = taken ? new SocketSink(taken.socket, taken.chunked) : new ResponseSink(res);
    let client: ClientSession;
    try {
      const transport = sse ? new SseTransport(sink, opts) : new HttpStreamTransport(sink, opts);
      if (transport instanceof SseTransport) transport.start();
      client = new ClientSession(ctx, transport, forwardedHeaders(req, ctx.proxies.forwardedHeaders));
    } catch (err) {
      // The server's 500 path destroys the response, which no longer holds a taken-over socket.
      sink.destroy();
      admission.closed();
      throw err;
    }
    if (session !== undefined) ctx.emulation.add(session, client);
    // Once: the body ended (the server closed it) or the peer went away.
    sink.onClose(() => {
      admission.closed();
      if (session !== undefined) ctx.emulation.remove(session);
      client.onTransportClose();
    });
    if ('connect' in open) void connectUnidirectional(client, open.connect);
    else client.handleFrame(open.frame);
  };
}
