/**
 * The server API's `batch` method, as Centrifugo v5/v6 define it: `{"commands": [{"publish":
 * {…}}, {"broadcast": {…}}, …], "parallel": false}` is answered `{"replies": [{"publish":
 * {…}}, {"error": {…}}, …]}`, one reply per command in command order. Each command is validated
 * whole and runs alone: a bad one is answered with its error and the others still run.
 *
 * @module
 */
import { z } from 'zod';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import { parseBody } from '../util/request-body.js';
import { methodNotFound, runApiCommand, type ApiCallContext, type ApiOutcome } from './api-call.js';
import { isApiMethod, type ApiContext, type ApiMethod } from './api-methods.js';

/** batchMethod is the name of the `batch` method (`POST /api/batch`). */
export const batchMethod = 'batch';

const batchSchema = z.object({
  commands: z.array(z.unknown()).default([]),
  parallel: z.boolean().default(false),
});

/** BatchCommand is one command of a batch or of the newline-delimited form, once its method is known. */
export interface BatchCommand {
  readonly method: ApiMethod;
  readonly body: unknown;
}

/** checkBatchSize refuses, with 106 and before anything runs, more commands than http_api.batch_max_commands. */
export function checkBatchSize(count: number, max: number): void {
  if (count <= max) return;
  throw new ProtocolError(
    ErrorCode.LimitExceeded,
    `limit exceeded: ${count} commands, more than http_api.batch_max_commands (${max}); nothing was run`,
  );
}

/**
 * batchCommandOf reads one command of a `batch`: an object with exactly one key naming a
 * method (other keys are ignored, as Centrifugo's decoder ignores unknown fields). No method is
 * 104, as in Centrifugo; two methods in one command are 107 (Centrifugo would silently run the
 * first one of its own order).
 */
function batchCommandOf(raw: unknown): BatchCommand | ApiOutcome {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return {
      error: {
        code: ErrorCode.BadRequest,
        message: 'bad request: a command is an object keyed by its method, e.g. {"publish": {…}}',
      },
    };
  }
  const methods = Object.keys(raw).filter(isApiMethod);
  const [method] = methods;
  if (method === undefined) return { error: methodNotFound };
  if (methods.length > 1) {
    return {
      error: {
        code: ErrorCode.BadRequest,
        message: `bad request: a command holds one method, this one holds ${methods.join(', ')}`,
      },
    };
  }
  return { method, body: (raw as Record<string, unknown>)[method] };
}

/** BatchReply is one entry of `replies`: `{"<method>": result}` or `{"error": …}`. */
export type BatchReply = Readonly<Record<string, unknown>>;

/**
 * runBatch runs a `batch` request body. Throws ProtocolError only for the batch as a whole (107
 * for a body that is not `{commands, parallel}`, 106 for too many commands), and then nothing
 * has run; every command's own failure is in its reply.
 */
export async function runBatch(
  call: ApiCallContext,
  ctx: ApiContext,
  raw: unknown,
): Promise<{ replies: BatchReply[] }> {
  const req = parseBody(batchSchema, raw);
  checkBatchSize(req.commands.length, ctx.node.config.http_api.batch_max_commands);
  const one = async (cmd: unknown): Promise<BatchReply> => {
    const parsed = batchCommandOf(cmd);
    if (!('method' in parsed)) return parsed;
    const out = await runApiCommand(call, ctx, parsed.method, parsed.body);
    return 'error' in out ? out : { [parsed.method]: out.result };
  };
  if (req.parallel) return { replies: await Promise.all(req.commands.map(one)) };
  const replies: BatchReply[] = [];
  for (const cmd of req.commands) replies.push(await one(cmd));
  return { replies };
}
