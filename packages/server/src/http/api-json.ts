/**
 * How the server API writes protocol values as JSON: a ClientInfo and a Publication, with
 * their raw JSON parts (data, conn_info, chan_info) inlined as values; and the error an
 * unreachable engine is answered with.
 *
 * @module
 */
import { EngineOutcomeUnknownError, type EngineUnavailableError } from '../engine/errors.js';
import { ErrorCode, type ProtocolErrorShape } from '../protocol/codes.js';
import type { ClientInfo, Publication } from '../protocol/types.js';

/**
 * engineErrorJson is the error an engine failure is answered with (docs/API.md, "Engine
 * failures"): `100` + `temporary` when the call was not applied (or repeating it changes
 * nothing: `repeatSafe`), so the backend retries; `100` without `temporary` when a publish or
 * send may have been applied, so a blind retry does not deliver it twice.
 */
export function engineErrorJson(err: EngineUnavailableError, repeatSafe: boolean): ProtocolErrorShape {
  if (err instanceof EngineOutcomeUnknownError && !repeatSafe) {
    return { code: ErrorCode.Internal, message: 'engine unavailable, outcome unknown: it may have been applied' };
  }
  return { code: ErrorCode.Internal, message: 'engine unavailable, retry later', temporary: true };
}

/** clientInfoJson is a ClientInfo as the API answers it (presence, publication info). */
export function clientInfoJson(info: ClientInfo): Record<string, unknown> {
  return {
    user: info.user,
    client: info.client,
    ...(info.conn_info !== undefined ? { conn_info: JSON.parse(info.conn_info) as unknown } : {}),
    ...(info.chan_info !== undefined ? { chan_info: JSON.parse(info.chan_info) as unknown } : {}),
  };
}

/** publicationJson is a Publication as the API answers it (history, map state and stream). */
export function publicationJson(p: Publication): Record<string, unknown> {
  // A map removal carries no data.
  const out: Record<string, unknown> = p.data === '' ? {} : { data: JSON.parse(p.data) as unknown };
  if (p.key !== undefined) out['key'] = p.key;
  if (p.removed) out['removed'] = true;
  if (p.score) out['score'] = p.score;
  if (p.info) out['info'] = clientInfoJson(p.info);
  if (p.offset) out['offset'] = p.offset;
  if (p.tags) out['tags'] = p.tags;
  if (p.time) out['time'] = p.time;
  if (p.variants) out['variants'] = p.variants.map((v) => ({ when: v.when, data: JSON.parse(v.data) as unknown }));
  return out;
}
