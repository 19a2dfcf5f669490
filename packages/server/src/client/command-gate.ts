/**
 * The gate a client command passes when it arrives: the per-connection cap on commands
 * waiting (protection.rate_limit.max_pending_commands), the command rate limits (per
 * connection and per user), and load shedding's read level when its turn comes.
 *
 * A connected client's commands are judged on arrival — a client's rate is how fast it sends,
 * and a refused command costs nothing but its answer — and every command is answered in the
 * order it was sent (a reply never overtakes an earlier one): a refused command gets error 111
 * (temporary, so SDKs back off and retry) when its turn comes. A client refused
 * protection.rate_limit.disconnect_after times in a row is closed with 3013 at that point in
 * its command stream: every command before it is run and answered, none after it is run, so a
 * client knows that a command without a reply was not executed. A client stuck in a retry loop
 * then costs a reconnect with backoff instead of an endless stream of refused commands.
 *
 * @module
 */
import type { RateOwner } from '../protection/rate-limit.js';
import { DisconnectCode, ErrorCode, ProtocolError, disconnect } from '../protocol/codes.js';
import type { DecodedFrame } from '../protocol/decode.js';
import type { Command } from '../protocol/types.js';
import type { SessionCore } from './session-core.js';

/** GatedSession is a session with the counters the gate keeps on it. */
export interface GatedSession extends SessionCore, RateOwner {
  /** Commands queued (to run, or to be answered as refused) and not yet handled. */
  pendingCommands: number;
  /** Commands refused in a row; reset by any admitted command. */
  refusedInRow: number;
}

/** A decoded command: a known method, or one the decoder could not name (answered 404 in order). */
export type DecodedCommand = DecodedFrame['commands'][number];

/** Verdict is what the gate decides for an arriving command. */
export type Verdict = typeof RUN | typeof REFUSE | typeof CLOSE;
/** Run the command in its turn. */
export const RUN = 0;
/** Answer the command with error 111 in its turn, without running it. */
export const REFUSE = 1;
/** Close the connection with 3013 in this command's turn; neither it nor any later command runs. */
export const CLOSE = 2;

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
 * admit judges a command of a connected client on arrival and counts it as pending unless it
 * closes the connection. Over max_pending_commands waiting, or over its rate limit, it is
 * refused. Pongs and malformed commands always run (in order).
 */
export function admit(s: GatedSession, cmd: DecodedCommand): Verdict {
  let v: Verdict = RUN;
  if (cmd.method !== undefined && cmd.method !== 'pong') {
    const max = s.ctx.config.protection.rate_limit.max_pending_commands;
    v =
      max > 0 && s.pendingCommands >= max
        ? refusal(s, cmd, 'pending_commands', 'pending_commands', { client: s.id, user: s.user })
        : rateVerdict(s, cmd);
  }
  if (v !== CLOSE) s.pendingCommands++; // queued: to run, or to be answered in its turn
  return v;
}

/** rateVerdict spends the command's rate tokens: RUN, or the refusal's verdict. */
function rateVerdict(s: GatedSession, cmd: Command): Verdict {
  const ctx = s.ctx;
  const verdict = ctx.rateLimiter.check(cmd.method, s.user, s, ctx.hub.userConnectionCount(s.user), performance.now());
  if (verdict === undefined) {
    s.refusedInRow = 0;
    return RUN;
  }
  return refusal(s, cmd, `rate_limit_${verdict.scope}_${verdict.cls}`, `rate_limit_${verdict.scope}`, {
    client: s.id,
    user: s.user,
    class: verdict.cls,
  });
}

/**
 * refusal counts a refused command under `reason` (logged once per burst of `logKind`) and says
 * whether it is answered 111 in its turn or, after disconnect_after refusals in a row, closes
 * the connection. Refused commands wait for their turn too: with disconnect_after 0 they are
 * bounded at twice max_pending_commands, past which the connection is closed the same way.
 */
function refusal(s: GatedSession, cmd: Command, reason: string, logKind: string, fields: object): Verdict {
  const ctx = s.ctx;
  ctx.metrics.command(cmd.method, 'error');
  ctx.metrics.reject(reason);
  ctx.burstLog.warn(logKind, { ...fields, method: cmd.method }, `command refused: ${reason}`);
  const rl = ctx.config.protection.rate_limit;
  if (rl.disconnect_after > 0 && ++s.refusedInRow >= rl.disconnect_after) return CLOSE;
  if (rl.max_pending_commands > 0 && s.pendingCommands >= 2 * rl.max_pending_commands) return CLOSE;
  return REFUSE;
}

/** answerRefused answers a refused command in its turn (111). */
export function answerRefused(s: SessionCore, cmd: DecodedCommand): void {
  if (cmd.id > 0) s.replyError(cmd.id, tooManyRequests);
}

/** closeRefused closes a connection refused too often, in its turn (3013, reconnect allowed). */
export function closeRefused(s: SessionCore): void {
  s.disconnect(disconnect(DisconnectCode.TooManyRequests));
}

/**
 * rateLimitedBeforeConnect spends the rate tokens of a command that runs before the connection
 * is connected (its user unknown until then, so it is judged in its turn, not on arrival):
 * refused, it is answered 111 at once, or the connection closed with 3013 (see refusal).
 */
export function rateLimitedBeforeConnect(s: GatedSession, cmd: Command): boolean {
  const v = rateVerdict(s, cmd);
  if (v === RUN) return false;
  if (v === CLOSE) closeRefused(s);
  else answerRefused(s, cmd);
  return true;
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
  if (cmd.id > 0) s.replyError(cmd.id, overloadError);
  return true;
}
