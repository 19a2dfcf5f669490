/**
 * Validating request bodies (server API methods, and the user commands other nodes relay):
 * the zod pieces their fields share, and `parseBody`, which turns the first problem into a
 * ProtocolError 107.
 *
 * @module
 */
import { z } from 'zod';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';

/** A channel name (resolved against the namespaces by whoever uses it). */
export const channelField = z.string().min(1);

/** Any JSON value. */
export const jsonField = z.unknown();

/** Base64 of a JSON document, decoded to its value (an alternative to a `json` field). */
export const b64jsonField = z
  .string()
  .transform((s, ctx) => {
    try {
      return JSON.parse(Buffer.from(s, 'base64').toString('utf8')) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not base64 of JSON' });
      return z.NEVER;
    }
  })
  .optional();

/** A stream position, as clients and the API spell it. */
export const streamPositionField = z.object({
  offset: z.number().int().min(0).default(0),
  epoch: z.string().default(''),
});

/** parseBody validates a body (absent counts as `{}`); throws ProtocolError 107 naming the first problem. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new ProtocolError(ErrorCode.BadRequest, `bad request: ${where}${issue?.message ?? 'invalid body'}`);
  }
  return parsed.data;
}
