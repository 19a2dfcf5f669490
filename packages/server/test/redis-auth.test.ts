/**
 * Incident 3 on the Redis engine: a node whose Redis password did not reach it (a secret that
 * failed to mount) must say so, naming the key to set — not pass silently, not crash-loop,
 * not fall back to memory. It stays up, not ready, and becomes ready once the password is right.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, it } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Node } from '../src/node.js';
import { describeIf, RedisServer, redisServerMissing } from './helpers/redis.js';
import { waitUntil } from './helpers/server.js';

/** logLines collects a node's JSON log lines. */
function logLines(): { lines: Array<Record<string, unknown>>; stream: Writable } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as never);
      done();
    },
  });
  return { lines, stream };
}

function redisNode(port: number, password: string, stream: Writable): Node {
  return new Node(
    {
      client: { insecure: true },
      http_api: { insecure: true },
      http_server: { address: '127.0.0.1', port: 0 },
      engine: {
        type: 'redis',
        redis: { address: [`redis://127.0.0.1:${port}`], password, reconnect_max_delay: '200ms' },
      },
    },
    { logger: pino({ level: 'info' }, stream) },
  );
}

describeIf('Redis engine: authentication', redisServerMissing(), () => {
  let server: RedisServer;
  before(async () => {
    server = await RedisServer.start();
    const admin = new Redis(server.url);
    await admin.config('SET', 'requirepass', 's3cret');
    admin.disconnect();
  });
  after(() => server.destroy());

  it('without the password: up, not ready, an error naming engine.redis.password; with it: ready', async (t) => {
    const { lines, stream } = logLines();
    const node = redisNode(server.port, '', stream);
    t.after(() => node.shutdown());
    const { port } = await node.start();
    const ready = await fetch(`http://127.0.0.1:${port}/ready`);
    assert.equal(ready.status, 503);
    assert.deepEqual(await ready.json(), { ready: false, draining: false, engine: 'unavailable' });
    await waitUntil(() => lines.some((l) => String(l['msg']).includes('refused authentication')), 5000, 'auth error');
    const line = lines.find((l) => String(l['msg']).includes('refused authentication'));
    assert.equal(line?.['level'], 50, 'logged as an error');
    assert.match(String(line?.['msg']), /NOAUTH.*set engine\.redis\.password \(BULWARK_ENGINE_REDIS_PASSWORD\)/);

    const good = redisNode(server.port, 's3cret', logLines().stream);
    t.after(() => good.shutdown());
    const started = await good.start();
    assert.equal(good.ready, true);
    const res = await fetch(`http://127.0.0.1:${started.port}/ready`);
    assert.equal(res.status, 200);
    await res.text();
  });
});
