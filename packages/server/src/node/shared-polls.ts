/**
 * The node's shared poll subscriptions, built from config: the store the nodes share (Redis
 * with the Redis engine when a namespace has subscription_type shared_poll, on connections of
 * its own; in this process otherwise), the feature's metrics, and the per-node state.
 *
 * @module
 */
import type { Logger } from 'pino';
import type { ChannelRules } from '../channel-rules.js';
import { SharedPollMetrics } from '../client/shared-poll-metrics.js';
import { SharedPolls } from '../client/shared-polls.js';
import { redisOptions, resolveRedisOptions } from '../config/redis-options.js';
import type { Config } from '../config/schema.js';
import { connectClient, createClient } from '../engine/redis/connection.js';
import { RedisSharedPollStore } from '../engine/redis/shared-poll-redis.js';
import { MemorySharedPollStore, type SharedPollStore } from '../engine/shared-poll-store.js';
import type { Metrics } from '../metrics.js';
import type { BurstLog } from '../protection/burst-log.js';
import type { BackendProxy } from '../proxy/backend-proxy.js';
import type { ProxyResolver } from '../proxy/proxies.js';

/** SharedPollsNodeContext is what building shared poll needs from its node. */
export interface SharedPollsNodeContext {
  readonly config: Readonly<Config>;
  readonly rules: ChannelRules;
  readonly proxies: ProxyResolver;
  readonly backend: BackendProxy;
  readonly log: Logger;
  readonly burstLog: BurstLog;
  readonly metrics: Metrics;
}

/** usesSharedPoll tells whether any namespace has subscription_type shared_poll. */
export function usesSharedPoll(cfg: Readonly<Config>): boolean {
  const ch = cfg.channel;
  return [ch.without_namespace, ...ch.namespaces].some((ns) => ns.subscription_type === 'shared_poll');
}

function storeFor(ctx: SharedPollsNodeContext): SharedPollStore {
  const cfg = ctx.config;
  if (cfg.engine.type !== 'redis' || !usesSharedPoll(cfg)) return new MemorySharedPollStore();
  const opts = resolveRedisOptions(redisOptions(cfg.engine.redis));
  const client = createClient(opts, 'command');
  const subscriber = createClient(opts, 'subscriber');
  // Outages are the engine's to report; these connections reconnect on their own.
  for (const c of [client, subscriber]) c.on('error', () => undefined);
  return new RedisSharedPollStore({
    client,
    subscriber,
    prefix: cfg.engine.redis.prefix,
    log: ctx.log,
    connect: async () => {
      await Promise.all([connectClient(client, opts), connectClient(subscriber, opts)]);
    },
  });
}

/** createSharedPolls builds the node's shared poll state (started once the engine is). */
export function createSharedPolls(ctx: SharedPollsNodeContext): SharedPolls {
  return new SharedPolls(ctx, storeFor(ctx), new SharedPollMetrics(ctx.metrics.registry));
}
