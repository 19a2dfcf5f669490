/**
 * Wire codes of the Centrifugo client protocol v2: reply error codes, disconnect codes and
 * unsubscribe codes. The numbers are part of the protocol: SDKs decide on them whether to
 * retry, reconnect or resubscribe, so they must never change meaning.
 *
 * Ranges (as the protocol defines them):
 * - errors: 0–399 reserved by the server, 400–1999 for applications; `temporary` tells the
 *   client a retry may succeed;
 * - disconnects: 3000–3499 and 4000–4499 → client reconnects; 3500–3999 and 4500–4999 →
 *   terminal, no reconnect; ≥ 5000 → reconnect; < 3000 are transport codes;
 * - unsubscribes: < 2500 → terminal (client stays unsubscribed), ≥ 2500 → client resubscribes.
 *
 * @module
 */

/** ProtocolErrorShape is an error as it travels in a reply: `{code, message, temporary?}`. */
export interface ProtocolErrorShape {
  readonly code: number;
  readonly message: string;
  readonly temporary?: boolean;
}

/** ErrorCode lists the built-in reply error codes. */
export const ErrorCode = {
  Internal: 100,
  Unauthorized: 101,
  UnknownChannel: 102,
  PermissionDenied: 103,
  MethodNotFound: 104,
  AlreadySubscribed: 105,
  LimitExceeded: 106,
  BadRequest: 107,
  NotAvailable: 108,
  TokenExpired: 109,
  Expired: 110,
  TooManyRequests: 111,
  UnrecoverablePosition: 112,
  /**
   * Bulwark's own (Centrifugo has no such code): a conditional map write lost — the key was
   * taken (`if_new`), is gone (`if_exists`), or the channel moved on (expected position). Not
   * temporary: the same write fails again until the client has read the new state.
   */
  Conflict: 113,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const errorMessages: Record<ErrorCode, string> = {
  100: 'internal server error',
  101: 'unauthorized',
  102: 'unknown channel',
  103: 'permission denied',
  104: 'method not found',
  105: 'already subscribed',
  106: 'limit exceeded',
  107: 'bad request',
  108: 'not available',
  109: 'token expired',
  110: 'expired',
  111: 'too many requests',
  112: 'unrecoverable position',
  113: 'conflict',
};

const temporaryErrors: ReadonlySet<number> = new Set([ErrorCode.Internal, ErrorCode.TooManyRequests]);

/**
 * ProtocolError is an error that is answered to the client in a reply (it does not close the
 * connection). Throw it from any command handler; the session encodes it as `{"error": …}`.
 */
export class ProtocolError extends Error {
  readonly code: number;
  readonly temporary: boolean;

  constructor(code: number, message?: string, temporary?: boolean) {
    super(message ?? errorMessages[code as ErrorCode] ?? 'error');
    this.name = 'ProtocolError';
    this.code = code;
    this.temporary = temporary ?? temporaryErrors.has(code);
  }

  /** toWire returns the reply shape of this error. */
  toWire(): ProtocolErrorShape {
    return this.temporary
      ? { code: this.code, message: this.message, temporary: true }
      : { code: this.code, message: this.message };
  }
}

/** protocolError builds the built-in error for `code`, optionally with a more specific message. */
export function protocolError(code: ErrorCode, message?: string): ProtocolError {
  return new ProtocolError(code, message);
}

/** DisconnectCode lists the built-in disconnect codes. */
export const DisconnectCode = {
  /** Sent to no one: the connection closed without advice from the server. */
  ConnectionClosed: 3000,
  Shutdown: 3001,
  ServerError: 3004,
  Expired: 3005,
  SubExpired: 3006,
  Slow: 3008,
  WriteError: 3009,
  InsufficientState: 3010,
  ForceReconnect: 3011,
  NoPong: 3012,
  TooManyRequests: 3013,
  InvalidToken: 3500,
  BadRequest: 3501,
  Stale: 3502,
  ForceNoReconnect: 3503,
  ConnectionLimit: 3504,
  ChannelLimit: 3505,
  InappropriateProtocol: 3506,
  PermissionDenied: 3507,
  NotAvailable: 3508,
  TooManyErrors: 3509,
} as const;
export type DisconnectCode = (typeof DisconnectCode)[keyof typeof DisconnectCode];

/** Disconnect is a disconnect advice: a code and a short human reason (< 123 bytes). */
export interface Disconnect {
  readonly code: number;
  readonly reason: string;
}

const disconnectReasons: Record<DisconnectCode, string> = {
  3000: 'connection closed',
  3001: 'shutdown',
  3004: 'internal server error',
  3005: 'connection expired',
  3006: 'subscription expired',
  3008: 'slow',
  3009: 'write error',
  3010: 'insufficient state',
  3011: 'force reconnect',
  3012: 'no pong',
  3013: 'too many requests',
  3500: 'invalid token',
  3501: 'bad request',
  3502: 'stale',
  3503: 'force disconnect',
  3504: 'connection limit',
  3505: 'channel limit',
  3506: 'inappropriate protocol',
  3507: 'permission denied',
  3508: 'not available',
  3509: 'too many errors',
};

/** disconnect returns the built-in advice for `code`, optionally with another reason. */
export function disconnect(code: DisconnectCode, reason?: string): Disconnect {
  return { code, reason: reason ?? disconnectReasons[code] };
}

/** isReconnectAllowed tells whether a client should reconnect after `code`, per the protocol. */
export function isReconnectAllowed(code: number): boolean {
  return !((code >= 3500 && code < 4000) || (code >= 4500 && code < 5000));
}

/** UnsubscribeCode lists the built-in unsubscribe push codes. */
export const UnsubscribeCode = {
  /** Server-side unsubscribe (API call): terminal. */
  Server: 2000,
  /** Position lost: the client resubscribes and recovers. */
  InsufficientState: 2500,
  /** Subscription expired (token not refreshed): the client resubscribes. */
  Expired: 2501,
} as const;
export type UnsubscribeCode = (typeof UnsubscribeCode)[keyof typeof UnsubscribeCode];

/** DisconnectError carries a disconnect out of a command handler: the session closes with it. */
export class DisconnectError extends Error {
  readonly disconnect: Disconnect;
  constructor(d: Disconnect) {
    super(`disconnect ${d.code}: ${d.reason}`);
    this.name = 'DisconnectError';
    this.disconnect = d;
  }
}
