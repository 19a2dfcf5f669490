/**
 * Who may use the operator console: a login with `admin.password` (compared in constant time,
 * at most `admin.login_attempts_per_minute` attempts per address, every attempt logged) issues
 * a short-lived session token (HS256 with `admin.secret`, `admin.token_ttl`), which every
 * console call sends in the `Authorization: Bearer` header. A header, never a cookie: a page
 * elsewhere cannot make the browser send it, so there is no cross-site request forgery.
 *
 * @module
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { TokenBucket } from '../protection/token-bucket.js';

/** The audience of console tokens: a connection token signed with the same key is not one. */
const AUDIENCE = 'bulwark-admin';
/** Addresses remembered for the login limit; beyond, the oldest are forgotten. */
const TRACKED_ADDRESSES = 10_000;

/** AdminSession is a verified console session: its id (for the audit log) and expiry. */
export interface AdminSession {
  readonly id: string;
  readonly expiresAt: number;
}

/** LoginResult is a granted session, or why not. */
export type LoginResult = { token: string; expiresIn: number; id: string } | { refused: 'password' | 'rate' };

/** AdminAuth logs operators in and checks their session tokens. */
export class AdminAuth {
  readonly #cfg: Config['admin'];
  readonly #key: Uint8Array;
  readonly #password: Buffer;
  readonly #log: Logger;
  readonly #attempts = new Map<string, TokenBucket>();

  constructor(cfg: Config['admin'], log: Logger) {
    this.#cfg = cfg;
    this.#key = new TextEncoder().encode(cfg.secret);
    // Compared as digests: equal lengths whatever was typed, so the length leaks nothing.
    this.#password = digest(cfg.password);
    this.#log = log;
  }

  /** login checks `password` from `address` and issues a session token. */
  async login(password: string, address: string): Promise<LoginResult> {
    if (!this.#bucket(address).take()) {
      this.#log.warn({ address }, 'admin login refused: too many attempts');
      return { refused: 'rate' };
    }
    if (!timingSafeEqual(digest(password), this.#password)) {
      this.#log.warn({ address }, 'admin login failed: wrong password');
      return { refused: 'password' };
    }
    const id = randomBytes(6).toString('base64url');
    const ttlSeconds = Math.max(1, Math.round(this.#cfg.token_ttl / 1000));
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject('admin')
      .setJti(id)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(`${ttlSeconds}s`)
      .sign(this.#key);
    this.#log.info({ address, session: id }, 'admin login');
    return { token, expiresIn: ttlSeconds, id };
  }

  /** verify returns the session of an `Authorization: Bearer <token>` header, or undefined. */
  async verify(header: string | undefined): Promise<AdminSession | undefined> {
    const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
    if (!m) return undefined;
    try {
      const { payload } = await jwtVerify(m[1]!, this.#key, { audience: AUDIENCE, algorithms: ['HS256'] });
      if (payload.sub !== 'admin' || typeof payload.jti !== 'string' || typeof payload.exp !== 'number')
        return undefined;
      return { id: payload.jti, expiresAt: payload.exp * 1000 };
    } catch {
      return undefined;
    }
  }

  #bucket(address: string): TokenBucket {
    let bucket = this.#attempts.get(address);
    if (bucket === undefined) {
      if (this.#attempts.size >= TRACKED_ADDRESSES) {
        const oldest = this.#attempts.keys().next().value;
        if (oldest !== undefined) this.#attempts.delete(oldest);
      }
      const perMinute = this.#cfg.login_attempts_per_minute;
      bucket = new TokenBucket(perMinute / 60, perMinute);
      this.#attempts.set(address, bucket);
    }
    return bucket;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
