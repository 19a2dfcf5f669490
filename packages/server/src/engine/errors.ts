/**
 * Errors every engine backed by a service (Redis now; NATS, PostgreSQL later) shares, so the
 * session and the API can answer them without knowing which engine runs.
 *
 * @module
 */

/**
 * EngineUnavailableError means the engine could not reach its service (down, unreachable,
 * timed out, failing over, still loading) and that calling again is safe: the command never
 * reached the service, or the service refused it, or it is one whose repetition changes nothing
 * (a read, a presence refresh, a subscribe). It is temporary: the same call may succeed once the
 * service is back, so callers answer their clients with a temporary error instead of a final
 * one. The message names where the service was expected (never its credentials); `cause` keeps
 * the underlying error. A write whose fate is not known is an {@link EngineOutcomeUnknownError}.
 */
export class EngineUnavailableError extends Error {
  /** Whether calling again is safe and may succeed (false only for an outcome unknown). */
  readonly temporary: boolean = true;
  /** Where the service was expected, e.g. "redis://127.0.0.1:6379". */
  readonly address: string;

  constructor(address: string, options?: { cause?: unknown }) {
    const reason = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(`engine unavailable at ${address}${reason}`, options);
    this.name = 'EngineUnavailableError';
    this.address = address;
  }
}

/**
 * EngineOutcomeUnknownError means a write that is not safe to repeat (a publish) was sent to
 * the service, or may have been, and no answer came: within the command timeout, or before the
 * connection was lost. The service may have applied it, and may still apply it later (a paused
 * Redis runs the commands it buffered once it resumes). Not temporary: a blind retry can
 * publish twice. Still an EngineUnavailableError, so everything that counts, logs or reports
 * an unreachable engine treats it as one.
 */
export class EngineOutcomeUnknownError extends EngineUnavailableError {
  override readonly temporary: boolean = false;

  constructor(address: string, options?: { cause?: unknown }) {
    super(address, options);
    this.name = 'EngineOutcomeUnknownError';
    this.message = `${this.message} (outcome unknown: the write may have been applied)`;
  }
}
