/**
 * JWT verification for connection and subscription tokens, with Centrifugo's claims and
 * Centrifugo's error mapping (checked against Centrifugo v6 `internal/jwtverify` and
 * `internal/client/handler.go`; the docs do not spell the subscribe case out):
 *
 * | token                                  | connect, refresh | subscribe | sub_refresh |
 * | -------------------------------------- | ---------------- | --------- | ----------- |
 * | `exp` in the past / `nbf` in future    | error 109        | error 109 | error 109   |
 * | does not verify (see below)            | disconnect 3500  | error 103 | disc. 3500  |
 * | for another channel / user / client    | disconnect 3500  | disc 3500 | disc. 3500  |
 *
 * "Does not verify": malformed, bad signature, `alg` not enabled (incl. `none`), wrong
 * `aud`/`iss`, a claim of the wrong type, a missing `channel` in a subscription token, a
 * `channel` in a connection token.
 *
 * Subscribe: Centrifugo answers a token that does not verify with error 103 (permission denied,
 * not temporary), not with a disconnect: the connection stays and the subscription fails. A
 * token that verifies but was issued for another channel or user is a client bug or an attack,
 * and Centrifugo disconnects with 3500 for it, as does Bulwark.
 *
 * Expiry: the verifier always throws 109 for an expired (or not yet valid, `nbf`) token, which is
 * what Centrifugo answers to connect and subscribe. On `refresh` Centrifugo does not send 109: it
 * closes with 3005 (connection expired); the refresh handler should map the 109 accordingly.
 *
 * The thrown {@link ProtocolError} / {@link DisconnectError} carry the wire code and the
 * standard wire message only; the detail (for logs, never for the client) is in `error.cause`.
 *
 * Differences from Centrifugo, all deliberate:
 * - RSA keys must have at least 2048 bits (a `jose` requirement); the constructor rejects shorter keys.
 * - `b64info` / `b64data` must decode to UTF-8 JSON text: Bulwark speaks JSON only, so bytes
 *   that are not JSON could not be embedded in a reply. Anything else is an invalid token.
 * - Claim types are checked after `exp`, so an expired token with a malformed claim answers 109
 *   (Centrifugo: 3500); the client's next token is then rejected with 3500.
 *
 * @module
 */
import { createHmac, createPublicKey, timingSafeEqual } from 'node:crypto';
import { TextDecoder, TextEncoder } from 'node:util';
import {
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  importSPKI,
  jwtVerify,
  type CryptoKey,
  type JWTPayload,
} from 'jose';
import type { Config } from '../config/schema.js';
import { DisconnectCode, DisconnectError, ErrorCode, ProtocolError, disconnect } from '../protocol/codes.js';
import { asRaw, type RawJSON } from '../protocol/types.js';

/** HMAC_ALGORITHMS are the algorithms verified with `hmac_secret_key`. */
export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
/** RSA_ALGORITHMS are the algorithms verified with `rsa_public_key` (RSASSA-PKCS1-v1_5). */
export const RSA_ALGORITHMS = ['RS256', 'RS384', 'RS512'] as const;
/** ECDSA_ALGORITHMS are the algorithms verified with `ecdsa_public_key`; the key's curve picks one. */
export const ECDSA_ALGORITHMS = ['ES256', 'ES384', 'ES512'] as const;

/** TokenAlgorithm is a JWS algorithm Bulwark can verify (never `none`). */
export type TokenAlgorithm =
  (typeof HMAC_ALGORITHMS)[number] | (typeof RSA_ALGORITHMS)[number] | (typeof ECDSA_ALGORITHMS)[number];

/**
 * TokenVerifierOptions configure a {@link TokenVerifier}. An empty string or `undefined` means
 * "not configured": a key that is not configured enables none of its algorithms.
 */
export interface TokenVerifierOptions {
  /** HMAC secret for HS256/HS384/HS512. */
  hmacSecretKey?: string;
  /** PEM public key (SPKI `PUBLIC KEY`, or PKCS#1 `RSA PUBLIC KEY`) for RS256/RS384/RS512. */
  rsaPublicKey?: string;
  /** PEM public key (SPKI `PUBLIC KEY`) on P-256, P-384 or P-521 for ES256, ES384 or ES512. */
  ecdsaPublicKey?: string;
  /** When set, tokens must carry this `aud` (a string, or an array containing it). */
  audience?: string;
  /** When set, tokens must carry exactly this `iss`. */
  issuer?: string;
  /**
   * Seconds of clock skew tolerated on `exp` and `nbf`. Default 0, as in Centrifugo: token
   * issuers and Bulwark are expected to run NTP.
   */
  clockToleranceSeconds?: number;
  /** Config path named in configuration errors, e.g. `client.token`. Default `token`. */
  configPath?: string;
}

/** TokenConfigSection is a `client.token` or `client.subscription_token` config section. */
export type TokenConfigSection = Pick<
  Config['client']['token'],
  'hmac_secret_key' | 'rsa_public_key' | 'ecdsa_public_key' | 'audience' | 'issuer'
>;

/**
 * SubscriptionOverride holds the per-subscription overrides of namespace options a token may
 * carry (Centrifugo's `override` object of `{ "value": bool }` fields, flattened). An absent
 * field means "use the namespace option"; `{}` in the token means `false`, as in Centrifugo.
 */
export interface SubscriptionOverride {
  presence?: boolean;
  joinLeave?: boolean;
  forcePushJoinLeave?: boolean;
  forcePositioning?: boolean;
  forceRecovery?: boolean;
}

/** TokenSubscribeOptions are the options of one server-side subscription from a `subs` claim. */
export interface TokenSubscribeOptions {
  /** Channel info (`info`, or `b64info` decoded), shown in presence and join/leave. */
  info?: RawJSON;
  /** Data for the subscribe context in the connect reply (`data`, or `b64data` decoded). */
  data?: RawJSON;
  /** Overrides of the namespace's options for this connection. */
  override?: SubscriptionOverride;
}

/** ConnectTokenClaims are the verified, type-checked claims of a connection token. */
export interface ConnectTokenClaims {
  /** The user ID (`sub`); `''` is an anonymous user. */
  user: string;
  /**
   * Unix seconds when the connection expires, 0 for never: `expire_at` when the token has it
   * (0 or less meaning never), else `exp`, else 0.
   */
  expireAt: number;
  /** Connection info (`info`, or `b64info` decoded; `b64info` wins), shown to other clients. */
  info?: RawJSON;
  /**
   * Server-side subscriptions from the `channels` claim. Empty when `subs` is present and not
   * empty: Centrifugo then ignores `channels`, and so must the caller.
   */
  channels: string[];
  /** Server-side subscriptions with options, from the `subs` claim (a null-prototype object). */
  subs?: Record<string, TokenSubscribeOptions>;
  /** Server-only connection metadata (`meta`); never sent to clients. */
  meta?: RawJSON;
}

/** SubscriptionTokenClaims are the verified claims of a subscription token. */
export interface SubscriptionTokenClaims {
  /** The user ID (`sub`); equal to the connection's user once verified. */
  user: string;
  /** The channel (`channel`); equal to the requested channel once verified. */
  channel: string;
  /**
   * Unix seconds when the subscription expires, 0 for never: `expire_at` when present (0 or less
   * meaning never; `exp` still limits the token itself), else `exp`, else 0.
   */
  expireAt: number;
  /** Channel info (`info`, or `b64info` decoded), shown in presence, join/leave and publications. */
  info?: RawJSON;
  /** Data for the subscribe reply (`data`, or `b64data` decoded). */
  data?: RawJSON;
  /** Overrides of the namespace's options for this subscription. */
  override?: SubscriptionOverride;
  /** The client ID the token is bound to (`client`), when it is bound to one. */
  client?: string;
}

/** VerifyConnectOptions tune {@link TokenVerifier.verifyConnectToken}. */
export interface VerifyConnectOptions {
  /**
   * On `refresh`: the connection's user. A token for another user is then an invalid token
   * (3500), as in Centrifugo.
   */
  expectedUser?: string;
}

/** SubscriptionTokenPurpose is the command a subscription token came with. */
export type SubscriptionTokenPurpose = 'subscribe' | 'sub_refresh';

/** VerifySubscriptionOptions tune {@link TokenVerifier.verifySubscriptionToken}. */
export interface VerifySubscriptionOptions {
  /**
   * The connection's client ID. A token with a `client` claim is accepted only when it equals
   * this (so a token bound to a client is rejected when this is not given).
   */
  clientId?: string;
  /**
   * Which command the token came with; it changes only the answer to a token that does not
   * verify: 103 on `subscribe` (default), disconnect 3500 on `sub_refresh`.
   */
  purpose?: SubscriptionTokenPurpose;
}

/** Why a token was rejected, before it is mapped to a wire error. */
class TokenRejection extends Error {
  constructor(
    readonly kind: 'expired' | 'invalid' | 'mismatch',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TokenRejection';
  }
}

function invalid(message: string, cause?: unknown): TokenRejection {
  return new TokenRejection('invalid', message, cause === undefined ? undefined : { cause });
}

function withCause<E extends Error>(error: E, cause: unknown): E {
  error.cause = cause;
  return error;
}

const curveAlgorithm: Record<string, TokenAlgorithm> = {
  prime256v1: 'ES256',
  secp384r1: 'ES384',
  secp521r1: 'ES512',
};

const MIN_RSA_BITS = 2048;

/**
 * normalizePublicKey parses a PEM public key with node:crypto, checks its type, and returns it
 * as SPKI PEM (what `importSPKI` accepts) with its curve. Throws an Error naming `path`.
 */
function normalizePublicKey(pem: string, kind: 'rsa' | 'ec', path: string): { spki: string; curve?: string } {
  if (pem.includes('PRIVATE KEY')) {
    throw new Error(`${path}: expected a PEM public key, got a private key (keep it secret: never configure it here)`);
  }
  let key;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new Error(`${path}: not a valid PEM public key (${(err as Error).message})`, { cause: err });
  }
  if (key.asymmetricKeyType !== kind) {
    throw new Error(
      `${path}: expected an ${kind === 'rsa' ? 'RSA' : 'EC'} key, got ${key.asymmetricKeyType ?? 'unknown'}`,
    );
  }
  const details = key.asymmetricKeyDetails ?? {};
  if (kind === 'rsa' && (details.modulusLength ?? 0) < MIN_RSA_BITS) {
    throw new Error(`${path}: RSA key has ${details.modulusLength ?? 0} bits; at least ${MIN_RSA_BITS} are required`);
  }
  const spki = key.export({ type: 'spki', format: 'pem' }).toString();
  return details.namedCurve === undefined ? { spki } : { spki, curve: details.namedCurve };
}

/**
 * TokenVerifier verifies connection and subscription JWTs (HS*, RS*, ES*) against the keys it
 * was built with, and decodes Centrifugo's claims. It is safe to share between connections:
 * it holds only immutable configuration and a cache of imported keys.
 *
 * Only algorithms whose key is configured are accepted; `alg: none` and every other algorithm
 * (PS*, EdDSA, …) are invalid tokens. Keys are checked when the verifier is built (a bad PEM
 * throws then, naming the config key) and imported into WebCrypto once, on first use.
 */
export class TokenVerifier {
  /** The algorithms this verifier accepts, in a stable order. */
  readonly algorithms: readonly TokenAlgorithm[];

  private readonly hmacKey: Uint8Array | undefined;
  private readonly rsaSpki: string | undefined;
  private readonly ecdsaSpki: string | undefined;
  private readonly audience: string | undefined;
  private readonly issuer: string | undefined;
  private readonly clockTolerance: number;
  private readonly imported = new Map<TokenAlgorithm, Promise<CryptoKey>>();

  /**
   * Builds a verifier. Throws an Error (naming `configPath`) when a PEM key is malformed, of
   * the wrong type, an RSA key shorter than 2048 bits, or an EC key on an unsupported curve.
   * A verifier with no key at all is valid and rejects every token (insecure / anonymous setups).
   */
  constructor(options: TokenVerifierOptions) {
    const path = options.configPath ?? 'token';
    const algorithms: TokenAlgorithm[] = [];
    if (options.hmacSecretKey) {
      this.hmacKey = new TextEncoder().encode(options.hmacSecretKey);
      algorithms.push(...HMAC_ALGORITHMS);
    }
    if (options.rsaPublicKey) {
      this.rsaSpki = normalizePublicKey(options.rsaPublicKey, 'rsa', `${path}.rsa_public_key`).spki;
      algorithms.push(...RSA_ALGORITHMS);
    }
    if (options.ecdsaPublicKey) {
      const { spki, curve } = normalizePublicKey(options.ecdsaPublicKey, 'ec', `${path}.ecdsa_public_key`);
      const alg = curve === undefined ? undefined : curveAlgorithm[curve];
      if (alg === undefined) {
        throw new Error(
          `${path}.ecdsa_public_key: unsupported curve ${curve ?? 'unknown'} (use P-256, P-384 or P-521)`,
        );
      }
      this.ecdsaSpki = spki;
      algorithms.push(alg);
    }
    const tolerance = options.clockToleranceSeconds ?? 0;
    if (!Number.isFinite(tolerance) || tolerance < 0) {
      throw new Error(`${path}: clock tolerance must be a finite number of seconds >= 0`);
    }
    this.algorithms = algorithms;
    this.audience = options.audience || undefined;
    this.issuer = options.issuer || undefined;
    this.clockTolerance = tolerance;
  }

  /**
   * fromConfig builds a verifier from a `client.token` or `client.subscription_token` section;
   * `configPath` names the section in errors.
   */
  static fromConfig(section: TokenConfigSection, configPath = 'client.token'): TokenVerifier {
    return new TokenVerifier(tokenVerifierOptions(section, configPath));
  }

  /**
   * fromClientConfig builds the connection-token verifier and the subscription-token verifier
   * of a `client` config section. When `client.subscription_token.enabled` is false, subscription
   * tokens are verified with `client.token` (the same instance is returned twice), as in Centrifugo.
   */
  static fromClientConfig(client: Pick<Config['client'], 'token' | 'subscription_token'>): {
    connection: TokenVerifier;
    subscription: TokenVerifier;
  } {
    const connection = TokenVerifier.fromConfig(client.token, 'client.token');
    const subscription = client.subscription_token.enabled
      ? TokenVerifier.fromConfig(client.subscription_token, 'client.subscription_token')
      : connection;
    return { connection, subscription };
  }

  /**
   * ready imports every configured key now instead of on first use, so a key WebCrypto refuses
   * fails at startup. Optional; resolves when all keys are imported.
   */
  async ready(): Promise<void> {
    await Promise.all(this.algorithms.map((alg) => this.keyFor(alg)));
  }

  /**
   * verifyConnectToken verifies a connection token and returns its claims.
   *
   * Throws `ProtocolError(109)` when the token is expired (or not yet valid) and
   * `DisconnectError(3500)` for any other invalid token, including one for another user than
   * `options.expectedUser`. The detail is in the error's `cause`.
   */
  async verifyConnectToken(token: string, options: VerifyConnectOptions = {}): Promise<ConnectTokenClaims> {
    try {
      const payload = await this.verifyJwt(token);
      const claims = parseConnectClaims(payload);
      if (options.expectedUser !== undefined && claims.user !== options.expectedUser) {
        throw new TokenRejection('mismatch', 'token user does not match the connection user');
      }
      return claims;
    } catch (err) {
      throw connectError(err);
    }
  }

  /**
   * verifySubscriptionToken verifies a subscription token for `channel`, presented by a
   * connection of user `clientUser`, and returns its claims.
   *
   * Throws `ProtocolError(109)` when the token is expired (or not yet valid);
   * `DisconnectError(3500)` when it verifies but its `channel`, `sub` or `client` claim does not
   * match; and for a token that does not verify (signature, format, algorithm, `aud`/`iss`,
   * claim types, missing `channel`): `ProtocolError(103)` on `subscribe` (default) or
   * `DisconnectError(3500)` on `sub_refresh` — as Centrifugo does. The detail is in `cause`.
   */
  async verifySubscriptionToken(
    token: string,
    channel: string,
    clientUser: string,
    options: VerifySubscriptionOptions = {},
  ): Promise<SubscriptionTokenClaims> {
    try {
      const payload = await this.verifyJwt(token);
      const claims = parseSubscriptionClaims(payload);
      if (claims.channel !== channel) {
        throw new TokenRejection('mismatch', `token is for channel "${claims.channel}", not "${channel}"`);
      }
      if (claims.user !== clientUser) {
        throw new TokenRejection('mismatch', 'token user does not match the connection user');
      }
      if (claims.client !== undefined && claims.client !== options.clientId) {
        throw new TokenRejection('mismatch', 'token is bound to another client');
      }
      return claims;
    } catch (err) {
      throw subscriptionError(err, options.purpose ?? 'subscribe');
    }
  }

  /** verifyJwt checks the header, signature, `aud`, `iss`, `exp` and `nbf`, and returns the payload. */
  private async verifyJwt(token: string): Promise<JWTPayload> {
    if (typeof token !== 'string' || token === '') throw invalid('empty token');
    let alg: unknown;
    let header: Record<string, unknown>;
    try {
      header = decodeProtectedHeader(token) as Record<string, unknown>;
      alg = header['alg'];
    } catch (err) {
      throw invalid('malformed token header', err);
    }
    if (typeof alg !== 'string' || !(this.algorithms as readonly string[]).includes(alg)) {
      throw invalid(
        alg === 'none'
          ? 'unsigned tokens (alg none) are not accepted'
          : `algorithm ${String(alg)} is not enabled (enabled: ${this.algorithms.join(', ') || 'none'})`,
      );
    }
    if (alg.startsWith('HS')) return this.verifyHmac(token, header, alg as TokenAlgorithm);
    const key = await this.keyFor(alg as TokenAlgorithm);
    try {
      const { payload } = await jwtVerify(token, key, {
        algorithms: [alg],
        audience: this.audience,
        issuer: this.issuer,
        clockTolerance: this.clockTolerance,
      });
      return payload;
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) {
        throw new TokenRejection('expired', 'token expired', { cause: err });
      }
      if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'nbf' && err.reason === 'check_failed') {
        // Centrifugo answers "not yet valid" like "expired": the client gets a fresh token.
        throw new TokenRejection('expired', 'token not valid yet (nbf)', { cause: err });
      }
      throw invalid(err instanceof Error ? err.message : 'token verification failed', err);
    }
  }

  /**
   * verifyHmac verifies an HS256/384/512 token synchronously with node:crypto, with the same
   * checks jwtVerify makes (signature, `crit`, `exp`, `nbf`, `iat` type, `aud`, `iss`). Why not
   * jose here: jose goes through WebCrypto, whose async HMAC costs ~45 µs of CPU per token
   * against ~6 µs for node:crypto (measured, docs/BENCHMARKS.md) — and every connect in a
   * reconnect storm pays it. jose still parses the payload and handles the RSA and ECDSA keys.
   */
  private verifyHmac(token: string, header: Record<string, unknown>, alg: TokenAlgorithm): JWTPayload {
    if (this.hmacKey === undefined) throw invalid(`no key for ${alg}`);
    const parts = token.split('.');
    if (parts.length !== 3) throw invalid('malformed token');
    const [head, body, sig] = parts as [string, string, string];
    // Extensions jose would refuse unless told about them: refuse them too.
    if (header['crit'] !== undefined || header['b64'] !== undefined) throw invalid('unsupported JWS header parameter');
    const expected = createHmac(`sha${alg.slice(2)}`, this.hmacKey)
      .update(`${head}.${body}`)
      .digest();
    const given = Buffer.from(sig, 'base64url');
    // base64url decoding skips stray characters: require the canonical form as well.
    if (given.length !== expected.length || !timingSafeEqual(given, expected) || given.toString('base64url') !== sig) {
      throw invalid('signature verification failed');
    }
    let payload: JWTPayload;
    try {
      payload = decodeJwt(token);
    } catch (err) {
      throw invalid('JWT payload must be a JSON object (claims set)', err);
    }
    const now = Math.floor(Date.now() / 1000);
    const tol = this.clockTolerance;
    for (const claim of ['exp', 'nbf', 'iat'] as const) {
      if (payload[claim] !== undefined && typeof payload[claim] !== 'number')
        throw invalid(`"${claim}" claim must be a number`);
    }
    if (payload.exp !== undefined && payload.exp <= now - tol) throw new TokenRejection('expired', 'token expired');
    // Centrifugo answers "not yet valid" like "expired": the client gets a fresh token.
    if (payload.nbf !== undefined && payload.nbf > now + tol)
      throw new TokenRejection('expired', 'token not valid yet (nbf)');
    if (this.issuer !== undefined && payload.iss !== this.issuer) throw invalid('unexpected "iss" claim value');
    if (this.audience !== undefined) {
      const aud = payload.aud;
      const ok = Array.isArray(aud) ? aud.includes(this.audience) : aud === this.audience;
      if (!ok) throw invalid('unexpected "aud" claim value');
    }
    return payload;
  }

  /** keyFor returns the verification key of an enabled algorithm, importing it once. */
  private keyFor(alg: TokenAlgorithm): Promise<CryptoKey | Uint8Array> {
    if (alg.startsWith('HS')) {
      if (this.hmacKey === undefined) throw invalid(`no key for ${alg}`);
      return Promise.resolve(this.hmacKey);
    }
    const spki = alg.startsWith('RS') ? this.rsaSpki : this.ecdsaSpki;
    if (spki === undefined) throw invalid(`no key for ${alg}`);
    let key = this.imported.get(alg);
    if (key === undefined) {
      key = importSPKI(spki, alg);
      this.imported.set(alg, key);
    }
    return key.catch((err: unknown) => {
      throw invalid(`key for ${alg} could not be imported`, err);
    });
  }
}

/** tokenVerifierOptions maps a token config section (snake_case) to {@link TokenVerifierOptions}. */
export function tokenVerifierOptions(section: TokenConfigSection, configPath = 'client.token'): TokenVerifierOptions {
  return {
    hmacSecretKey: section.hmac_secret_key,
    rsaPublicKey: section.rsa_public_key,
    ecdsaPublicKey: section.ecdsa_public_key,
    audience: section.audience,
    issuer: section.issuer,
    configPath,
  };
}

function connectError(err: unknown): Error {
  if (err instanceof TokenRejection && err.kind === 'expired') {
    return withCause(new ProtocolError(ErrorCode.TokenExpired), err);
  }
  return withCause(new DisconnectError(disconnect(DisconnectCode.InvalidToken)), err);
}

function subscriptionError(err: unknown, purpose: SubscriptionTokenPurpose): Error {
  const kind = err instanceof TokenRejection ? err.kind : 'invalid';
  if (kind === 'expired') return withCause(new ProtocolError(ErrorCode.TokenExpired), err);
  if (kind === 'mismatch' || purpose === 'sub_refresh') {
    return withCause(new DisconnectError(disconnect(DisconnectCode.InvalidToken)), err);
  }
  return withCause(new ProtocolError(ErrorCode.PermissionDenied), err);
}

// ---- claim decoding --------------------------------------------------------------------------

type Claims = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is Claims {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A string claim; absent or null → undefined; any other type → invalid token. */
function stringClaim(claims: Claims, name: string, where = 'claim '): string | undefined {
  const value = claims[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(`${where}"${name}" must be a string`);
  return value;
}

/** A JSON claim kept raw; absent or null → undefined. */
function jsonClaim(claims: Claims, name: string): RawJSON | undefined {
  const value = claims[name];
  return value === undefined || value === null ? undefined : asRaw(value);
}

const strictBase64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A base64 claim (standard alphabet, padded) holding JSON text; absent, null or '' → undefined. */
function base64JsonClaim(claims: Claims, name: string, where: string): RawJSON | undefined {
  const text = stringClaim(claims, name, where);
  if (text === undefined || text === '') return undefined;
  if (!strictBase64.test(text)) throw invalid(`${where}"${name}" is not valid base64`);
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(Buffer.from(text, 'base64')));
  } catch (err) {
    throw invalid(`${where}"${name}" does not decode to UTF-8 JSON text`, err);
  }
  return asRaw(value);
}

/** `info`/`b64info` (or `data`/`b64data`): the base64 form wins when present, as in Centrifugo. */
function rawOrBase64(claims: Claims, name: string, where = 'claim '): RawJSON | undefined {
  return base64JsonClaim(claims, `b64${name}`, where) ?? jsonClaim(claims, name);
}

/** `expire_at` if present (≤ 0 → 0, never), else `exp`, else 0. */
function expireAtClaim(claims: Claims): number {
  const expireAt = claims['expire_at'];
  if (expireAt !== undefined && expireAt !== null) {
    if (typeof expireAt !== 'number' || !Number.isFinite(expireAt)) {
      throw invalid('claim "expire_at" must be a number');
    }
    return expireAt > 0 ? Math.floor(expireAt) : 0;
  }
  const exp = claims['exp'];
  return typeof exp === 'number' && exp > 0 ? Math.floor(exp) : 0;
}

const overrideFields: ReadonlyArray<readonly [string, keyof SubscriptionOverride]> = [
  ['presence', 'presence'],
  ['join_leave', 'joinLeave'],
  ['force_push_join_leave', 'forcePushJoinLeave'],
  ['force_positioning', 'forcePositioning'],
  ['force_recovery', 'forceRecovery'],
];

/** The `override` object: `{ presence: { value: true }, … }`; absent or null → undefined. */
function overrideClaim(claims: Claims, where: string): SubscriptionOverride | undefined {
  const value = claims['override'];
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw invalid(`${where}"override" must be an object`);
  const override: SubscriptionOverride = {};
  for (const [wire, field] of overrideFields) {
    const boolValue = value[wire];
    if (boolValue === undefined || boolValue === null) continue;
    if (!isObject(boolValue)) throw invalid(`${where}"override.${wire}" must be an object like {"value": true}`);
    const flag = boolValue['value'];
    if (flag !== undefined && flag !== null && typeof flag !== 'boolean') {
      throw invalid(`${where}"override.${wire}.value" must be a boolean`);
    }
    override[field] = flag === true;
  }
  return override;
}

function subscribeOptions(value: unknown, channel: string): TokenSubscribeOptions {
  if (value === null) return {};
  if (!isObject(value)) throw invalid(`claim "subs" entry "${channel}" must be an object`);
  const where = `claim "subs" entry "${channel}": `;
  const options: TokenSubscribeOptions = {};
  const info = rawOrBase64(value, 'info', where);
  if (info !== undefined) options.info = info;
  const data = rawOrBase64(value, 'data', where);
  if (data !== undefined) options.data = data;
  const override = overrideClaim(value, where);
  if (override !== undefined) options.override = override;
  return options;
}

function parseConnectClaims(claims: JWTPayload): ConnectTokenClaims {
  const user = stringClaim(claims, 'sub') ?? '';
  if (stringClaim(claims, 'channel')) {
    // A subscription token used as a connection token: Centrifugo rejects it explicitly.
    throw invalid('connection token must not have a "channel" claim (is this a subscription token?)');
  }

  let channels: string[] = [];
  const rawChannels = claims['channels'];
  if (rawChannels !== undefined && rawChannels !== null) {
    if (!Array.isArray(rawChannels) || !rawChannels.every((ch) => typeof ch === 'string' && ch !== '')) {
      throw invalid('claim "channels" must be an array of non-empty strings');
    }
    channels = rawChannels as string[];
  }

  let subs: Record<string, TokenSubscribeOptions> | undefined;
  const rawSubs = claims['subs'];
  if (rawSubs !== undefined && rawSubs !== null) {
    if (!isObject(rawSubs)) throw invalid('claim "subs" must be an object of channel → options');
    subs = Object.create(null) as Record<string, TokenSubscribeOptions>;
    for (const [channel, value] of Object.entries(rawSubs)) {
      if (channel === '') throw invalid('claim "subs" has an empty channel name');
      subs[channel] = subscribeOptions(value, channel);
    }
    if (Object.keys(subs).length > 0) channels = [];
  }

  const result: ConnectTokenClaims = { user, expireAt: expireAtClaim(claims), channels };
  const info = rawOrBase64(claims, 'info');
  if (info !== undefined) result.info = info;
  if (subs !== undefined) result.subs = subs;
  const meta = jsonClaim(claims, 'meta');
  if (meta !== undefined) result.meta = meta;
  return result;
}

function parseSubscriptionClaims(claims: JWTPayload): SubscriptionTokenClaims {
  const user = stringClaim(claims, 'sub') ?? '';
  const channel = stringClaim(claims, 'channel');
  if (!channel) throw invalid('subscription token must have a "channel" claim');
  const result: SubscriptionTokenClaims = { user, channel, expireAt: expireAtClaim(claims) };
  const info = rawOrBase64(claims, 'info');
  if (info !== undefined) result.info = info;
  const data = rawOrBase64(claims, 'data');
  if (data !== undefined) result.data = data;
  const override = overrideClaim(claims, 'claim ');
  if (override !== undefined) result.override = override;
  const client = stringClaim(claims, 'client');
  if (client) result.client = client;
  return result;
}
