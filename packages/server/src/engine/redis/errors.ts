/**
 * The mapping from ioredis errors onto the engine's errors, and whether a failed write may
 * have been applied.
 *
 * @module
 */
import { EngineOutcomeUnknownError, EngineUnavailableError } from '../errors.js';

export { EngineOutcomeUnknownError, EngineUnavailableError };

/**
 * NoAnswerError is a call given up by Bulwark's own deadline (cluster calls, connecting): it may
 * have been sent.
 */
export class NoAnswerError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'NoAnswerError';
  }
}

/**
 * Redis error replies that mean "not now" rather than "wrong command": loading a dataset,
 * a replica after failover, a cluster without quorum, a busy script. Redis refused the command
 * with them, so it was not applied.
 */
const temporaryReplies = /^(LOADING|READONLY|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|BUSY|NOREPLICAS)\b/;

/**
 * What ioredis rejects a command with when its connection is not ready and the offline queue is
 * off (as Bulwark sets it): the command was never written to a socket.
 */
const neverSent = /^(Stream isn't writeable|Cluster isn't ready) and enableOfflineQueue options is false$/;

/**
 * notApplied tells whether a failed Redis call certainly had no effect: it was never sent, or
 * Redis refused it. Everything else (command timeout, connection lost with the command in
 * flight, no answer by the deadline, anything not recognised) may have been applied.
 */
function notApplied(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'ReplyError') return temporaryReplies.test(err.message);
  return neverSent.test(err.message);
}

/**
 * toEngineError maps an ioredis failure to what the engine throws: a Redis error reply that is
 * not about availability (a bug: wrong type, bad script) is returned as is; everything else
 * (connection refused or closed, offline, command timeout, temporary replies) becomes an
 * {@link EngineUnavailableError} — for a `write` that may have been applied (see notApplied),
 * an {@link EngineOutcomeUnknownError}. `write` marks calls whose repetition is not harmless
 * (publishes); reads and idempotent writes are safe to retry whatever happened.
 */
export function toEngineError(err: unknown, address: string, write = false): unknown {
  if (err instanceof EngineUnavailableError) return err;
  if (err instanceof Error && err.name === 'ReplyError' && !temporaryReplies.test(err.message)) return err;
  if (write && !notApplied(err)) return new EngineOutcomeUnknownError(address, { cause: err });
  return new EngineUnavailableError(address, { cause: err });
}
