/**
 * The `admin` section: the operator console at /admin (Centrifugo v6 names: `admin.enabled`,
 * `admin.password`, `admin.secret`), off by default. Its password and signing secret have no
 * defaults and are refused when short: the console is a door into production.
 *
 * @module
 */
import { z } from 'zod';
import { duration, secret } from './common.js';

/** Shortest admin.password and admin.secret accepted. */
export const ADMIN_PASSWORD_MIN = 12;
export const ADMIN_SECRET_MIN = 32;

/** adminSection is the `admin` section. */
export const adminSection = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe('Serve the operator console at /admin (on http_server.internal_port when set).'),
    password: secret.describe(
      `Password of the console (at least ${ADMIN_PASSWORD_MIN} characters). A secret: required with admin.enabled.`,
    ),
    secret: secret.describe(
      `Key that signs console session tokens (at least ${ADMIN_SECRET_MIN} characters). A secret: required with admin.enabled.`,
    ),
    token_ttl: duration('15m').describe(
      'Lifetime of a console session token; the console asks for the password again after it (Bulwark addition).',
    ),
    login_attempts_per_minute: z
      .number()
      .int()
      .min(1)
      .default(5)
      .describe(
        'Login attempts accepted per minute from one address; more are refused with 429 and logged (Bulwark addition).',
      ),
  })
  .superRefine((s, ctx) => {
    if (!s.enabled) return;
    if (s.password.length < ADMIN_PASSWORD_MIN) {
      ctx.addIssue({
        code: 'custom',
        path: ['password'],
        message:
          s.password === ''
            ? 'missing secret: admin.enabled needs admin.password'
            : `must have at least ${ADMIN_PASSWORD_MIN} characters`,
      });
    }
    if (s.secret.length < ADMIN_SECRET_MIN) {
      ctx.addIssue({
        code: 'custom',
        path: ['secret'],
        message:
          s.secret === ''
            ? 'missing secret: admin.enabled needs admin.secret'
            : `must have at least ${ADMIN_SECRET_MIN} characters`,
      });
    }
    if (s.password !== '' && s.password === s.secret) {
      ctx.addIssue({ code: 'custom', path: ['secret'], message: 'must differ from admin.password' });
    }
  })
  .prefault({});
