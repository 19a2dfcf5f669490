/**
 * The mapping from node-postgres errors onto the engine's errors: what is a temporary
 * unavailability (retry later), what may have been applied (a publish whose COMMIT got no
 * answer), and what a person must fix (a password, a permission, a missing table), said in
 * words that name the config key or the table.
 *
 * @module
 */
import { BulwarkError } from '../../errors.js';
import { EngineOutcomeUnknownError, EngineUnavailableError } from '../errors.js';

export { EngineOutcomeUnknownError, EngineUnavailableError };

/** The config key holding the connection string, named in every message about credentials. */
const DSN_KEY = 'engine.postgresql.dsn (BULWARK_ENGINE_POSTGRESQL_DSN)';

/**
 * SQLSTATE classes and codes that mean "not now" rather than "wrong query": connection
 * exceptions (08), insufficient resources (53), operator intervention (57: shutdown, cannot
 * connect now), serialization failure and deadlock (40001, 40P01: the transaction was rolled
 * back), and a query cancelled by statement_timeout (57014). PostgreSQL answered them, so the
 * statement was not applied.
 */
function temporarySqlState(code: string): boolean {
  return /^(08|53|57)/.test(code) || code === '40001' || code === '40P01';
}

/** sqlState returns the SQLSTATE of an error PostgreSQL answered, or undefined for a client-side error. */
export function sqlState(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * setupProblem turns an answer that needs a person (authentication refused, database missing,
 * permission missing, table missing) into a message naming what to fix; undefined otherwise.
 */
export function setupProblem(err: unknown, address: string): string | undefined {
  const code = sqlState(err);
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case '28P01':
    case '28000':
      return `PostgreSQL at ${address} refused authentication (${message}): check the user and password in ${DSN_KEY}`;
    case '3D000':
      return `PostgreSQL at ${address} has no such database (${message}): create it, or fix the database name in ${DSN_KEY}`;
    case '42501':
      return `PostgreSQL at ${address} refused a permission (${message}): the role in ${DSN_KEY} needs SELECT, INSERT, UPDATE and DELETE on the engine's tables (and CREATE on the schema to migrate; or run \`bulwark migrate\` as the owner)`;
    case '42P01':
      return `PostgreSQL at ${address}: a table of the engine is missing (${message}): run \`bulwark migrate\`, and check engine.postgresql.table_prefix`;
    default:
      return undefined;
  }
}

/**
 * toEngineError maps a failed call to what the engine throws:
 * - an answer needing a person (see {@link setupProblem}) becomes an EngineUnavailableError
 *   whose message says what to fix: the node stays up and not ready, and retries, as with a
 *   Redis that refuses its password;
 * - a temporary answer or a client-side failure (refused, reset, timed out) becomes an
 *   {@link EngineUnavailableError}; for a write that `mayHaveApplied` (the COMMIT was sent and
 *   no answer came), an {@link EngineOutcomeUnknownError};
 * - any other answer (a bug: bad SQL, bad data) is returned as is.
 */
export function toEngineError(err: unknown, address: string, mayHaveApplied = false): unknown {
  if (err instanceof EngineUnavailableError || err instanceof BulwarkError) return err;
  const problem = setupProblem(err, address);
  if (problem !== undefined) return new EngineUnavailableError(address, { cause: new Error(problem, { cause: err }) });
  const code = sqlState(err);
  if (code !== undefined && !temporarySqlState(code)) return err;
  if (mayHaveApplied && code === undefined) return new EngineOutcomeUnknownError(address, { cause: err });
  return new EngineUnavailableError(address, { cause: err });
}
