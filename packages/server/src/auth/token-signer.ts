/**
 * Token signing for `bulwark gentoken`, the demo page's token endpoint and the tests. A real
 * deployment signs tokens in its own backend; these helpers produce exactly the claims
 * {@link TokenVerifier} (and Centrifugo) read: `sub`, `exp`, `iat`, `aud`, `iss`, `info`,
 * `channels`, `subs`, `meta`, `expire_at` for connections; `sub`, `channel`, `info`, `data`,
 * `override`, `client`, `expire_at` for subscriptions.
 *
 * @module
 */
import { SignJWT, importPKCS8, type CryptoKey } from 'jose';
import { TextEncoder } from 'node:util';
import type { SubscriptionOverride } from './token-claims.js';
import type { TokenAlgorithm } from './token-keys.js';

/** HmacAlgorithm is an algorithm signed with a shared secret. */
export type HmacAlgorithm = Extract<TokenAlgorithm, `HS${string}`>;
/** AsymmetricAlgorithm is an algorithm signed with an RSA or EC private key. */
export type AsymmetricAlgorithm = Exclude<TokenAlgorithm, HmacAlgorithm>;

/**
 * SigningKey says how a token is signed: with an HMAC `secret` (HS256 unless `alg` says
 * otherwise), or with a PKCS#8 PEM `privateKey` and its `alg` (RS* for RSA keys; ES256, ES384,
 * ES512 for P-256, P-384, P-521 keys).
 */
export type SigningKey = { secret: string; alg?: HmacAlgorithm } | { privateKey: string; alg: AsymmetricAlgorithm };

/** CommonTokenOptions are the claims shared by connection and subscription tokens. */
export interface CommonTokenOptions {
  /** User ID (`sub`); `''` is an anonymous user. */
  user: string;
  /** Lifetime in seconds: `exp` = now + ttlSeconds (negative gives an expired token). Omitted: no `exp`. */
  ttlSeconds?: number;
  /** `expire_at` claim (Unix seconds, 0 for never), decoupling the expiry from `exp`. */
  expireAt?: number;
  /** `aud` claim. */
  audience?: string;
  /** `iss` claim. */
  issuer?: string;
  /** `info` claim: any JSON value, shown to other clients. */
  info?: unknown;
  /** Extra claims, merged last so they can replace any claim above (tests, advanced use). */
  claims?: Record<string, unknown>;
}

/** SubscribeOptionsInput are the options of one server-side subscription in a `subs` claim. */
export interface SubscribeOptionsInput {
  /** Channel info: any JSON value. */
  info?: unknown;
  /** Data for the subscribe context in the connect reply: any JSON value. */
  data?: unknown;
  /** Overrides of namespace options; encoded as `{ "value": bool }` objects. */
  override?: SubscriptionOverride;
}

/** ConnectionTokenOptions describe a connection token. */
export type ConnectionTokenOptions = SigningKey &
  CommonTokenOptions & {
    /** Server-side subscriptions (`channels`). */
    channels?: string[];
    /** Server-side subscriptions with options (`subs`); when not empty, `channels` is ignored. */
    subs?: Record<string, SubscribeOptionsInput>;
    /** Server-only metadata (`meta`): any JSON value, never sent to clients. */
    meta?: unknown;
    /** What the client can render (`features`, Bulwark's own): tested by publication variants. */
    features?: string[];
  };

/** SubscriptionTokenOptions describe a subscription token. */
export type SubscriptionTokenOptions = SigningKey &
  CommonTokenOptions & {
    /** The channel the token grants (`channel`). */
    channel: string;
    /** Data for the subscribe reply (`data`): any JSON value. */
    data?: unknown;
    /** Overrides of namespace options for this subscription. */
    override?: SubscriptionOverride;
    /** Binds the token to one client ID (`client`). */
    client?: string;
  };

const overrideWire: ReadonlyArray<readonly [keyof SubscriptionOverride, string]> = [
  ['presence', 'presence'],
  ['joinLeave', 'join_leave'],
  ['forcePushJoinLeave', 'force_push_join_leave'],
  ['forcePositioning', 'force_positioning'],
  ['forceRecovery', 'force_recovery'],
];

function encodeOverride(override: SubscriptionOverride): Record<string, { value: boolean }> {
  const wire: Record<string, { value: boolean }> = {};
  for (const [field, name] of overrideWire) {
    const value = override[field];
    if (value !== undefined) wire[name] = { value };
  }
  return wire;
}

const privateKeys = new Map<string, Promise<CryptoKey>>();
const encoder = new TextEncoder();

function signingKey(key: SigningKey): { alg: TokenAlgorithm; key: Promise<CryptoKey | Uint8Array> } {
  if ('secret' in key) {
    if (typeof key.secret !== 'string' || key.secret === '') throw new TypeError('signing secret must not be empty');
    return { alg: key.alg ?? 'HS256', key: Promise.resolve(encoder.encode(key.secret)) };
  }
  // Cache imports: the demo endpoint signs with the same key on every request.
  const cacheKey = `${key.alg}\n${key.privateKey}`;
  let imported = privateKeys.get(cacheKey);
  if (imported === undefined) {
    imported = importPKCS8(key.privateKey, key.alg);
    imported.catch(() => privateKeys.delete(cacheKey));
    privateKeys.set(cacheKey, imported);
  }
  return { alg: key.alg, key: imported };
}

function commonClaims(options: CommonTokenOptions): Record<string, unknown> {
  if (typeof options.user !== 'string') throw new TypeError('user must be a string');
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = { sub: options.user, iat: now };
  if (options.ttlSeconds !== undefined) {
    if (!Number.isFinite(options.ttlSeconds)) throw new TypeError('ttlSeconds must be a finite number');
    claims['exp'] = now + Math.trunc(options.ttlSeconds);
  }
  if (options.expireAt !== undefined) claims['expire_at'] = options.expireAt;
  if (options.audience !== undefined) claims['aud'] = options.audience;
  if (options.issuer !== undefined) claims['iss'] = options.issuer;
  if (options.info !== undefined) claims['info'] = options.info;
  return claims;
}

/**
 * signClaims signs an arbitrary claims set with `key` as a compact JWS (`typ: JWT`). The other
 * helpers build on it; use it directly only for claims they do not cover.
 */
export async function signClaims(key: SigningKey, claims: Record<string, unknown>): Promise<string> {
  const { alg, key: material } = signingKey(key);
  return new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(await material);
}

/**
 * signConnectionToken signs a connection token for `user` with the given key and claims.
 * Rejects (TypeError) on an empty secret, a non-string user or a non-finite TTL, and when a
 * private key does not fit `alg`.
 */
export async function signConnectionToken(options: ConnectionTokenOptions): Promise<string> {
  const claims = commonClaims(options);
  if (options.channels !== undefined) claims['channels'] = options.channels;
  if (options.subs !== undefined) {
    const subs: Record<string, Record<string, unknown>> = {};
    for (const [channel, sub] of Object.entries(options.subs)) {
      const wire: Record<string, unknown> = {};
      if (sub.info !== undefined) wire['info'] = sub.info;
      if (sub.data !== undefined) wire['data'] = sub.data;
      if (sub.override !== undefined) wire['override'] = encodeOverride(sub.override);
      Object.defineProperty(subs, channel, { value: wire, enumerable: true, writable: true, configurable: true });
    }
    claims['subs'] = subs;
  }
  if (options.meta !== undefined) claims['meta'] = options.meta;
  if (options.features !== undefined) claims['features'] = options.features;
  return signClaims(options, { ...claims, ...options.claims });
}

/**
 * signSubscriptionToken signs a subscription token granting `user` the channel `channel`.
 * Rejects like {@link signConnectionToken}, and (TypeError) on an empty channel.
 */
export async function signSubscriptionToken(options: SubscriptionTokenOptions): Promise<string> {
  if (typeof options.channel !== 'string' || options.channel === '') {
    throw new TypeError('channel must be a non-empty string');
  }
  const claims = commonClaims(options);
  claims['channel'] = options.channel;
  if (options.data !== undefined) claims['data'] = options.data;
  if (options.override !== undefined) claims['override'] = encodeOverride(options.override);
  if (options.client !== undefined) claims['client'] = options.client;
  return signClaims(options, { ...claims, ...options.claims });
}
