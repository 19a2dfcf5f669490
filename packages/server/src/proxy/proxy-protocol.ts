/**
 * The HTTP proxy protocol's response bodies, as Centrifugo v6 documents them, as zod schemas.
 * A backend answer is external input: everything is validated before Bulwark acts on it, and
 * an answer that does not fit is a failed call (error 100, temporary), never a crash.
 *
 * Every response is `{result?, error?, disconnect?}`: `disconnect` closes the connection with
 * the backend's code and reason, `error` is answered to the client with the backend's code,
 * message and `temporary` flag, otherwise `result` holds the event's answer. Unknown fields
 * are ignored (as Centrifugo does), so a backend written for a newer Centrifugo still works.
 * JSON `null` counts as absent. The base64 fields (`b64data`, `b64info`) are refused: Bulwark
 * speaks the JSON protocol only.
 *
 * @module
 */
import { z } from 'zod';

/** A JSON value the backend sends on (info, data); null counts as absent. */
const jsonValue = z
  .unknown()
  .optional()
  .transform((v) => (v === null ? undefined : v));

const noBase64 = (value: Record<string, unknown>, ctx: z.RefinementCtx) => {
  for (const key of ['b64data', 'b64info']) {
    if (value[key] !== undefined && value[key] !== null) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: `${key} is not supported: Bulwark speaks the JSON protocol only (send JSON in ${key.slice(3)})`,
      });
    }
  }
};

/** Error is the backend's error for the client: codes 400–1999 are the application's range. */
export const proxyErrorSchema = z.object({
  code: z.number().int().min(0).max(4_294_967_295),
  message: z.string().nullish(),
  temporary: z.boolean().nullish(),
});

/**
 * Disconnect is the backend's disconnect advice: codes 4000–4499 let the client reconnect,
 * 4500–4999 do not (3000–3999 are Bulwark's, accepted as well). The reason travels in the
 * WebSocket close frame, which holds at most 123 bytes.
 */
export const proxyDisconnectSchema = z.object({
  code: z.number().int().min(3000).max(4999),
  reason: z
    .string()
    .nullish()
    .refine((r) => r == null || Buffer.byteLength(r) <= 123, 'disconnect reason longer than 123 bytes'),
});

const boolValue = z.object({ value: z.boolean() }).nullish();

/** Override changes namespace options for one subscription (`{"presence": {"value": true}}`). */
export const proxyOverrideSchema = z
  .object({
    presence: boolValue,
    join_leave: boolValue,
    force_push_join_leave: boolValue,
    force_positioning: boolValue,
    force_recovery: boolValue,
  })
  .nullish();

/** Unix seconds; 0 means never. */
const unixSeconds = z.number().int().min(0).nullish();

/** SubscribeOptions of a server-side subscription granted by the connect result's `subs`. */
const subscribeOptionsSchema = z
  .looseObject({
    info: jsonValue,
    data: jsonValue,
    override: proxyOverrideSchema,
    server_tags_filter: z.record(z.string(), z.unknown()).nullish(),
  })
  .superRefine(noBase64);

/** ConnectResult: who the connection is, and what it gets. `user` "" accepts it as anonymous. */
export const connectResultSchema = z
  .looseObject({
    user: z.string(),
    expire_at: unixSeconds,
    info: jsonValue,
    data: jsonValue,
    channels: z.array(z.string()).nullish(),
    subs: z.record(z.string(), subscribeOptionsSchema).nullish(),
    meta: z.record(z.string(), z.unknown()).nullish(),
  })
  .superRefine(noBase64);

/** RefreshResult prolongs (expire_at) or ends (expired) a connection, and may change its info. */
export const refreshResultSchema = z
  .looseObject({ expired: z.boolean().nullish(), expire_at: unixSeconds, info: jsonValue })
  .superRefine(noBase64);

/** SubscribeResult allows the subscription, with channel info, data for the client, overrides and expiry. */
export const subscribeResultSchema = z
  .looseObject({
    info: jsonValue,
    data: jsonValue,
    override: proxyOverrideSchema,
    expire_at: unixSeconds,
    // Bulwark's own (named as Centrifugo PRO names it): checked and compiled at subscribe.
    server_tags_filter: z.record(z.string(), z.unknown()).nullish(),
  })
  .superRefine(noBase64);

/** PublishResult allows the publication, optionally replacing its data, skipping history, adding tags. */
export const publishResultSchema = z
  .looseObject({
    data: jsonValue,
    skip_history: z.boolean().nullish(),
    tags: z.record(z.string(), z.string()).nullish(),
  })
  .superRefine(noBase64);

/** SubRefreshResult prolongs (expire_at) or ends (expired) a subscription, and may change its info. */
export const subRefreshResultSchema = refreshResultSchema;

/** RPCResult is the answer to the client's RPC. */
export const rpcResultSchema = z.looseObject({ data: jsonValue }).superRefine(noBase64);

/** proxyResponseSchema wraps an event's result schema in the common response envelope. */
export function proxyResponseSchema<R extends z.ZodType>(result: R) {
  return z.object({
    result: result.nullish(),
    error: proxyErrorSchema.nullish(),
    disconnect: proxyDisconnectSchema.nullish(),
  });
}
