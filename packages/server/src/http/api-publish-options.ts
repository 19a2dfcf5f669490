/**
 * The fields `publish` and `broadcast` share in the server API, as Centrifugo names them
 * (`data`/`b64data`, `skip_history`, `tags`, `idempotency_key`, `version`, `version_epoch`),
 * and how they become a node publish's options. The length limits come from the config
 * (`http_api.idempotency_key_max_length`, `http_api.version_epoch_max_length`), so they are
 * checked here rather than in the static body schema.
 *
 * @module
 */
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import { b64jsonField, jsonField } from '../util/request-body.js';

/** publishFields are the body fields of `publish` and `broadcast` besides the channel(s). */
export const publishFields = {
  data: jsonField.optional(),
  b64data: b64jsonField,
  skip_history: z.boolean().optional(),
  tags: z.record(z.string(), z.string()).optional(),
  idempotency_key: z.string().optional(),
  // uint64 in Centrifugo; a JSON number is exact only up to 2^53 - 1, so larger ones are refused.
  version: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  version_epoch: z.string().optional(),
};

/** PublishFields is a validated body's shared publish fields. */
export interface PublishFields {
  data?: unknown;
  b64data?: unknown;
  skip_history?: boolean | undefined;
  tags?: Record<string, string> | undefined;
  idempotency_key?: string | undefined;
  version?: number | undefined;
  version_epoch?: string | undefined;
}

/** hasData tells whether a body carries `data` or `b64data` (one is required). */
export const hasData = (b: { data?: unknown; b64data?: unknown }): boolean =>
  b.data !== undefined || b.b64data !== undefined;

/** dataMissing is the validation issue of a body without data. */
export const dataMissing = { message: 'data or b64data required', path: ['data'] };

/** ApiPublishOptions are a node publish's options, as the API methods pass them. */
export interface ApiPublishOptions {
  skipHistory?: boolean | undefined;
  tags?: Record<string, string> | undefined;
  idempotencyKey?: string | undefined;
  version?: number | undefined;
  versionEpoch?: string | undefined;
}

/**
 * publishOptionsOf checks the length limits of a validated body's fields and returns the
 * node publish options. Throws ProtocolError 107 naming the field and the limit.
 */
export function publishOptionsOf(p: PublishFields, cfg: Pick<Config['http_api'], LimitKey>): ApiPublishOptions {
  checkLength('idempotency_key', p.idempotency_key, cfg.idempotency_key_max_length, 'idempotency_key_max_length');
  checkLength('version_epoch', p.version_epoch, cfg.version_epoch_max_length, 'version_epoch_max_length');
  return {
    skipHistory: p.skip_history,
    tags: p.tags,
    idempotencyKey: p.idempotency_key === '' ? undefined : p.idempotency_key,
    version: p.version === 0 ? undefined : p.version,
    versionEpoch: p.version_epoch,
  };
}

/**
 * hasIdempotencyKey tells whether a raw (not yet validated) body carries an idempotency key:
 * then repeating the call is safe within the key's window, and an engine failure whose outcome
 * is unknown can be answered "temporary, retry" (with the same key) instead of "may have been
 * applied".
 */
export function hasIdempotencyKey(raw: unknown): boolean {
  if (typeof raw !== 'object' || raw === null) return false;
  const key = (raw as { idempotency_key?: unknown }).idempotency_key;
  return typeof key === 'string' && key !== '';
}

type LimitKey = 'idempotency_key_max_length' | 'version_epoch_max_length';

function checkLength(field: string, value: string | undefined, max: number, key: LimitKey): void {
  if (value !== undefined && value.length > max) {
    throw new ProtocolError(
      ErrorCode.BadRequest,
      `bad request: ${field}: longer than http_api.${key} (${max} characters)`,
    );
  }
}
