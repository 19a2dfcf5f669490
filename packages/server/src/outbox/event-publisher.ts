/**
 * What the consumers of a backend's events (the outbox consumer, ./consumer.ts, and the
 * JetStream consumer, ../jetstream/consumer.ts) need from their node, and the one step they
 * share: publish one event to its channel through the node's normal publish path with an
 * idempotency key, and say what became of it (./outcome.ts) instead of throwing — so each
 * consumer only decides what an outcome means for its own source (delete or keep a row, ack,
 * hold or terminate a message).
 *
 * @module
 */
import type { Logger } from 'pino';
import type { ChannelRules, ResolvedChannel } from '../channel-rules.js';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { BurstLog } from '../protection/burst-log.js';
import type { SheddingState } from '../protection/load-shedder.js';
import type { ClientInfo, RawJSON, StreamPosition } from '../protocol/types.js';
import { classifyChannelError, classifyPublishError, type Outcome } from './outcome.js';

/** EventSourceContext is what an event consumer needs from its node. */
export interface EventSourceContext {
  readonly config: Readonly<Config>;
  readonly log: Logger;
  readonly burstLog: Pick<BurstLog, 'error'>;
  readonly metrics: Pick<Metrics, 'publications'>;
  readonly rules: Pick<ChannelRules, 'resolve'>;
  readonly shedder: SheddingState;
  /** The engine is started and reachable, and the node not draining (else: paused, not_ready). */
  readonly ready: boolean;
  publishResolved(
    rc: ResolvedChannel,
    data: RawJSON,
    info?: ClientInfo,
    opts?: { idempotencyKey?: string },
  ): Promise<StreamPosition>;
}

/**
 * publishEvent publishes `data` to `channel` with `idempotencyKey`, counting it under
 * `bulwark_publications_total{source}` when it was published; it never throws.
 */
export async function publishEvent(
  ctx: EventSourceContext,
  source: 'outbox' | 'jetstream',
  channel: string,
  data: RawJSON,
  idempotencyKey: string,
): Promise<Outcome> {
  let rc: ResolvedChannel;
  try {
    rc = ctx.rules.resolve(channel);
  } catch (err) {
    return classifyChannelError(err);
  }
  try {
    await ctx.publishResolved(rc, data, undefined, { idempotencyKey });
  } catch (err) {
    return classifyPublishError(err);
  }
  ctx.metrics.publications.inc({ source });
  return { kind: 'published' };
}
