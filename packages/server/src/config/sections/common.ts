/**
 * The building blocks every config section uses: Go-style durations parsed to milliseconds,
 * and secrets (a string key that never has a default other than empty: incident 3).
 *
 * @module
 */
import { z } from 'zod';
import { parseDuration } from '../../util/duration.js';

/** duration is a Go-style duration string parsed to milliseconds. */
export function duration(defaultValue: string) {
  return z
    .string()
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `invalid duration "${text}" (use e.g. "500ms", "25s", "1m30s", "720h")`,
        });
        return z.NEVER;
      }
      return ms;
    })
    .prefault(defaultValue);
}

/** secret is a key holding a secret: empty unless set, so a missing one is an error, never a default. */
export const secret = z.string().default('');
