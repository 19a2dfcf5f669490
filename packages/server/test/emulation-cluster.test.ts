/**
 * Emulation across processes: two `bulwark start` processes on one Redis, an SDK client whose
 * HTTP stream is held by the first and whose /emulation requests all go to the second (as a
 * load balancer without sticky sessions may send them). The second relays every request to the
 * first through the control channel, so subscribe, publish and presence work. Needs Redis at
 * BULWARK_TEST_REDIS_URL (skipped without it, unless BULWARK_REQUIRE_SERVICES=1).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { Centrifuge } from 'centrifuge';
import { signConnectionToken } from '../src/auth/token-signer.js';
import { callApi, startBulwark, writeConfigFile } from './helpers/process.js';
import { describeRedis, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';
import { baseNamespaces, nextEvent, waitUntil } from './helpers/server.js';

await describeRedis('emulation across two processes on Redis', () => {
  it('an /emulation POST sent to node B reaches the session on node A', async (t) => {
    const secret = randomBytes(24).toString('hex');
    const apiKey = randomBytes(24).toString('hex');
    const prefix = uniquePrefix();
    t.after(() => removeKeys(prefix).then(() => undefined));
    const cfg = writeConfigFile({
      http_server: { address: '127.0.0.1' },
      log: { level: 'warn' },
      client: { token: { hmac_secret_key: secret } },
      http_api: { key: apiKey },
      http_stream: { enabled: true },
      engine: { type: 'redis', redis: { address: [redisUrl], prefix } },
      node: { info_interval: '200ms' },
      drain: { window: '0s' },
      channel: { namespaces: baseNamespaces.filter((ns) => ns.name === 'chat') },
    });
    t.after(() => cfg.remove());
    const [a, b] = await Promise.all([startBulwark(cfg.path, {}, t), startBulwark(cfg.path, {}, t)]);
    // B relays only to a node it knows is live.
    for (let i = 0; ; i++) {
      const info = await callApi(b.httpUrl, apiKey, 'info');
      if ((info.body?.result?.nodes ?? []).length === 2) break;
      if (i > 100) assert.fail('node B never saw node A');
      await new Promise((r) => setTimeout(r, 50));
    }
    const c = new Centrifuge([{ transport: 'http_stream', endpoint: `${a.httpUrl}/connection/http_stream` }], {
      emulationEndpoint: `${b.httpUrl}/emulation`,
      fetch,
      readableStream: ReadableStream,
      token: await signConnectionToken({ secret, user: 'roamer' }),
      timeout: 3000,
    });
    t.after(() => c.disconnect());
    const ready = nextEvent(c, 'connected', 3000);
    c.connect();
    const ctx = await ready;
    const sub = c.newSubscription('chat:relay');
    const pubs: unknown[] = [];
    sub.on('publication', (p) => pubs.push(p.data));
    sub.subscribe();
    await sub.ready(3000);
    await sub.publish({ via: 'B' });
    await waitUntil(() => pubs.length === 1, 3000, 'own publication');
    assert.deepEqual(pubs, [{ via: 'B' }]);
    assert.deepEqual(Object.keys((await sub.presence()).clients), [ctx.client]);
    const metrics = await (await fetch(`${b.httpUrl}/metrics`)).text();
    const relayed = /bulwark_emulation_requests_total\{result="relayed"[^}]*\} (\d+)/.exec(metrics);
    assert.ok(relayed && Number(relayed[1]) >= 3, `B relayed the commands: ${relayed?.[0] ?? 'none'}`);
  });
});
