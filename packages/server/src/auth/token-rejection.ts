/**
 * Why a token was rejected ({@link TokenRejection}: expired, does not verify, or issued for
 * another channel, user or client), and the wire error Centrifugo answers for it on each
 * command (see the table in token-verifier.ts). The detail stays in the wire error's `cause`.
 *
 * @module
 */
import { DisconnectCode, DisconnectError, ErrorCode, ProtocolError, disconnect } from '../protocol/codes.js';

/** SubscriptionTokenPurpose is the command a subscription token came with. */
export type SubscriptionTokenPurpose = 'subscribe' | 'sub_refresh';

/** Why a token was rejected, before it is mapped to a wire error. */
export class TokenRejection extends Error {
  constructor(
    readonly kind: 'expired' | 'invalid' | 'mismatch',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TokenRejection';
  }
}

/** invalid is the rejection of a token that does not verify. */
export function invalid(message: string, cause?: unknown): TokenRejection {
  return new TokenRejection('invalid', message, cause === undefined ? undefined : { cause });
}

function withCause<E extends Error>(error: E, cause: unknown): E {
  error.cause = cause;
  return error;
}

/** connectError is the wire error for a connection token rejected with `err`. */
export function connectError(err: unknown): Error {
  if (err instanceof TokenRejection && err.kind === 'expired') {
    return withCause(new ProtocolError(ErrorCode.TokenExpired), err);
  }
  return withCause(new DisconnectError(disconnect(DisconnectCode.InvalidToken)), err);
}

/** subscriptionError is the wire error for a subscription token rejected with `err` on `purpose`. */
export function subscriptionError(err: unknown, purpose: SubscriptionTokenPurpose): Error {
  const kind = err instanceof TokenRejection ? err.kind : 'invalid';
  if (kind === 'expired') return withCause(new ProtocolError(ErrorCode.TokenExpired), err);
  if (kind === 'mismatch' || purpose === 'sub_refresh') {
    return withCause(new DisconnectError(disconnect(DisconnectCode.InvalidToken)), err);
  }
  return withCause(new ProtocolError(ErrorCode.PermissionDenied), err);
}
