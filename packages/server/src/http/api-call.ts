/**
 * One server API command run to its outcome: the method's result, or the error it is answered
 * with, counted in `bulwark_api_commands_total` under its method. A single request, each command
 * of a `batch` and each line of the newline-delimited form all go through here, so a method
 * answers and counts the same whichever way it was sent.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { EngineUnavailableError } from '../engine/errors.js';
import type { Metrics } from '../metrics.js';
import type { BurstLog } from '../protection/burst-log.js';
import { ErrorCode, ProtocolError, type ProtocolErrorShape } from '../protocol/codes.js';
import { engineErrorJson } from './api-json.js';
import {
  PublishedAt,
  callApiMethod,
  callApiMethodNow,
  isRepeatSafe,
  notNow,
  type ApiContext,
  type ApiMethod,
} from './api-methods.js';

/** ApiOutcome is what one command ended with: its result or its error. */
export type ApiOutcome = { readonly result: unknown } | { readonly error: ProtocolErrorShape };

/** ApiCallContext is what running a command needs beside the methods' context. */
export interface ApiCallContext {
  readonly metrics: Pick<Metrics, 'apiCommands' | 'apiCommand'>;
  readonly burstLog: Pick<BurstLog, 'error'>;
  readonly log: Logger;
}

/**
 * runApiCommand validates `body` for `method`, runs it and returns its outcome; it never
 * throws. A ProtocolError is answered as it is, an unreachable engine as "not applied, retry"
 * or "outcome unknown" (see engineErrorJson), anything else as 100 (logged here).
 */
export async function runApiCommand(
  call: ApiCallContext,
  ctx: ApiContext,
  method: ApiMethod,
  body: unknown,
): Promise<ApiOutcome> {
  const started = performance.now();
  try {
    const result = await callApiMethod(ctx, method, body);
    call.metrics.apiCommand(method, 'ok', started);
    return { result };
  } catch (err) {
    return failedOutcome(call, method, body, err, started);
  }
}

/**
 * runApiCommandNow is runApiCommand for a command that completes within the call (publish on
 * the memory engine, see callApiMethodNow): its outcome, counted and timed the same, without a
 * promise. {@link notNow} when the command cannot complete synchronously: nothing was applied
 * nor counted, and the caller runs it with runApiCommand.
 */
export function runApiCommandNow(
  call: ApiCallContext,
  ctx: ApiContext,
  method: ApiMethod,
  body: unknown,
): ApiOutcome | typeof notNow {
  const started = performance.now();
  try {
    const result = callApiMethodNow(ctx, method, body);
    if (result === notNow) return notNow;
    call.metrics.apiCommand(method, 'ok', started);
    return { result };
  } catch (err) {
    return failedOutcome(call, method, body, err, started);
  }
}

/** failedOutcome counts a command that threw and turns what it threw into the error it is answered with. */
function failedOutcome(
  call: ApiCallContext,
  method: ApiMethod,
  body: unknown,
  err: unknown,
  started: number,
): ApiOutcome {
  call.metrics.apiCommand(method, 'error', started);
  if (err instanceof ProtocolError) return { error: err.toWire() };
  if (err instanceof EngineUnavailableError) {
    // Temporary when nothing was done (or doing it again changes nothing), else "outcome
    // unknown". Once per burst in the log: an outage fails every call.
    call.burstLog.error('engine.api', { method, err: err.message }, 'api method failed: engine unavailable');
    return { error: engineErrorJson(err, isRepeatSafe(method, body)) };
  }
  call.log.error({ err, method }, 'api method failed');
  return { error: { code: ErrorCode.Internal, message: 'internal server error' } };
}

/**
 * outcomeJson is an outcome as the API answers it: JSON.stringify's bytes, written by hand for
 * the usual reply to a publish (a {@link PublishedAt}), which every API publish pays for.
 */
export function outcomeJson(o: ApiOutcome): string {
  if ('result' in o && o.result instanceof PublishedAt) {
    return `{"result":{"offset":${o.result.offset},"epoch":${JSON.stringify(o.result.epoch)}}}`;
  }
  return JSON.stringify(o);
}

/** methodNotFound is the error of a command naming no method Bulwark has. */
export const methodNotFound: ProtocolErrorShape = { code: ErrorCode.MethodNotFound, message: 'method not found' };
