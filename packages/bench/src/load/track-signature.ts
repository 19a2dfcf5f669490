/**
 * Shared poll track signatures as a game backend makes them (Centrifugo v6.8, and Bulwark's
 * packages/server/src/auth/shared-poll-signature.ts verifies them): `iat:exp:hmac_hex`, where
 * hmac_hex = hex(HMAC-SHA256(secret, "iat:exp:user:channel:keys_hash")) and keys_hash the hex
 * SHA-256 of the keys joined with NUL bytes, in the order sent. The bench cannot import the
 * server's source (another package), so it signs here; a test checks the server accepts it.
 *
 * @module
 */
import { createHash, createHmac } from 'node:crypto';

/**
 * signTrack signs `keys` for `user` on `channel`, valid `ttlSeconds` (0: never expires), as the
 * board's backend would when a player opens the board.
 */
export function signTrack(
  secret: string,
  user: string,
  channel: string,
  keys: readonly string[],
  ttlSeconds: number,
  nowSeconds = Math.floor(Date.now() / 1000),
): string {
  const exp = ttlSeconds > 0 ? nowSeconds + ttlSeconds : 0;
  const keysHash = createHash('sha256').update(keys.join('\x00')).digest('hex');
  const mac = createHmac('sha256', secret).update(`${nowSeconds}:${exp}:${user}:${channel}:${keysHash}`).digest('hex');
  return `${nowSeconds}:${exp}:${mac}`;
}
