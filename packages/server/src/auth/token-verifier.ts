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
 * This file holds the verifier itself (header, signature, `aud`, `iss`, `exp`, `nbf`); the keys
 * are in token-keys.ts, the claims in token-claims.ts, and the wire errors in token-rejection.ts.
 *
 * @module
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Config } from '../config/schema.js';
import { decodeJsonSegment, splitCompact, type CompactJws } from './jws-compact.js';
import {
  parseConnectClaims,
  parseSubscriptionClaims,
  type ConnectTokenClaims,
  type SubscriptionTokenClaims,
} from './token-claims.js';
import { TokenKeys, type HMAC_ALGORITHMS, type TokenAlgorithm } from './token-keys.js';
import {
  TokenRejection,
  connectError,
  invalid,
  subscriptionError,
  type SubscriptionTokenPurpose,
} from './token-rejection.js';

/** node:crypto's name of each HMAC algorithm's hash. */
const hmacHashes: Record<(typeof HMAC_ALGORITHMS)[number], string> = {
  HS256: 'sha256',
  HS384: 'sha384',
  HS512: 'sha512',
};

export { ECDSA_ALGORITHMS, HMAC_ALGORITHMS, RSA_ALGORITHMS, type TokenAlgorithm } from './token-keys.js';
export type {
  ConnectTokenClaims,
  SubscriptionOverride,
  SubscriptionTokenClaims,
  TokenSubscribeOptions,
} from './token-claims.js';
export type { SubscriptionTokenPurpose } from './token-rejection.js';

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

/** VerifyConnectOptions tune {@link TokenVerifier.verifyConnectToken}. */
export interface VerifyConnectOptions {
  /**
   * On `refresh`: the connection's user. A token for another user is then an invalid token
   * (3500), as in Centrifugo.
   */
  expectedUser?: string;
}

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

  private readonly keys: TokenKeys;
  private readonly audience: string | undefined;
  private readonly issuer: string | undefined;
  private readonly clockTolerance: number;

  /**
   * Builds a verifier. Throws an Error (naming `configPath`) when a PEM key is malformed, of
   * the wrong type, an RSA key shorter than 2048 bits, or an EC key on an unsupported curve.
   * A verifier with no key at all is valid and rejects every token (insecure / anonymous setups).
   */
  constructor(options: TokenVerifierOptions) {
    const path = options.configPath ?? 'token';
    this.keys = new TokenKeys(options, path);
    const tolerance = options.clockToleranceSeconds ?? 0;
    if (!Number.isFinite(tolerance) || tolerance < 0) {
      throw new Error(`${path}: clock tolerance must be a finite number of seconds >= 0`);
    }
    this.algorithms = this.keys.algorithms;
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
    await Promise.all(this.algorithms.map((alg) => this.keys.keyFor(alg)));
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
      const verified = this.verifyJwt(token);
      const claims = parseConnectClaims(verified instanceof Promise ? await verified : verified);
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
      const verified = this.verifyJwt(token);
      const claims = parseSubscriptionClaims(verified instanceof Promise ? await verified : verified);
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

  /**
   * verifyJwt checks the header, signature, `aud`, `iss`, `exp` and `nbf`, and returns the
   * payload: at once for HMAC tokens (node:crypto is synchronous), as a promise for RSA and
   * ECDSA ones (WebCrypto through jose), so a connect with an HMAC token waits on no promise here.
   */
  private verifyJwt(token: string): JWTPayload | Promise<JWTPayload> {
    if (typeof token !== 'string' || token === '') throw invalid('empty token');
    const jws = splitCompact(token);
    const header = decodeJsonSegment(jws.header, 'header');
    const alg = header['alg'];
    if (typeof alg !== 'string' || !(this.algorithms as readonly string[]).includes(alg)) {
      throw invalid(
        alg === 'none'
          ? 'unsigned tokens (alg none) are not accepted'
          : `algorithm ${String(alg)} is not enabled (enabled: ${this.algorithms.join(', ') || 'none'})`,
      );
    }
    if (alg.startsWith('HS')) return this.verifyHmac(jws, header, alg as TokenAlgorithm);
    return this.verifyWithJose(token, alg as TokenAlgorithm);
  }

  /** verifyWithJose verifies an RSA or ECDSA token with jose (WebCrypto). */
  private async verifyWithJose(token: string, alg: TokenAlgorithm): Promise<JWTPayload> {
    const key = await this.keys.keyFor(alg);
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
   * reconnect storm pays it. The token's segments are decoded by jws-compact.ts; jose handles the
   * RSA and ECDSA keys.
   */
  private verifyHmac(jws: CompactJws, header: Record<string, unknown>, alg: TokenAlgorithm): JWTPayload {
    const hmacKey = this.keys.hmacKey;
    if (hmacKey === undefined) throw invalid(`no key for ${alg}`);
    // Extensions jose would refuse unless told about them: refuse them too.
    if (header['crit'] !== undefined || header['b64'] !== undefined) throw invalid('unsupported JWS header parameter');
    const expected = createHmac(hmacHashes[alg as (typeof HMAC_ALGORITHMS)[number]], hmacKey)
      .update(jws.signingInput)
      .digest();
    const sig = jws.signature;
    const given = Buffer.from(sig, 'base64url');
    // base64url decoding skips stray characters: require the canonical form as well.
    if (given.length !== expected.length || !timingSafeEqual(given, expected) || given.toString('base64url') !== sig) {
      throw invalid('signature verification failed');
    }
    const payload: JWTPayload = decodeJsonSegment(jws.payload, 'payload (claims set)');
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
