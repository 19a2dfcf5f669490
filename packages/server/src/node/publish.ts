/**
 * Publishing to a resolved channel, from the API or a client: the size limit
 * (protection.publication_max_size), then the broker with the namespace's history options
 * and the publish's idempotency key and version. A publish the broker suppressed (a repeated
 * key, an old version) is counted, and answered like a published one.
 *
 * @module
 */
import { ChannelRules, type ResolvedChannel } from '../channel-rules.js';
import type { Config } from '../config/schema.js';
import type { Broker, PublishOptions, PublishResult } from '../engine/broker.js';
import type { Metrics } from '../metrics.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import type { ClientInfo, RawJSON } from '../protocol/types.js';
import type { NodePublishOptions } from './options.js';

/** PublishContext is what publishing needs from its node. */
export interface PublishContext {
  readonly config: Readonly<Config>;
  readonly rules: Pick<ChannelRules, 'historyMetaTtlMs'>;
  readonly broker: Pick<Broker, 'publish' | 'publishNow'>;
  readonly metrics: Pick<Metrics, 'publicationsSuppressed'>;
}

/** publishResolved publishes pre-encoded data to a resolved channel. */
export async function publishResolved(
  ctx: PublishContext,
  rc: ResolvedChannel,
  data: RawJSON,
  info?: ClientInfo,
  opts: NodePublishOptions = {},
): Promise<PublishResult> {
  const options = brokerOptions(ctx, rc, data, info, opts);
  return counted(ctx, await ctx.broker.publish(rc.channel, data, options));
}

/**
 * publishResolvedNow is publishResolved completed within the call, on a broker that has
 * `publishNow` (the memory engine); undefined, with nothing done, on one that has not.
 */
export function publishResolvedNow(
  ctx: PublishContext,
  rc: ResolvedChannel,
  data: RawJSON,
  info?: ClientInfo,
  opts: NodePublishOptions = {},
): PublishResult | undefined {
  const broker = ctx.broker;
  if (broker.publishNow === undefined) return undefined;
  return counted(ctx, broker.publishNow(rc.channel, data, brokerOptions(ctx, rc, data, info, opts)));
}

/**
 * brokerOptions checks a publication against its channel (the size limit, not a map channel)
 * and makes the broker's options: the namespace's history, the publish's key and version.
 */
function brokerOptions(
  ctx: PublishContext,
  rc: ResolvedChannel,
  data: RawJSON,
  info: ClientInfo | undefined,
  opts: NodePublishOptions,
): PublishOptions {
  const max = ctx.config.protection.publication_max_size;
  // data.length counts UTF-16 units, never more than the UTF-8 bytes: count bytes only when it could matter.
  if (max > 0 && data.length * 3 > max && Buffer.byteLength(data) > max) {
    throw new ProtocolError(
      ErrorCode.LimitExceeded,
      `publication data larger than protection.publication_max_size (${max} bytes)`,
    );
  }
  const o = rc.options;
  if (ChannelRules.isMap(o)) {
    // A map channel changes by key only: a keyless publication would reach map subscribers as nonsense.
    throw new ProtocolError(ErrorCode.BadRequest, 'bad request: a map channel takes map_publish (a key), not publish');
  }
  const history = !opts.skipHistory && ChannelRules.hasHistory(o);
  // Assigned one by one, not spread from conditional objects: this runs for every publish.
  const out: PublishOptions = {
    historySize: history ? o.history_size : 0,
    historyTtlMs: history ? o.history_ttl : 0,
    historyMetaTtlMs: ctx.rules.historyMetaTtlMs(o),
    info,
    tags: opts.tags,
    // Delta-compressed subscribers need the previous publication, on every node (client/delta.ts).
    delta: history && o.allowed_delta_types.length > 0,
  };
  if (opts.idempotencyKey) {
    out.idempotencyKey = opts.idempotencyKey;
    out.idempotentResultTtlMs = ctx.config.channel.idempotent_result_ttl;
  }
  if (opts.version) {
    out.version = opts.version;
    out.versionEpoch = opts.versionEpoch ?? '';
  }
  if (opts.variants !== undefined && opts.variants.length > 0) out.variants = opts.variants;
  return out;
}

/** counted counts a publish the broker suppressed (a repeated key, an old version). */
function counted(ctx: PublishContext, result: PublishResult): PublishResult {
  if (result.suppressed !== undefined) ctx.metrics.publicationsSuppressed.inc({ reason: result.suppressed });
  return result;
}
