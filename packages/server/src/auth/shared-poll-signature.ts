/**
 * Shared poll track signatures, as Centrifugo v6.8 defines them: the backend authorises a
 * client to track a list of keys with `iat:exp:hmac_hex`, where hmac_hex is
 * HMAC-SHA256(secret, "iat:exp:user:channel:keys_hash") in hex and keys_hash the hex SHA-256
 * of the keys joined with NUL bytes, in the order sent (no sorting). `exp` 0 never expires.
 *
 * Key rotation: a signature made with the previous secret is accepted until
 * `hmac_previous_secret_key_valid_until` by the server clock (0: no limit) — not by the
 * signature's `iat`, which whoever holds the old key could backdate (Centrifugo fixed the
 * same). An expired signature is still accepted within {@link trackExpiryGraceSeconds}.
 *
 * @module
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** trackExpiryGraceSeconds is how long past `exp` a signature is still accepted (Centrifugo: 30 s). */
export const trackExpiryGraceSeconds = 30;

/** TrackSecrets are the HMAC secrets of the `shared_poll` section. */
export interface TrackSecrets {
  readonly current: string;
  readonly previous: string;
  /** Unix seconds after which `previous` is refused; 0: no limit. */
  readonly previousValidUntil: number;
}

/** TrackSignatureVerdict is a verified signature's expiry (Unix seconds, 0: none), or why it was refused. */
export type TrackSignatureVerdict =
  { ok: true; exp: number } | { ok: false; reason: 'malformed' | 'invalid' | 'expired' };

function keysHash(keys: readonly string[]): string {
  return createHash('sha256').update(keys.join('\x00')).digest('hex');
}

function mac(secret: string, iat: number, exp: number, user: string, channel: string, keys: readonly string[]): Buffer {
  return createHmac('sha256', secret)
    .update(`${iat}:${exp}:${user}:${channel}:${keysHash(keys)}`)
    .digest();
}

/**
 * signTrackSignature makes a signature, as a game backend would (tests, demos, the Node SDK of
 * an embedding backend). `ttlSeconds` 0 makes one that never expires.
 */
export function signTrackSignature(
  secret: string,
  user: string,
  channel: string,
  keys: readonly string[],
  ttlSeconds: number,
  nowSeconds = Math.floor(Date.now() / 1000),
): string {
  const exp = ttlSeconds > 0 ? nowSeconds + ttlSeconds : 0;
  return `${nowSeconds}:${exp}:${mac(secret, nowSeconds, exp, user, channel, keys).toString('hex')}`;
}

const signatureShape = /^(\d{1,12}):(\d{1,12}):([0-9a-f]{64})$/;

/** verifyTrackSignature checks one batch's signature for `user` on `channel` over `keys`. */
export function verifyTrackSignature(
  secrets: TrackSecrets,
  signature: string,
  user: string,
  channel: string,
  keys: readonly string[],
  nowSeconds = Math.floor(Date.now() / 1000),
): TrackSignatureVerdict {
  const m = signatureShape.exec(signature);
  if (m === null) return { ok: false, reason: 'malformed' };
  const iat = Number(m[1]);
  const exp = Number(m[2]);
  const got = Buffer.from(m[3] as string, 'hex');
  const matches = (secret: string): boolean =>
    secret !== '' && timingSafeEqual(got, mac(secret, iat, exp, user, channel, keys));
  const previousValid =
    secrets.previousValidUntil === 0 || nowSeconds <= secrets.previousValidUntil ? secrets.previous : '';
  if (!matches(secrets.current) && !matches(previousValid)) return { ok: false, reason: 'invalid' };
  if (exp > 0 && nowSeconds > exp + trackExpiryGraceSeconds) return { ok: false, reason: 'expired' };
  return { ok: true, exp };
}
