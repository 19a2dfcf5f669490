/**
 * The fields `publish` and `broadcast` share in the server API, as Centrifugo names them
 * (`data`/`b64data`, `skip_history`, `tags`, `idempotency_key`, `version`, `version_epoch`),
 * plus Bulwark's `variants`, and how they become a node publish's options. The limits come
 * from the config (`http_api.idempotency_key_max_length`, `http_api.version_epoch_max_length`,
 * `http_api.publication_variants_max`), so they are checked here rather than in the static
 * body schema.
 *
 * @module
 */
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import type { PublicationVariant } from '../protocol/types.js';
import { parseVersion } from '../protocol/publication-variants.js';
import { b64jsonField, jsonField } from '../util/request-body.js';

/** A version in a variant condition: dotted numbers, as parseVersion reads them. */
const versionText = z
  .string()
  .max(64)
  .refine((v) => parseVersion(v) !== undefined, 'must be a version such as 5 or 5.2.1');

/** The conditions of a variant; unknown ones are refused, so a typo never matches everyone. */
const conditionSchema = z
  .strictObject({
    name: z.string().min(1).max(64).optional(),
    version_below: versionText.optional(),
    version_at_least: versionText.optional(),
    has: z.string().min(1).max(64).optional(),
    lacks: z.string().min(1).max(64).optional(),
  })
  .refine((c) => Object.keys(c).length > 0, 'at least one condition (a variant for everyone is the data itself)');

/** One variant: its conditions, and its payload (`data`, `b64data`, or an RPC that answers it). */
const variantSchema = z
  .strictObject({
    when: conditionSchema,
    data: jsonField.optional(),
    b64data: b64jsonField,
    rpc: z.strictObject({ method: z.string().min(1).max(256), data: jsonField.optional() }).optional(),
  })
  .refine(
    (v) => [v.data !== undefined, v.b64data !== undefined, v.rpc !== undefined].filter(Boolean).length === 1,
    'exactly one of data, b64data, rpc',
  );

/** ApiVariant is a validated variant of a publish request. */
export type ApiVariant = z.output<typeof variantSchema>;

/** VariantRequest is a variant to resolve: inline data (b64data decoded), or an RPC. */
export interface VariantRequest {
  when: ApiVariant['when'];
  data?: unknown;
  rpc?: { method: string; data?: unknown } | undefined;
}

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
  variants: z.array(variantSchema).optional(),
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
  variants?: ApiVariant[] | undefined;
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
  /** Variants, resolved into payloads (see node/publication-variants.ts). */
  variants?: PublicationVariant[] | undefined;
}

/**
 * publishOptionsOf checks the limits of a validated body's fields and returns the node
 * publish options, with the variants resolved by `resolve` (once, also for a broadcast).
 * Throws ProtocolError 107 naming the field and the limit, or what resolving throws.
 */
export async function publishOptionsOf(
  p: PublishFields,
  cfg: Pick<Config['http_api'], LimitKey>,
  resolve: (variants: readonly VariantRequest[]) => Promise<PublicationVariant[]>,
): Promise<ApiPublishOptions> {
  const opts = publishOptionsNow(p, cfg);
  if (p.variants !== undefined && p.variants.length > 0) {
    opts.variants = await resolve(p.variants.map((v) => ({ when: v.when, data: v.b64data ?? v.data, rpc: v.rpc })));
  }
  return opts;
}

/**
 * publishOptionsNow is publishOptionsOf without the variants, which only it resolves: the
 * limits checked the same (ProtocolError 107), for a publish that has none.
 */
export function publishOptionsNow(p: PublishFields, cfg: Pick<Config['http_api'], LimitKey>): ApiPublishOptions {
  checkLength('idempotency_key', p.idempotency_key, cfg.idempotency_key_max_length, 'idempotency_key_max_length');
  checkLength('version_epoch', p.version_epoch, cfg.version_epoch_max_length, 'version_epoch_max_length');
  checkLength('variants', p.variants, cfg.publication_variants_max, 'publication_variants_max');
  return {
    skipHistory: p.skip_history,
    tags: p.tags,
    idempotencyKey: p.idempotency_key === '' ? undefined : p.idempotency_key,
    version: p.version === 0 ? undefined : p.version,
    versionEpoch: p.version_epoch,
    variants: undefined,
  };
}

/**
 * plainPublishBody reads a publish body of the plain kind — a non-empty string `channel`,
 * `data`, and at most `skip_history`, `idempotency_key`, `version` and `version_epoch` of the
 * right types — without running the body schema (zod took ~2,000 instructions of a publish:
 * issue 18). Anything else (`b64data`, `tags`, `variants`, a wrong type) is undefined, for the
 * schema to read or to refuse with its usual error: it never accepts a body the schema
 * refuses. Unknown keys stay on the body it returns, unread (the schema drops them).
 */
export function plainPublishBody(raw: unknown): (PublishFields & { channel: string }) | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const b = raw as Record<string, unknown>;
  const { channel, skip_history: skip, idempotency_key: key, version, version_epoch: epoch } = b;
  if (typeof channel !== 'string' || channel === '' || b['data'] === undefined) return undefined;
  if (b['b64data'] !== undefined || b['tags'] !== undefined || b['variants'] !== undefined) return undefined;
  if (skip !== undefined && typeof skip !== 'boolean') return undefined;
  if (key !== undefined && typeof key !== 'string') return undefined;
  if (epoch !== undefined && typeof epoch !== 'string') return undefined;
  if (version !== undefined && !(typeof version === 'number' && Number.isSafeInteger(version) && version >= 0)) {
    return undefined;
  }
  // The body itself, not a copy: every field read from it is one checked above.
  return raw as PublishFields & { channel: string };
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

type LimitKey = 'idempotency_key_max_length' | 'version_epoch_max_length' | 'publication_variants_max';

function checkLength(field: string, value: string | unknown[] | undefined, max: number, key: LimitKey): void {
  if (value !== undefined && value.length > max) {
    const what = typeof value === 'string' ? 'characters' : 'entries';
    throw new ProtocolError(ErrorCode.BadRequest, `bad request: ${field}: more than http_api.${key} (${max} ${what})`);
  }
}
