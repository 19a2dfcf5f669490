/**
 * Which fan-out `broker.type` names (broker.enabled): NATS (nats/fanout-nats.ts) or Redis
 * pub/sub (redis/fanout-redis.ts), with the keys that keep each channel's offset order on the
 * receiving node. engine.ts puts it in front of the engine's history (composed-broker.ts).
 *
 * @module
 */
import type { Config } from '../config/schema.js';
import { redisOptions } from '../config/redis-options.js';
import type { Fanout } from './fanout.js';
import { NatsFanout } from './nats/fanout-nats.js';
import { RedisFanout } from './redis/fanout-redis.js';

/** ChosenFanout is a fan-out (not started) and the order keys of its section. */
export interface ChosenFanout {
  fanout: Fanout;
  /** broker.<type>.reorder_wait (ms). */
  reorderWaitMs: number;
  /** broker.<type>.catch_up_batch. */
  catchUpBatch: number;
}

/** chosenFanout makes the fan-out of `broker.type` from its section. */
export function chosenFanout(broker: Readonly<Config['broker']>): ChosenFanout {
  if (broker.type === 'redis') {
    const r = broker.redis;
    return {
      fanout: new RedisFanout({ ...redisOptions(r), configKey: 'broker.redis' }),
      reorderWaitMs: r.reorder_wait,
      catchUpBatch: r.catch_up_batch,
    };
  }
  const n = broker.nats;
  return {
    fanout: new NatsFanout({
      url: n.url,
      prefix: n.prefix,
      dialTimeoutMs: n.dial_timeout,
      reconnectMaxDelayMs: n.reconnect_max_delay,
      pingIntervalMs: n.ping_interval,
      access: n,
    }),
    reorderWaitMs: n.reorder_wait,
    catchUpBatch: n.catch_up_batch,
  };
}
