/**
 * The `broker` section of the config: a fan-out broker chosen apart from the engine, as in
 * Centrifugo v6 (`broker.enabled`, `broker.type` nats or redis, `broker.nats.url`,
 * `broker.nats.prefix`, `broker.nats.dial_timeout`, `broker.redis.*` with the engine.redis
 * names). With it, the engine (`engine.type` redis or postgresql) keeps history and numbers the
 * publications, and NATS or Redis pub/sub carries publications, joins, leaves and control
 * messages between the nodes (docs/NATS.md, docs/ENGINES.md). The keys that keep per-channel
 * order on the receiving node (reorder_wait, catch_up_batch) and the connection upkeep
 * (reconnect_max_delay, ping_interval) are Bulwark's own.
 *
 * @module
 */
import { z } from 'zod';
import { duration } from './common.js';
import { natsTlsSchema, natsToken } from './nats-access.js';
import { redisConnectionShape } from './redis-connection.js';

/** orderKeys: how a node keeps each channel's offset order behind a fan-out (both types). */
function orderKeys(service: string) {
  return {
    reorder_wait: duration('50ms').describe(
      `Longest a node holds a publication that arrived before a lower offset of its channel (publications from several nodes can cross in ${service}). Past it the node reads the missing offsets from the engine history and delivers in offset order.`,
    ),
    catch_up_batch: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(1000)
      .describe(
        'Most publications one catch-up read from history fetches to fill a gap in a channel; a larger gap is left to the subscribers’ own recovery.',
      ),
  };
}

/** natsSchema: where the NATS broker finds NATS and how it keeps order. */
const natsSchema = z
  .strictObject({
    url: z
      .string()
      .default('nats://127.0.0.1:4222')
      .describe(
        'NATS server(s): one `nats://[user:password@]host:port` URL, or several separated by commas (a NATS cluster). Credentials in it are never logged.',
      ),
    prefix: z
      .string()
      .regex(
        /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/,
        'prefix must be NATS subject tokens ([A-Za-z0-9_-]) joined by "."; no "*", ">" or whitespace',
      )
      .default('bulwark')
      .describe(
        'First token(s) of every subject: `<prefix>.ch.<channel>` and `<prefix>.control`, so several deployments can share one NATS.',
      ),
    token: natsToken,
    tls: natsTlsSchema,
    dial_timeout: duration('1s').describe('Longest wait for a connection to NATS, at start and on each reconnect.'),
    reconnect_max_delay: duration('2s').describe(
      'Longest wait between reconnect attempts while NATS is down, and between start attempts of a node that could not reach it.',
    ),
    ping_interval: duration('5s').describe(
      'How often the client pings NATS; two unanswered pings drop the connection (not ready) and reconnect, so a half-open connection is noticed within about twice this.',
    ),
    ...orderKeys('NATS'),
  })
  .prefault({})
  .describe('The NATS broker (broker.type nats).');

/** redisSchema: where the Redis fan-out finds Redis (engine.redis names) and how it keeps order. */
const redisSchema = z
  .strictObject({ ...redisConnectionShape('broker.redis'), ...orderKeys('Redis pub/sub') })
  .prefault({})
  .describe(
    'The Redis fan-out (broker.type redis): pub/sub channels `<prefix>.fanout.{<channel>}` and `<prefix>.fanout.control` (docs/ENGINES.md). It may be the engine Redis, or another one.',
  );

/** brokerSection is the `broker` section. */
export const brokerSection = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'Fan out over a broker of its own instead of the engine: the engine (redis or postgresql) keeps history and offsets; the broker carries publications, joins, leaves and control messages (docs/NATS.md, docs/ENGINES.md).',
      ),
    type: z
      .enum(['nats', 'redis'])
      .default('nats')
      .describe('Broker: nats (core NATS pub/sub) or redis (Redis pub/sub, e.g. history on PostgreSQL).'),
    nats: natsSchema,
    redis: redisSchema,
  })
  .prefault({});
