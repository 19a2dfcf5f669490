/**
 * A tiny HS256 JSON Web Token helper built on node:crypto: the load generator signs
 * connection tokens with it, and the raw-ws reference server verifies them, so both servers
 * do equivalent token work per connection. Deliberately independent of packages/server.
 *
 * @module
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header every token carries; encoded once. */
const HEADER_B64 = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

/** JwtClaims are the claims the bench puts in a token (`sub`, `exp`) plus any others. */
export interface JwtClaims {
  sub?: string;
  exp?: number;
  [claim: string]: unknown;
}

/** signHs256 returns a compact HS256 JWT for `claims`, signed with `secret`. */
export function signHs256(claims: JwtClaims, secret: string): string {
  const body = `${HEADER_B64}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const sig = createHmac('sha256', secret).update(body).digest('base64url');
  return `${body}.${sig}`;
}

/** connectionToken signs the bench's connection token for `user`, valid for `ttlSeconds`. */
export function connectionToken(user: string, secret: string, ttlSeconds = 3600): string {
  return signHs256({ sub: user, exp: Math.floor(Date.now() / 1000) + ttlSeconds }, secret);
}

/**
 * verifyHs256 checks an HS256 token's header, signature (constant time) and `exp`, and
 * returns its claims, or undefined when any check fails. It does the same amount of work a
 * real server does per token: split, HMAC, compare, decode and parse the payload.
 */
export function verifyHs256(token: unknown, secret: string, nowSeconds = Date.now() / 1000): JwtClaims | undefined {
  if (typeof token !== 'string') return undefined;
  const dot1 = token.indexOf('.');
  const dot2 = token.indexOf('.', dot1 + 1);
  if (dot1 <= 0 || dot2 <= dot1 + 1 || token.indexOf('.', dot2 + 1) !== -1) return undefined;
  try {
    const header = JSON.parse(Buffer.from(token.slice(0, dot1), 'base64url').toString()) as { alg?: unknown };
    if (header.alg !== 'HS256') return undefined;
    const expected = createHmac('sha256', secret).update(token.slice(0, dot2)).digest();
    const given = Buffer.from(token.slice(dot2 + 1), 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const claims = JSON.parse(Buffer.from(token.slice(dot1 + 1, dot2), 'base64url').toString()) as unknown;
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return undefined;
    const exp = (claims as JwtClaims).exp;
    if (exp !== undefined && (typeof exp !== 'number' || exp <= nowSeconds)) return undefined;
    return claims as JwtClaims;
  } catch {
    return undefined;
  }
}
