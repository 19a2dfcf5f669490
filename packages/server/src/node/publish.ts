/**
 * Publishing to a resolved channel, from the API or a client: the size limit
 * (protection.publication_max_size), then the broker with the namespace's history options.
 *
 * @module
 */
import { ChannelRules, type ResolvedChannel } from '../channel-rules.js';
import type { Config } from '../config/schema.js';
import type { Broker } from '../engine/broker.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import type { ClientInfo, RawJSON, StreamPosition } from '../protocol/types.js';
import type { NodePublishOptions } from './options.js';

/** PublishContext is what publishing needs from its node. */
export interface PublishContext {
  readonly config: Readonly<Config>;
  readonly rules: Pick<ChannelRules, 'historyMetaTtlMs'>;
  readonly broker: Pick<Broker, 'publish'>;
}

/** publishResolved publishes pre-encoded data to a resolved channel. */
export async function publishResolved(
  ctx: PublishContext,
  rc: ResolvedChannel,
  data: RawJSON,
  info?: ClientInfo,
  opts: NodePublishOptions = {},
): Promise<StreamPosition> {
  const max = ctx.config.protection.publication_max_size;
  // data.length counts UTF-16 units, never more than the UTF-8 bytes: count bytes only when it could matter.
  if (max > 0 && data.length * 3 > max && Buffer.byteLength(data) > max) {
    throw new ProtocolError(
      ErrorCode.LimitExceeded,
      `publication data larger than protection.publication_max_size (${max} bytes)`,
    );
  }
  const o = rc.options;
  const history = !opts.skipHistory && ChannelRules.hasHistory(o);
  return ctx.broker.publish(rc.channel, data, {
    historySize: history ? o.history_size : 0,
    historyTtlMs: history ? o.history_ttl : 0,
    historyMetaTtlMs: ctx.rules.historyMetaTtlMs(o),
    info,
    tags: opts.tags,
    // Delta-compressed subscribers need the previous publication, on every node (client/delta.ts).
    delta: history && o.allowed_delta_types.length > 0,
  });
}
