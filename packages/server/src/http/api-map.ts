/**
 * The server API of map channels, as Centrifugo v6.8 names it: `map_publish`, `map_remove`,
 * `map_read_state`, `map_read_stream`, `map_stats` and `map_clear`. Beyond Centrifugo,
 * `map_publish` and `map_remove` take `expected_position` (compare-and-set on the channel's
 * stream position) — Bulwark's own. A conditional write that loses is not an error: the result
 * says `suppressed` and why, with the channel's position, so the backend can read and retry.
 *
 * @module
 */
import { z } from 'zod';
import { ChannelRules, type ResolvedChannel } from '../channel-rules.js';
import type { Config } from '../config/schema.js';
import type { MapBroker, MapUpdateResult } from '../engine/map-broker.js';
import type { Metrics } from '../metrics.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import { asRaw } from '../protocol/types.js';
import { b64jsonField, channelField, jsonField, parseBody, streamPositionField } from '../util/request-body.js';
import { publicationJson } from './api-json.js';

/** MapApiContext is what the map methods need from the node. */
export interface MapApiContext {
  readonly node: {
    readonly config: Readonly<Pick<Config, 'http_api' | 'protection'>>;
    readonly rules: Pick<ChannelRules, 'resolve' | 'mapRetention'>;
    readonly mapBroker: MapBroker;
    readonly metrics: Pick<Metrics, 'mapWrites' | 'mapSuppressed'>;
  };
}

/** MapApiEntry is one method: its body schema and how it runs (as api-methods.ts's entries). */
export interface MapApiEntry {
  readonly schema: z.ZodType;
  readonly repeatSafe: boolean;
  call(ctx: MapApiContext, raw: unknown): Promise<unknown>;
}

function entry<T>(schema: z.ZodType<T>, run: (body: T, ctx: MapApiContext) => unknown, repeatSafe = true): MapApiEntry {
  return { schema, repeatSafe, call: async (ctx, raw) => run(parseBody(schema, raw), ctx) };
}

const keyField = z.string().min(1);

/** mapChannel resolves a channel that must be a map channel (108 otherwise, as history on a channel without it). */
function mapChannel(ctx: MapApiContext, channel: string): ResolvedChannel {
  const rc = ctx.node.rules.resolve(channel);
  if (!ChannelRules.isMap(rc.options)) {
    throw new ProtocolError(
      ErrorCode.NotAvailable,
      'not available: not a map channel (subscription_type map, map_clients or map_users)',
    );
  }
  return rc;
}

/** checkKey refuses a key longer than the namespace's map.max_key_length (107). */
function checkKey(rc: ResolvedChannel, key: string): void {
  const max = rc.options.map.max_key_length;
  if (Buffer.byteLength(key) > max)
    throw new ProtocolError(ErrorCode.BadRequest, `bad request: key: longer than ${max} bytes`);
}

/** updateJson is a write's result: the position, and why nothing changed when it did not. */
function updateJson(ctx: MapApiContext, op: 'publish' | 'remove', r: MapUpdateResult): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r.offset > 0) out['offset'] = r.offset;
  if (r.epoch !== '') out['epoch'] = r.epoch;
  if (r.suppressed !== undefined) {
    ctx.node.metrics.mapSuppressed.inc({ reason: r.suppressed });
    out['suppressed'] = true;
    out['suppress_reason'] = r.suppressed;
  } else {
    ctx.node.metrics.mapWrites.inc({ op, from: 'api' });
  }
  return out;
}

const writeFields = {
  channel: channelField,
  key: keyField,
  idempotency_key: z.string().min(1).max(256).optional(),
  tags: z.record(z.string(), z.string()).optional(),
  expected_position: streamPositionField.optional(),
};

/** mapApiMethods is the table of the map methods, merged into api-methods.ts's table. */
export const mapApiMethods = {
  map_publish: entry(
    z
      .object({
        ...writeFields,
        data: jsonField,
        b64data: b64jsonField,
        key_mode: z.enum(['if_new', 'if_exists']).optional(),
        score: z.number().int().optional(),
        version: z.number().int().min(0).optional(),
        version_epoch: z.string().optional(),
      })
      .refine((b) => b.data !== undefined || b.b64data !== undefined, { message: 'data or b64data required' }),
    async (p, ctx) => {
      const rc = mapChannel(ctx, p.channel);
      checkKey(rc, p.key);
      const data = asRaw(p.b64data ?? p.data);
      const max = ctx.node.config.protection.publication_max_size;
      if (max > 0 && Buffer.byteLength(data) > max) {
        throw new ProtocolError(
          ErrorCode.LimitExceeded,
          `publication data larger than protection.publication_max_size (${max} bytes)`,
        );
      }
      const r = await ctx.node.mapBroker.publish(rc.channel, p.key, {
        ...ctx.node.rules.mapRetention(rc.options),
        data,
        tags: p.tags,
        score: p.score,
        keyMode: p.key_mode,
        expectedPosition: p.expected_position,
        version: p.version,
        versionEpoch: p.version_epoch,
        idempotencyKey: p.idempotency_key,
      });
      return updateJson(ctx, 'publish', r);
    },
    false,
  ),
  map_remove: entry(
    z.object(writeFields),
    async (p, ctx) => {
      const rc = mapChannel(ctx, p.channel);
      checkKey(rc, p.key);
      const r = await ctx.node.mapBroker.remove(rc.channel, p.key, {
        ...ctx.node.rules.mapRetention(rc.options),
        tags: p.tags,
        expectedPosition: p.expected_position,
        idempotencyKey: p.idempotency_key,
      });
      return updateJson(ctx, 'remove', r);
    },
    false,
  ),
  map_read_state: entry(
    z.object({
      channel: channelField,
      cursor: z.string().optional(),
      limit: z.number().int().min(0).optional(),
      key: keyField.optional(),
    }),
    async (p, ctx) => {
      const rc = mapChannel(ctx, p.channel);
      const m = rc.options.map;
      const limit = p.limit === undefined || p.limit === 0 ? m.default_page_size : p.limit;
      if (limit > m.max_page_size) {
        throw new ProtocolError(
          ErrorCode.BadRequest,
          `bad request: limit: at most map.max_page_size (${m.max_page_size})`,
        );
      }
      const page = await ctx.node.mapBroker.readState(rc.channel, {
        cursor: p.cursor ?? '',
        limit,
        key: p.key,
        metaTtlMs: ctx.node.rules.mapRetention(rc.options).metaTtlMs,
      });
      const out: Record<string, unknown> = { publications: page.entries.map(publicationJson) };
      if (page.offset > 0) out['offset'] = page.offset;
      if (page.epoch !== '') out['epoch'] = page.epoch;
      if (page.cursor !== '') out['cursor'] = page.cursor;
      return out;
    },
  ),
  map_read_stream: entry(
    z.object({
      channel: channelField,
      since_offset: z.number().int().min(0).optional(),
      since_epoch: z.string().optional(),
      limit: z.number().int().min(-1).optional(),
      reverse: z.boolean().optional(),
    }),
    async (p, ctx) => {
      const rc = mapChannel(ctx, p.channel);
      const max = ctx.node.config.http_api.history_max_limit;
      const asked = p.limit ?? 0;
      if (asked > max) {
        throw new ProtocolError(
          ErrorCode.BadRequest,
          `bad request: limit: at most http_api.history_max_limit (${max})`,
        );
      }
      const since =
        p.since_offset !== undefined || p.since_epoch !== undefined
          ? { offset: p.since_offset ?? 0, epoch: p.since_epoch ?? '' }
          : undefined;
      const page = await ctx.node.mapBroker.readStream(rc.channel, {
        since,
        limit: asked === -1 ? max : asked,
        reverse: p.reverse === true,
        metaTtlMs: ctx.node.rules.mapRetention(rc.options).metaTtlMs,
      });
      return { publications: page.publications.map(publicationJson), offset: page.offset, epoch: page.epoch };
    },
  ),
  map_stats: entry(z.object({ channel: channelField }), async (p, ctx) => {
    const rc = mapChannel(ctx, p.channel);
    const st = await ctx.node.mapBroker.stats(rc.channel);
    return { num_keys: st.numKeys };
  }),
  map_clear: entry(z.object({ channel: channelField }), async (p, ctx) => {
    const rc = mapChannel(ctx, p.channel);
    await ctx.node.mapBroker.clear(rc.channel);
    return {};
  }),
};
