/**
 * The connect of a unidirectional connection (uni_websocket, and uni_sse and uni_http_stream):
 * the client sends one `ConnectRequest` and from then on only receives pushes. The request
 * runs through the same connect handler as the bidirectional `connect` command (connect.ts:
 * token, connect proxy or anonymous; server-side subscriptions), and through the same rate
 * limit before connect; its result goes out as the `connect` push instead of a reply.
 *
 * The client cannot be answered an error, so, as Centrifugo does for unidirectional
 * transports, every failure becomes a disconnect: a DisconnectError keeps its code (3500
 * invalid token, 3504 connection limit, …); a ProtocolError maps to the disconnect
 * {@link uniDisconnect} names (109/110 → 3005 expired, 111 → 3013, 103 → 3507, 101 and 107 →
 * 3501 bad request, any other → 3004); anything else is 3004 (reconnect allowed).
 *
 * The request's `subs` also ask for subscriptions: a channel the client could subscribe to
 * on its own (namespace permissions, no token, no subscribe proxy) is subscribed server-side,
 * as Centrifugo does for unidirectional clients; others are skipped silently.
 *
 * @module
 */
import type { ResolvedChannel } from '../channel-rules.js';
import {
  DisconnectCode,
  DisconnectError,
  ErrorCode,
  ProtocolError,
  disconnect,
  type Disconnect,
} from '../protocol/codes.js';
import type { ConnectRequest, ConnectResult } from '../protocol/types.js';
import { rateLimitedBeforeConnect, type GatedSession } from './command-gate.js';
import { connect } from './connect.js';
import { subscribe } from './subscribe.js';

/** The disconnect of a ProtocolError code, where it is not 3004 (Centrifugo's table, plus 101/107). */
const errorDisconnects: Readonly<Record<number, DisconnectCode>> = {
  [ErrorCode.TokenExpired]: DisconnectCode.Expired,
  [ErrorCode.Expired]: DisconnectCode.Expired,
  [ErrorCode.TooManyRequests]: DisconnectCode.TooManyRequests,
  [ErrorCode.PermissionDenied]: DisconnectCode.PermissionDenied,
  [ErrorCode.Unauthorized]: DisconnectCode.BadRequest,
  [ErrorCode.BadRequest]: DisconnectCode.BadRequest,
};

/** uniDisconnect is the disconnect that tells a unidirectional client its connect failed with `err`. */
export function uniDisconnect(err: unknown): Disconnect {
  if (err instanceof DisconnectError) return err.disconnect;
  if (err instanceof ProtocolError) return disconnect(errorDisconnects[err.code] ?? DisconnectCode.ServerError);
  return disconnect(DisconnectCode.ServerError);
}

/**
 * connectUnidirectional connects session `s` of a unidirectional transport with `req`: on
 * success the client gets the `connect` push, then the publications of its subscriptions; on
 * failure it is disconnected (see the module note). Resolves when done; never rejects. Call it
 * once, while the session is connecting; the transport decodes `req` (protocol/decode.ts
 * `decodeConnectRequest`) and disconnects 3501 itself when it cannot.
 */
export async function connectUnidirectional(s: GatedSession, req: ConnectRequest): Promise<void> {
  const ctx = s.ctx;
  if (s.state !== 'connecting') return;
  if (rateLimitedBeforeConnect(s, { id: 0, method: 'connect', req })) {
    // Refused (111): a unidirectional client cannot be answered, it is told 3013 instead.
    s.disconnect(disconnect(DisconnectCode.TooManyRequests));
    return;
  }
  try {
    const out = await connect(s, req);
    const result = (out.reply as { result: ConnectResult }).result;
    const activations = await subscribeAsked(s, req, result);
    s.pushNow({ type: 'connect', result });
    out.after?.();
    for (const a of activations) a();
    ctx.metrics.command('connect', 'ok');
  } catch (err) {
    const d = uniDisconnect(err);
    if (!(err instanceof DisconnectError || err instanceof ProtocolError)) {
      ctx.log.error({ err, client: s.id, transport: s.proxyConnection().transport }, 'unidirectional connect failed');
    } else {
      ctx.log.info({ client: s.id, code: d.code, err: err.message }, 'unidirectional connect refused');
    }
    ctx.metrics.command('connect', 'disconnect');
    s.disconnect(d);
  }
}

/**
 * subscribeAsked subscribes the channels of `req.subs` that the connect did not already grant
 * and that the client may subscribe to without a token or proxy; adds them to `result.subs`
 * and returns their activations (run after the connect push).
 */
async function subscribeAsked(s: GatedSession, req: ConnectRequest, result: ConnectResult): Promise<Array<() => void>> {
  const activations: Array<() => void> = [];
  if (req.subs === undefined) return activations;
  const ctx = s.ctx;
  const limit = ctx.config.client.channel_limit;
  const subs = (result.subs ??= {});
  for (const [channel, asked] of Object.entries(req.subs)) {
    if (s.state !== 'connected') break;
    if (s.subs.has(channel) || subs[channel] !== undefined) continue;
    if (limit > 0 && s.subs.size >= limit) break;
    let rc: ResolvedChannel;
    try {
      rc = ctx.rules.resolve(channel);
      if (ctx.proxies.channel('subscribe', rc.options) !== undefined) continue;
      ctx.permissions.checkSubscribe(rc, s.user);
    } catch {
      ctx.log.debug({ client: s.id, user: s.user, channel }, 'unidirectional connect: asked subscription not allowed');
      continue;
    }
    const made = await subscribe(s, rc, {
      recover: asked.recover === true,
      offset: asked.offset ?? 0,
      epoch: asked.epoch ?? '',
      wantPositioned: false,
      wantRecoverable: false,
      wantJoinLeave: false,
      expireAt: 0,
      serverSide: true,
    });
    subs[channel] = made.result;
    activations.push(made.activate);
  }
  return activations;
}
