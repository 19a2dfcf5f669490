/**
 * The mapping from ioredis errors onto the engine's errors.
 *
 * @module
 */
import { EngineUnavailableError } from '../errors.js';

export { EngineUnavailableError };

/**
 * Redis error replies that mean "not now" rather than "wrong command": loading a dataset,
 * a replica after failover, a cluster without quorum, a busy script.
 */
const temporaryReplies = /^(LOADING|READONLY|CLUSTERDOWN|MASTERDOWN|TRYAGAIN|BUSY|NOREPLICAS)\b/;

/**
 * toEngineError maps an ioredis failure to what the engine throws: a Redis error reply that is
 * not about availability (a bug: wrong type, bad script) is returned as is; everything else
 * (connection refused or closed, offline, command timeout, temporary replies) becomes an
 * {@link EngineUnavailableError}.
 */
export function toEngineError(err: unknown, address: string): unknown {
  if (err instanceof EngineUnavailableError) return err;
  if (err instanceof Error && err.name === 'ReplyError' && !temporaryReplies.test(err.message)) return err;
  return new EngineUnavailableError(address, { cause: err });
}
