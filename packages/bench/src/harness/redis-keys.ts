/**
 * The little the simulator asks of Redis itself (the servers under test talk to it on their own):
 * whether it answers, and removing a run's keys afterwards. Uses ioredis, as the server does.
 *
 * @module
 */
import { Redis } from 'ioredis';

/** withRedis runs `fn` on a short-lived connection to `url` that fails fast instead of retrying. */
async function withRedis<T>(url: string, timeoutMs: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  r.on('error', () => undefined); // reported through the failed command instead
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

/** redisReachable resolves with undefined when Redis at `url` answers PING, else the reason it does not. */
export async function redisReachable(url: string, timeoutMs = 2000): Promise<string | undefined> {
  try {
    await withRedis(url, timeoutMs, (r) => r.ping());
    return undefined;
  } catch (err) {
    return `Redis at ${url} does not answer (${(err as Error).message})`;
  }
}

/** redisPing resolves when Redis at `url` answers PING and rejects with the reason otherwise. */
export async function redisPing(url: string, timeoutMs = 2000): Promise<void> {
  const why = await redisReachable(url, timeoutMs);
  if (why !== undefined) throw new Error(why);
}

/** globEscape makes `s` match itself literally in a SCAN MATCH pattern. */
export function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * deleteKeysWithPrefix removes every key starting with `prefix` (SCAN + UNLINK) and resolves
 * with how many it removed. `prefix` must be a run's own unique prefix: an empty one is refused.
 */
export async function deleteKeysWithPrefix(url: string, prefix: string, timeoutMs = 5000): Promise<number> {
  if (prefix === '') throw new Error('deleteKeysWithPrefix: refusing an empty prefix');
  return withRedis(url, timeoutMs, async (r) => {
    let removed = 0;
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${globEscape(prefix)}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) removed += await r.unlink(...keys);
    } while (cursor !== '0');
    return removed;
  });
}
