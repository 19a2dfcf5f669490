/**
 * The unidirectional WebSocket endpoint (`/connection/uni_websocket`, when
 * `uni_websocket.enabled`): for clients with a plain WebSocket and no SDK. Its upgrade goes
 * through the same admission and origin check as `/connection/websocket`, and its connections
 * are client sessions like any other (limits, slow-consumer rule, drain, metrics).
 *
 * The client sends its `ConnectRequest` as JSON — in its first WebSocket message, or in the
 * `cf_connect` URL parameter (then it need send nothing) — and from then on only receives
 * bare pushes: the `connect` push, publications, join/leave, unsubscribe, message, refresh,
 * `{}` pings, and the `disconnect` push before the close frame. A connect request that is not
 * a JSON `ConnectRequest` closes with 3501; messages after it are read and ignored, as
 * Centrifugo does.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ClientSession } from '../client/session.js';
import { connectUnidirectional } from '../client/unidirectional.js';
import { DisconnectCode, disconnect } from '../protocol/codes.js';
import { FrameError, decodeConnectRequest } from '../protocol/decode.js';
import { jsonUniCodec } from '../protocol/json-codec.js';
import { UniWebSocketTransport } from '../transport/transport-uni-ws.js';
import { OriginCheck, admitUpgrade, openWebSocketSession, type WebSocketContext } from './websocket.js';

/** The unidirectional WebSocket endpoint path, as Centrifugo serves it. */
export const uniWebsocketPath = '/connection/uni_websocket';

/** The URL parameter that may carry the connect request (Centrifugo v6.3). */
const connectParam = 'cf_connect';

/** connectInUrl returns the `cf_connect` parameter of an upgrade URL, if any. */
function connectInUrl(url: string | undefined): string | undefined {
  const q = url?.indexOf('?') ?? -1;
  if (q < 0) return undefined;
  return new URLSearchParams((url as string).slice(q + 1)).get(connectParam) ?? undefined;
}

/** UniWebSocketEndpoint takes the unidirectional WebSocket upgrades of one node. */
export class UniWebSocketEndpoint {
  readonly #ctx: WebSocketContext;
  readonly #wss: WebSocketServer;
  readonly #origins: OriginCheck;

  constructor(ctx: WebSocketContext) {
    this.#ctx = ctx;
    const cfg = ctx.config;
    this.#origins = new OriginCheck(cfg.client.allowed_origins);
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: cfg.uni_websocket.message_size_limit,
      perMessageDeflate: cfg.uni_websocket.compression,
      clientTracking: false,
    });
  }

  /** upgrade takes one upgrade request on the unidirectional WebSocket path. */
  readonly upgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    if (!admitUpgrade(this.#ctx, this.#origins, req, socket)) return;
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, req, socket));
  };

  #accept(ws: WebSocket, req: IncomingMessage, socket: Socket): void {
    const ctx = this.#ctx;
    const cfg = ctx.config.uni_websocket;
    const transport = new UniWebSocketTransport(
      ws,
      cfg.compression ? undefined : socket,
      ctx.config.websocket.close_timeout,
      jsonUniCodec,
      { joinPushMessages: cfg.join_push_messages, disableDisconnectPush: cfg.disable_disconnect_push },
    );
    const session = openWebSocketSession(ctx, ws, req, transport);
    const inUrl = connectInUrl(req.url);
    let awaiting = inUrl === undefined;
    // The first message is the connect request; every later one is ignored (Centrifugo reads and drops them).
    ws.on('message', (data: Buffer) => {
      if (!awaiting) return;
      awaiting = false;
      this.#start(session, data.toString('utf8'));
    });
    if (inUrl !== undefined) this.#start(session, inUrl);
  }

  /** #start decodes the connect request and connects the session, or closes it 3501. */
  #start(session: ClientSession, text: string): void {
    let connectReq;
    try {
      connectReq = decodeConnectRequest(text);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.#ctx.log.info({ client: session.id, err: err.message }, 'bad unidirectional connect request');
      session.disconnect(disconnect(DisconnectCode.BadRequest));
      return;
    }
    void connectUnidirectional(session, connectReq);
  }
}
