/**
 * Bulwark's programmer and runtime errors: prefixed string codes (`BW_ERR_…`), all defined
 * here, documented in docs/errors.md (a test keeps the two in sync). Wire codes (protocol
 * errors and disconnects) live in protocol/codes.ts instead. Codes are never reused.
 *
 * @module
 */

/** errorCodes maps every BW_ERR code to its meaning. */
export const errorCodes = {
  BW_ERR_CONFIG_INVALID: 'The configuration failed validation; the message lists every bad key.',
  BW_ERR_CONFIG_FILE: 'The configuration file could not be read or is not valid JSON.',
  BW_ERR_CONFIG_ENV: 'A BULWARK_* environment variable is unknown or its value cannot be parsed.',
  BW_ERR_LISTEN: 'The HTTP server could not listen on the configured address and port.',
  BW_ERR_NOT_STARTED: 'The node was used before start() finished.',
  BW_ERR_ALREADY_STARTED: 'start() was called twice on one node.',
  BW_ERR_RPC_HANDLER: 'An RPC handler is registered twice for one method.',
  BW_ERR_TLS: 'The TLS certificate or key (http_server.tls) cannot be read or is not PEM.',
  BW_ERR_ENGINE_SCHEMA:
    'The PostgreSQL engine found a database schema newer than this build knows (a newer Bulwark migrated it), or could not migrate it.',
  BW_ERR_NATS_MALFORMED:
    'A message on one of the NATS broker subjects (broker.nats.prefix) was not written by Bulwark (or by a Bulwark of another version); it was skipped.',
  BW_ERR_NATS_FANOUT:
    'A publication was stored in history (it has its offset) but could not be handed to NATS; other nodes fill the gap from history when the channel publishes again, positioned subscribers recover it.',
  BW_ERR_REDIS_FANOUT_MALFORMED:
    'A message on one of the Redis fan-out pub/sub channels (broker.redis.prefix) was not written by Bulwark (or by a Bulwark of another version); it was skipped.',
  BW_ERR_REDIS_FANOUT:
    'A publication was stored in history (it has its offset) but could not be handed to Redis pub/sub (broker.type redis); other nodes fill the gap from history when the channel publishes again, positioned subscribers recover it.',
  BW_ERR_OUTBOX_TABLE:
    'The outbox consumer (outbox.enabled) found no outbox table at outbox.table, or one without the columns it needs; the message names them.',
  BW_ERR_PLAN_INPUT:
    'bulwark plan: the forecast or the coefficients file is invalid (unreadable, not JSON, an unknown key, a value out of range); the message names every bad key.',
  BW_ERR_FD_LIMIT:
    'The open-file limit is too low for client.connection_limit (or leaves no room for any connection); the message says what to set.',
} as const;

/** BulwarkErrorCode is one of the codes in {@link errorCodes}. */
export type BulwarkErrorCode = keyof typeof errorCodes;

/** BulwarkError is an error with a stable `code` for programs and a message for people. */
export class BulwarkError extends Error {
  readonly code: BulwarkErrorCode;
  constructor(code: BulwarkErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BulwarkError';
    this.code = code;
  }
}
