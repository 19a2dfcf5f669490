/**
 * Shared poll across a cluster: three `bulwark start` processes sharing Redis, clients on each
 * tracking overlapping items, and a counting origin as the refresh proxy. The backend gets ONE
 * request per batch per cycle for the whole cluster (the union of tracked keys, each key once),
 * not one per node or per client; a change reaches exactly the connections tracking its key
 * (counted server-side: the SDK itself drops publications of keys it does not track).
 */
import { it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Centrifuge, SharedPollSubscription } from 'centrifuge';
import { signTrackSignature } from '../src/auth/shared-poll-signature.js';
import { signConnectionToken } from '../src/auth/token-signer.js';
import type { ConfigInput } from '../src/config/schema.js';
import { OriginServer, type OriginRequest } from './helpers/origin.js';
import { startBulwark, writeConfigFile, type BulwarkProcess } from './helpers/process.js';
import { describeRedis, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';
import { connected, sleep, waitUntil } from './helpers/server.js';

const channel = 'board:main';
const interval = 500;

/** deliveries reads bulwark_shared_poll_deliveries_total from a process's /metrics. */
async function deliveries(proc: BulwarkProcess): Promise<number> {
  const text = await (await fetch(`${proc.httpUrl}/metrics`)).text();
  const m = /^bulwark_shared_poll_deliveries_total(?:\{[^}]*\})? (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

await describeRedis('shared poll in a cluster', () => {
  it('asks the backend once per batch per cycle for the cluster, and delivers only to trackers', async (t: TestContext) => {
    const secret = randomBytes(24).toString('hex');
    const pollSecret = randomBytes(24).toString('hex');
    const prefix = uniquePrefix();
    t.after(() => removeKeys(prefix).then(() => undefined));
    const values = new Map<string, number>([...'abcde'].map((k) => [k, 1]));
    const asked: string[][] = [];
    const origin = await OriginServer.start();
    t.after(() => origin.close());
    origin.route('/refresh', (req: OriginRequest) => {
      const keys = (req.body as { items: Array<{ key: string }> }).items.map((i) => i.key);
      asked.push(keys);
      return { body: { result: { items: keys.map((key) => ({ key, data: { n: values.get(key) } })) } } };
    });
    const config: ConfigInput = {
      http_server: { address: '127.0.0.1' },
      log: { level: 'warn' },
      client: { token: { hmac_secret_key: secret } },
      http_api: { key: randomBytes(24).toString('hex') },
      engine: { type: 'redis', redis: { address: [redisUrl], prefix } },
      drain: { window: '0s' },
      shared_poll: { hmac_secret_key: pollSecret },
      channel: {
        proxy: { shared_poll_refresh: { endpoint: `${origin.url}/refresh`, timeout: '1s' } },
        namespaces: [
          {
            name: 'board',
            subscription_type: 'shared_poll',
            allow_subscribe_for_client: true,
            shared_poll: { refresh_interval: `${interval}ms`, refresh_batch_size: 3 },
          },
        ],
      },
    };
    const file = writeConfigFile(config);
    t.after(() => file.remove());
    const procs = await Promise.all([0, 1, 2].map(() => startBulwark(file.path, {}, t)));

    // Who tracks what: b on three connections of two nodes, a on two nodes, c, d, e elsewhere.
    const plan: Array<[number, string[]]> = [
      [0, ['a', 'b']],
      [0, ['b', 'c']],
      [1, ['a']],
      [1, ['d']],
      [2, ['b', 'c']],
      [2, ['e']],
    ];
    const seen: Array<Map<string, number>> = [];
    for (const [i, [node, keys]] of plan.entries()) {
      const user = `u${i}`;
      const c: Centrifuge = await connected(procs[node]!.url, { token: await signConnectionToken({ secret, user }) });
      t.after(() => c.disconnect());
      const sub: SharedPollSubscription = c.newSharedPollSubscription(channel, {
        getSignature: (ctx) =>
          Promise.resolve({ keys: ctx.keys, signature: signTrackSignature(pollSecret, user, channel, ctx.keys, 300) }),
      });
      const got = new Map<string, number>();
      seen.push(got);
      sub.on('update', (ctx) => got.set(ctx.key, (ctx.data as { n: number }).n));
      sub.subscribe();
      sub.track(keys);
    }
    await waitUntil(() => plan.every(([, keys], i) => keys.every((k) => seen[i]!.get(k) === 1)), 5000, 'initial items');

    // Steady state: every cycle asks for the union (5 keys in batches of 3: 2 requests), once.
    await sleep(interval * 2);
    asked.length = 0;
    const windowMs = 3000;
    await sleep(windowMs);
    const requests = asked.length;
    t.diagnostic(`${requests} refresh requests in ${windowMs} ms for 3 nodes, 6 connections, 5 keys`);
    const cycles = windowMs / (interval * 0.9) + 1;
    assert.ok(
      requests <= 2 * Math.ceil(cycles),
      `${requests} requests in ${windowMs} ms: more than one cycle per interval`,
    );
    assert.ok(requests >= 2 * 3, `${requests} requests in ${windowMs} ms: cycles stalled`);
    const perKey = new Map<string, number>();
    for (const keys of asked) {
      assert.ok(keys.length <= 3, 'batches of refresh_batch_size');
      for (const k of keys) perKey.set(k, (perKey.get(k) ?? 0) + 1);
    }
    assert.deepEqual([...perKey.keys()].sort(), ['a', 'b', 'c', 'd', 'e'], 'the union of every node');
    const counts = [...perKey.values()];
    assert.ok(
      Math.max(...counts) - Math.min(...counts) <= 1,
      `each key once per cycle: ${JSON.stringify([...perKey])}`,
    );

    // A change of b reaches the three connections tracking it (nodes 0 and 2), no one else.
    const before = await Promise.all(procs.map(deliveries));
    values.set('b', 2);
    await waitUntil(() => [0, 1, 4].every((i) => seen[i]!.get('b') === 2), 5000, 'b updated on its trackers');
    await sleep(interval * 2);
    const afterB = await Promise.all(procs.map(deliveries));
    assert.deepEqual(
      afterB.map((n, i) => n - before[i]!),
      [2, 0, 1],
      'deliveries per node: two trackers on node 0, one on node 2',
    );
  });
});
