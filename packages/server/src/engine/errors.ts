/**
 * Errors every engine backed by a service (Redis now; NATS, PostgreSQL later) shares, so the
 * session and the API can answer them without knowing which engine runs.
 *
 * @module
 */

/**
 * EngineUnavailableError means the engine could not reach its service (down, unreachable,
 * timed out, failing over, still loading). It is temporary: the same call may succeed once the service is back,
 * so callers answer their clients with a temporary error instead of a final one. The message
 * names where the service was expected (never its credentials); `cause` keeps the underlying error.
 */
export class EngineUnavailableError extends Error {
  /** Always true: retrying later may succeed. */
  readonly temporary = true;
  /** Where the service was expected, e.g. "redis://127.0.0.1:6379". */
  readonly address: string;

  constructor(address: string, options?: { cause?: unknown }) {
    const reason = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(`engine unavailable at ${address}${reason}`, options);
    this.name = 'EngineUnavailableError';
    this.address = address;
  }
}
