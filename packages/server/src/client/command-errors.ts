/**
 * How a failed command reaches its client: a ProtocolError becomes an error reply, a
 * DisconnectError closes the connection, an unreachable engine is a temporary error (so the
 * SDK retries after its backoff) unless a publish may have been applied (then 100 without
 * `temporary`: the outcome is unknown), and anything else is an internal error, logged with the
 * command.
 *
 * @module
 */
import { EngineOutcomeUnknownError, EngineUnavailableError } from '../engine/errors.js';
import { DisconnectError, ErrorCode, ProtocolError } from '../protocol/codes.js';
import type { Command } from '../protocol/types.js';
import type { SessionCore } from './session-core.js';

const engineUnavailable = new ProtocolError(
  ErrorCode.Internal,
  'internal server error: engine unavailable',
  true,
).toWire();
const engineOutcomeUnknown = new ProtocolError(
  ErrorCode.Internal,
  'internal server error: engine unavailable, outcome unknown',
  false,
).toWire();
const internalError = new ProtocolError(ErrorCode.Internal).toWire();

/** answerFailure answers command `cmd` that threw `err`, and counts it (with its duration from `startedAt`). */
export function answerFailure(s: SessionCore, cmd: Command, err: unknown, startedAt?: number): void {
  const { metrics, log, burstLog } = s.ctx;
  if (err instanceof DisconnectError) {
    metrics.command(cmd.method, 'disconnect', startedAt);
    s.disconnect(err.disconnect);
    return;
  }
  metrics.command(cmd.method, 'error', startedAt);
  let wire;
  if (err instanceof ProtocolError) {
    wire = err.toWire();
  } else if (err instanceof EngineUnavailableError) {
    // Redis unreachable. Once per burst in the log — an outage fails every command of every client.
    burstLog.error('engine.command', { method: cmd.method, err: err.message }, 'command failed: engine unavailable');
    wire = err instanceof EngineOutcomeUnknownError ? engineOutcomeUnknown : engineUnavailable;
  } else {
    log.error({ err, client: s.id, user: s.user, method: cmd.method }, 'command failed');
    wire = internalError;
  }
  if (cmd.id > 0) s.replyError(cmd.id, wire);
}
