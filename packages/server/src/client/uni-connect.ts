/**
 * The connect of a unidirectional connection (uni_http_stream, uni_sse): the connect request
 * arrives with the request that opens the stream, not as a command, and the client can send
 * nothing after it. The connect runs through the same handler as a bidirectional connect
 * (connect.ts: token or connect proxy, limits, server-side subscriptions), and its result is
 * sent as the stream's first message, a `connect` push; everything after it is pushes.
 *
 * A connect that fails closes the stream with a disconnect push, as Centrifugo maps the error:
 * an expired token or connection 3005, permission denied 3507, a missing or invalid token
 * 3500 (Centrifugo answers 3004 there; reconnecting cannot help, so Bulwark says so), anything
 * else 3004.
 *
 * @module
 */
import {
  DisconnectCode,
  DisconnectError,
  ErrorCode,
  ProtocolError,
  disconnect,
  type Disconnect,
} from '../protocol/codes.js';
import type { ConnectRequest } from '../protocol/types.js';
import { connect } from './connect.js';
import type { SessionCore } from './session-core.js';

/** uniDisconnect is the disconnect a failed unidirectional connect closes with. */
export function uniDisconnect(err: unknown): Disconnect {
  if (err instanceof DisconnectError) return err.disconnect;
  if (err instanceof ProtocolError) {
    switch (err.code) {
      case ErrorCode.TokenExpired:
      case ErrorCode.Expired:
        return disconnect(DisconnectCode.Expired);
      case ErrorCode.PermissionDenied:
        return disconnect(DisconnectCode.PermissionDenied);
      case ErrorCode.Unauthorized:
        return disconnect(DisconnectCode.InvalidToken);
    }
  }
  return disconnect(DisconnectCode.ServerError);
}

/** uniConnect connects a unidirectional session with `req` and pushes its connect result first. */
export async function uniConnect(s: SessionCore, req: ConnectRequest): Promise<void> {
  const { metrics, log } = s.ctx;
  try {
    const out = await connect(s, req);
    metrics.command('connect', 'ok');
    if (out.reply.method === 'connect') s.pushNow({ type: 'connect', result: out.reply.result });
    out.after();
  } catch (err) {
    const d = uniDisconnect(err);
    metrics.command('connect', err instanceof DisconnectError ? 'disconnect' : 'error');
    if (d.code === DisconnectCode.ServerError && !(err instanceof ProtocolError)) {
      log.error({ err, client: s.id }, 'unidirectional connect failed');
    }
    s.disconnect(d);
  }
}
