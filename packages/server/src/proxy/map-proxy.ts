/**
 * The map publish and map remove proxies' answers (Centrifugo v6.8): a map namespace with
 * `map.publish_proxy_enabled` (or `remove_proxy_enabled`) sends every client write (removal)
 * to the backend first, with the connection's fields, `channel`, `key` and `data`. The backend
 * refuses it (`error`, `disconnect`), or allows it with a `result` whose fields, all optional,
 * replace what the client sent or stamp what a client cannot send itself: the key, the data,
 * tags, score, key mode, idempotency key, version. The answer is external input: validated
 * here; a bad one fails the call like a timeout (the client gets 100, temporary).
 *
 * `stream_data`, `b64data` and `delta` are not taken: Bulwark keeps one payload per change and
 * JSON payloads only, and map channels have no delta compression yet (docs/MAPS.md).
 *
 * @module
 */
import { z } from 'zod';
import type { KeyMode } from '../engine/map-broker.js';
import { asRaw, type RawJSON } from '../protocol/types.js';

/** MapPublishOutcome is an allowed client map write, as the backend changed it. */
export interface MapPublishOutcome {
  key?: string | undefined;
  data?: RawJSON | undefined;
  tags?: Record<string, string> | undefined;
  score?: number | undefined;
  keyMode?: KeyMode | undefined;
  idempotencyKey?: string | undefined;
  version?: number | undefined;
  versionEpoch?: string | undefined;
}

/** MapRemoveOutcome is an allowed client map removal, as the backend changed it. */
export interface MapRemoveOutcome {
  key?: string | undefined;
  tags?: Record<string, string> | undefined;
  idempotencyKey?: string | undefined;
}

/** Binary payloads are not taken: the answer must carry JSON `data`. */
const noBinary = (value: Record<string, unknown>, ctx: z.RefinementCtx) => {
  for (const field of ['b64data', 'b64stream_data', 'stream_data']) {
    if (value[field] !== undefined && value[field] !== null) {
      ctx.addIssue({ code: 'custom', message: `${field} is not supported: answer with data (JSON)` });
    }
  }
};

/** mapPublishResultSchema validates the map publish proxy's `result`. */
export const mapPublishResultSchema = z
  .looseObject({
    key: z.string().min(1).nullish(),
    data: z.unknown().optional(),
    tags: z.record(z.string(), z.string()).nullish(),
    score: z.number().int().nullish(),
    key_mode: z.enum(['if_new', 'if_exists']).or(z.literal('')).nullish(),
    idempotency_key: z.string().min(1).max(256).nullish(),
    version: z.number().int().min(0).nullish(),
    version_epoch: z.string().nullish(),
  })
  .superRefine(noBinary);

/** mapRemoveResultSchema validates the map remove proxy's `result`. */
export const mapRemoveResultSchema = z.looseObject({
  key: z.string().min(1).nullish(),
  tags: z.record(z.string(), z.string()).nullish(),
  idempotency_key: z.string().min(1).max(256).nullish(),
});

/** mapPublishOutcome turns a validated answer (or none: allowed as sent) into the write's changes. */
export function mapPublishOutcome(r: z.output<typeof mapPublishResultSchema> | null | undefined): MapPublishOutcome {
  if (r == null) return {};
  return {
    key: r.key ?? undefined,
    data: r.data === undefined ? undefined : asRaw(r.data),
    tags: r.tags ?? undefined,
    score: r.score ?? undefined,
    keyMode: r.key_mode === '' || r.key_mode == null ? undefined : r.key_mode,
    idempotencyKey: r.idempotency_key ?? undefined,
    version: r.version ?? undefined,
    versionEpoch: r.version_epoch ?? undefined,
  };
}

/** mapRemoveOutcome turns a validated answer (or none) into the removal's changes. */
export function mapRemoveOutcome(r: z.output<typeof mapRemoveResultSchema> | null | undefined): MapRemoveOutcome {
  if (r == null) return {};
  return { key: r.key ?? undefined, tags: r.tags ?? undefined, idempotencyKey: r.idempotency_key ?? undefined };
}
