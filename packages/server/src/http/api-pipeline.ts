/**
 * The newline-delimited form of the server API, as Centrifugo's `/api` endpoint has accepted it
 * since v2 and as API clients still send it (`cent.js` `pipeline()`): `POST /api` with one
 * command per line, `{"id": 1, "method": "publish", "params": {…}}`, answered with one line per
 * command in order, `{"id": 1, "result": {…}}` or `{"id": 1, "error": {…}}`.
 *
 * `method` is a name in any case (`publish`, `PRESENCE_STATS`) or the number of Centrifugo's
 * method enum; absent, it is `publish` (enum 0), as in Centrifugo. Unlike Centrifugo, which runs
 * the lines before a malformed one and then answers 400, the whole body is read first: a body
 * that is not a sequence of JSON objects runs nothing.
 *
 * @module
 */
import { ErrorCode, ProtocolError, type ProtocolErrorShape } from '../protocol/codes.js';
import { checkBatchSize } from './api-batch.js';
import { methodNotFound, runApiCommand, type ApiCallContext, type ApiOutcome } from './api-call.js';
import { isApiMethod, type ApiContext, type ApiMethod } from './api-methods.js';

/** Centrifugo's `Command.MethodType` numbers (v4–v6), for clients that send `method` as a number. */
const legacyMethodNumbers: readonly (string | undefined)[] = [
  'publish',
  'broadcast',
  'unsubscribe',
  'disconnect',
  'presence',
  'presence_stats',
  'history',
  'history_remove',
  'channels',
  'info',
  'rpc',
  'subscribe',
  'refresh',
];

/**
 * splitJsonObjects cuts `text` into the JSON objects it holds one after another (separated by
 * any whitespace: newlines as clients send them, or pretty-printed objects). Throws ProtocolError
 * 107 at the first thing that is not an object; each piece is parsed by the caller.
 */
export function splitJsonObjects(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === ' ' || c === '\n' || c === '\r' || c === '\t') {
      i++;
      continue;
    }
    if (c !== '{') throw malformed(`expected a command object at byte ${i}`);
    const start = i;
    let depth = 0;
    let inString = false;
    for (; i < text.length; i++) {
      const ch = text[i];
      if (inString) {
        if (ch === '\\') i++;
        else if (ch === '"') inString = false;
      } else if (ch === '"') inString = true;
      else if (ch === '{' || ch === '[') depth++;
      else if ((ch === '}' || ch === ']') && --depth === 0) break;
    }
    if (depth !== 0) throw malformed('a command object is not closed');
    out.push(text.slice(start, ++i));
  }
  return out;
}

function malformed(why: string): ProtocolError {
  return new ProtocolError(ErrorCode.BadRequest, `malformed JSON body: ${why}`);
}

/** PipelineCommand is one line: its id to echo, and its method and params, or why it cannot run. */
interface PipelineCommand {
  readonly id: number;
  readonly run: { readonly method: ApiMethod; readonly body: unknown } | { readonly error: ProtocolErrorShape };
}

function methodOf(m: unknown): ApiMethod | ProtocolErrorShape {
  let name: string | undefined;
  if (m === undefined || m === null) name = 'publish';
  else if (typeof m === 'string') name = m.toLowerCase();
  else if (typeof m === 'number' && Number.isInteger(m)) name = legacyMethodNumbers[m];
  else return { code: ErrorCode.BadRequest, message: 'bad request: method: a name or a number' };
  return name !== undefined && isApiMethod(name) ? name : methodNotFound;
}

function commandOf(value: Record<string, unknown>): PipelineCommand {
  const rawId = value['id'];
  const id = typeof rawId === 'number' && Number.isInteger(rawId) && rawId >= 0 && rawId <= 0xffffffff ? rawId : 0;
  if (rawId !== undefined && rawId !== null && id !== rawId) {
    return {
      id: 0,
      run: { error: { code: ErrorCode.BadRequest, message: 'bad request: id: an integer 0 to 4294967295' } },
    };
  }
  const method = methodOf(value['method']);
  if (typeof method !== 'string') return { id, run: { error: method } };
  return { id, run: { method, body: value['params'] ?? {} } };
}

/** PipelineAnswer is the HTTP answer to a newline-delimited request. */
export interface PipelineAnswer {
  readonly status: number;
  readonly body: string;
}

/**
 * runPipeline runs a newline-delimited request body, one command after another in order.
 * Refused whole, before anything runs: an empty or malformed body (400, 107) and more commands
 * than http_api.batch_max_commands (200, 106), each as a single `{"error"}` line.
 */
export async function runPipeline(call: ApiCallContext, ctx: ApiContext, text: string): Promise<PipelineAnswer> {
  let commands: PipelineCommand[];
  try {
    const pieces = splitJsonObjects(text);
    if (pieces.length === 0) throw malformed('empty body: send one command per line');
    checkBatchSize(pieces.length, ctx.node.config.http_api.batch_max_commands);
    commands = pieces.map((p) => {
      try {
        return commandOf(JSON.parse(p) as Record<string, unknown>);
      } catch {
        throw malformed('a command is not valid JSON');
      }
    });
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    call.metrics.apiCommands.inc({ method: 'pipeline', result: 'error' });
    const status = err.code === ErrorCode.BadRequest ? 400 : 200;
    return { status, body: JSON.stringify({ error: err.toWire() }) };
  }
  call.metrics.apiCommands.inc({ method: 'pipeline', result: 'ok' });
  const lines: string[] = [];
  for (const cmd of commands) {
    const out: ApiOutcome =
      'method' in cmd.run ? await runApiCommand(call, ctx, cmd.run.method, cmd.run.body) : cmd.run;
    lines.push(JSON.stringify(cmd.id > 0 ? { id: cmd.id, ...out } : out));
  }
  return { status: 200, body: lines.join('\n') };
}
