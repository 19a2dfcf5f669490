/**
 * A test node on a private `redis-server` (one the test may pause, stop or kill) with short
 * engine timeouts, and an admin connection to that Redis: the setup of the tests that make
 * Redis misbehave under a node (outcome-unknown failures, retries through a pause).
 *
 * @module
 */
import { Redis } from 'ioredis';
import { RedisServer, uniquePrefix } from './redis.js';
import { startTestServer, type TestServer } from './server.js';

/** PrivateRedisNode is the node, its Redis, and an admin client of that Redis. */
export interface PrivateRedisNode {
  redis: RedisServer;
  srv: TestServer;
  admin: Redis;
}

/**
 * privateRedisNode starts a Redis and a node on it (connect 300 ms, io 400 ms, reconnect at
 * most 300 ms apart), all released when the test `t` ends.
 */
export async function privateRedisNode(t: { after(fn: () => unknown): void }): Promise<PrivateRedisNode> {
  const redis = await RedisServer.start();
  t.after(() => redis.destroy());
  const srv = await startTestServer({
    engine: {
      type: 'redis',
      redis: {
        address: [redis.url],
        prefix: uniquePrefix(),
        connect_timeout: '300ms',
        io_timeout: '400ms',
        reconnect_max_delay: '300ms',
      },
    },
  });
  t.after(() => srv.close());
  const admin = new Redis(redis.url);
  t.after(() => admin.disconnect());
  return { redis, srv, admin };
}
