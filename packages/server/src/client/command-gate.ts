/**
 * The gate a client command passes before it runs: the per-connection cap on commands
 * waiting (protection.rate_limit.max_pending_commands), the command rate limits (per
 * connection and per user) and load shedding's read level. A refused command is answered
 * with error 111 (temporary, so SDKs back off and retry) at once, never after the commands
 * queued before it; a client refused protection.rate_limit.disconnect_after times in a row
 * is closed with 3013 (reconnect allowed), so a client stuck in a retry loop costs a
 * reconnect with backoff instead of an endless stream of refused commands.
 *
 * @module
 */
import type { RateOwner } from '../protection/rate-limit.js';
import { DisconnectCode, ErrorCode, ProtocolError, disconnect } from '../protocol/codes.js';
import type { DecodedFrame } from '../protocol/decode.js';
import { encodeErrorReply } from '../protocol/encode.js';
import type { Command } from '../protocol/types.js';
import type { SessionCore } from './session-core.js';

/** GatedSession is a session with the counters the gate keeps on it. */
export interface GatedSession extends SessionCore, RateOwner {
  /** Commands queued and not yet handled. */
  pendingCommands: number;
  /** Commands refused in a row; reset by any admitted command. */
  refusedInRow: number;
}

/** A decoded command: a known method, or one the decoder could not name (answered 404 in order). */
export type DecodedCommand = DecodedFrame['commands'][number];

/** The commands load shedding refuses at its read level, with their rejection label. */
const shedReasons: Readonly<Partial<Record<string, string>>> = {
  history: 'overload_read',
  presence: 'overload_read',
  presence_stats: 'overload_read',
  rpc: 'overload_rpc',
};
const tooManyRequests = new ProtocolError(ErrorCode.TooManyRequests).toWire();
const overloadError = new ProtocolError(ErrorCode.TooManyRequests, 'too many requests: server overloaded').toWire();

/**
 * admit decides on arrival whether a command of a connected client is queued: over
 * max_pending_commands waiting, or over its rate limit, it is refused. Pongs and malformed
 * commands always pass (they are handled in order).
 */
export function admit(s: GatedSession, cmd: DecodedCommand): boolean {
  if (cmd.method === undefined || cmd.method === 'pong' || s.state === 'closed') return true;
  const max = s.ctx.config.protection.rate_limit.max_pending_commands;
  if (max > 0 && s.pendingCommands >= max) {
    refuse(s, cmd, 'pending_commands', 'pending_commands', { client: s.id, user: s.user });
    return false;
  }
  return !rateLimited(s, cmd);
}

/** rateLimited spends the command's rate tokens; refused, it is answered 111 (see refuse). */
export function rateLimited(s: GatedSession, cmd: Command): boolean {
  const ctx = s.ctx;
  const verdict = ctx.rateLimiter.check(cmd.method, s.user, s, ctx.hub.userConnectionCount(s.user), performance.now());
  if (verdict === undefined) {
    s.refusedInRow = 0;
    return false;
  }
  refuse(s, cmd, `rate_limit_${verdict.scope}_${verdict.cls}`, `rate_limit_${verdict.scope}`, {
    client: s.id,
    user: s.user,
    method: cmd.method,
    class: verdict.cls,
  });
  return true;
}

/**
 * refuse answers a refused command with 111, counted under `reason` and logged once per burst
 * of `logKind`, or closes the connection with 3013 after too many refusals in a row.
 */
function refuse(s: GatedSession, cmd: Command, reason: string, logKind: string, fields: Record<string, unknown>): void {
  const ctx = s.ctx;
  ctx.metrics.command(cmd.method, 'error');
  ctx.metrics.reject(reason);
  ctx.burstLog.warn(logKind, { ...fields, method: cmd.method }, `command refused: ${reason}`);
  const limit = ctx.config.protection.rate_limit.disconnect_after;
  if (limit > 0 && ++s.refusedInRow >= limit) {
    s.disconnect(disconnect(DisconnectCode.TooManyRequests));
    return;
  }
  if (cmd.id > 0) s.reply(encodeErrorReply(cmd.id, tooManyRequests));
}

/**
 * shed refuses a read or rpc command while load shedding is at its read level (see
 * protection/load-shedder.ts): error 111, temporary. Cheaper than serving it by far — no
 * engine call, no encoding of a result.
 */
export function shed(s: SessionCore, cmd: Command): boolean {
  const reason = shedReasons[cmd.method];
  if (reason === undefined) return false;
  const ctx = s.ctx;
  if (!ctx.shedder.read) return false;
  ctx.metrics.command(cmd.method, 'error');
  ctx.metrics.reject(reason);
  if (cmd.id > 0) s.reply(encodeErrorReply(cmd.id, overloadError));
  return true;
}
