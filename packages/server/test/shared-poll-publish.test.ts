/**
 * The `shared_poll_publish` server API (docs/API.md, docs/SHARED_POLL.md) with the real
 * `centrifuge` SDK in both formats: a publish reaches exactly the connections tracking its key,
 * with its version, before any refresh cycle; an older or equal version is ignored (and says
 * so); Centrifugo's refusals (108 while publish_enabled is false, 107 for a channel that is not
 * shared_poll or a missing version) and Bulwark's 108 in versionless mode. With the Redis
 * engine, a publish on one node reaches a tracker on another.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { SharedPollSubscription } from 'centrifuge';
import { signTrackSignature } from '../src/auth/shared-poll-signature.js';
import { OriginServer, type OriginRequest } from './helpers/origin.js';
import { describeRedis, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';
import { newCentrifuge, nextEvent, sleep, startTestServer, waitUntil, type TestServer } from './helpers/server.js';

/** Update is an `update` event as the test keeps it: data decoded to JSON in both formats. */
interface Update {
  key: string;
  data: unknown;
  version?: number;
}

function decode(data: unknown): unknown {
  if (data instanceof Uint8Array) return JSON.parse(new TextDecoder().decode(data));
  return data;
}

/** versionedBackend answers the refresh proxy in versioned mode: every asked key at version 1. */
function versionedBackend(req: OriginRequest): { body: unknown } {
  const items = (req.body as { items: Array<{ key: string }> }).items.map(({ key }) => ({
    key,
    data: { from: 'backend' },
    version: 1,
  }));
  return { body: { result: { items } } };
}

const pollSecret = 'poll-secret-for-publish-tests';

/** sharedPollConfig: `feed` (versioned, publish on), `quiet` (publish off), `loose` (versionless). */
function sharedPollConfig(origin: OriginServer): Record<string, unknown> {
  const sp = (extra: Record<string, unknown>) => ({
    subscription_type: 'shared_poll',
    allow_subscribe_for_client: true,
    // Long: nothing but the cold fetch at track and the publishes reach the clients.
    shared_poll: { refresh_interval: '60s', ...extra },
  });
  return {
    shared_poll: { hmac_secret_key: pollSecret },
    channel: {
      proxy: { shared_poll_refresh: { endpoint: `${origin.url}/refresh`, timeout: '1s' } },
      namespaces: [
        { name: 'feed', ...sp({ mode: 'versioned', publish_enabled: true }) },
        { name: 'quiet', ...sp({ mode: 'versioned' }) },
        { name: 'loose', ...sp({ publish_enabled: true }) },
      ],
    },
  };
}

/** tracking connects `user` to `srv`, subscribes to `channel` and tracks `keys`; resolves once their first values came. */
async function tracking(
  srv: TestServer,
  user: string,
  channel: string,
  keys: string[],
  format: 'json' | 'protobuf' = 'json',
): Promise<{ sub: SharedPollSubscription; updates: Update[] }> {
  const client = newCentrifuge(srv.url, { token: await srv.token(user) }, format);
  client.connect();
  const sub = client.newSharedPollSubscription(channel, {
    getSignature: (ctx) =>
      Promise.resolve({ keys: ctx.keys, signature: signTrackSignature(pollSecret, user, channel, ctx.keys, 60) }),
  });
  const updates: Update[] = [];
  sub.on('update', (ctx) => updates.push({ key: ctx.key, data: decode(ctx.data), version: ctx.version }));
  const ready = nextEvent(sub, 'subscribed');
  sub.subscribe();
  await ready;
  sub.track(keys);
  await waitUntil(() => keys.every((k) => updates.some((u) => u.key === k)), 3000, `first values of ${keys.join()}`);
  return { sub, updates };
}

/** deliveries reads bulwark_shared_poll_deliveries_total of a test server. */
async function deliveries(srv: TestServer): Promise<number> {
  const m = await srv.node.metrics.registry.getSingleMetric('bulwark_shared_poll_deliveries_total')?.get();
  return m?.values[0]?.value ?? 0;
}

for (const format of ['json', 'protobuf'] as const) {
  describe(`shared_poll_publish (${format})`, () => {
    let srv: TestServer;
    let origin: OriginServer;

    before(async () => {
      origin = await OriginServer.start();
      origin.route('/refresh', versionedBackend);
      srv = await startTestServer(sharedPollConfig(origin));
    });
    after(async () => {
      await srv.close();
      await origin.close();
    });

    it('reaches exactly the trackers of the key, with its version; an older version is ignored', async () => {
      const channel = 'feed:main';
      const a = await tracking(srv, 'alice', channel, ['p1'], format);
      const b = await tracking(srv, 'bob', channel, ['p2'], format);
      const c = await tracking(srv, 'carol', channel, ['p1', 'p2'], format);
      const calls = origin.callsTo('/refresh');
      const before = await deliveries(srv);

      const r = await srv.api('shared_poll_publish', { channel, key: 'p1', data: { votes: 5 }, version: 5 });
      assert.deepEqual(r.body, { result: {} });
      const newest = (u: Update[], k: string) => u.filter((x) => x.key === k).at(-1);
      await waitUntil(() => newest(a.updates, 'p1')?.version === 5 && newest(c.updates, 'p1')?.version === 5, 3000);
      assert.deepEqual(newest(a.updates, 'p1')?.data, { votes: 5 });
      assert.deepEqual(newest(c.updates, 'p1')?.data, { votes: 5 });
      assert.equal(await deliveries(srv), before + 2, 'two connections track p1: two deliveries, bob none');
      assert.equal(b.updates.length, 1, 'bob tracks p2 only');
      assert.equal(origin.callsTo('/refresh'), calls, 'no backend call: the data came with the publish');

      // Older or equal: not stored, nothing sent, and the result says so.
      for (const version of [3, 5]) {
        const stale = await srv.api('shared_poll_publish', { channel, key: 'p1', data: { votes: 1 }, version });
        assert.deepEqual(stale.body, { result: { suppressed: true, suppress_reason: 'version' } });
      }
      // b64data, as Centrifugo's: base64 of the JSON value.
      const b64data = Buffer.from(JSON.stringify({ votes: 9 })).toString('base64');
      const r2 = await srv.api('shared_poll_publish', { channel, key: 'p2', b64data, version: 2 });
      assert.deepEqual(r2.body, { result: {} });
      await waitUntil(() => newest(b.updates, 'p2')?.version === 2, 3000, 'p2 version 2');
      assert.deepEqual(newest(b.updates, 'p2')?.data, { votes: 9 });
      await sleep(200);
      assert.equal(await deliveries(srv), before + 4, 'p2 to bob and carol; the stale publishes to nobody');
      assert.deepEqual(
        a.updates.map((u) => u.version),
        [1, 5],
        'alice: the first value, then version 5 only',
      );
      for (const s of [a, b, c]) s.sub.unsubscribe();
    });

    it('refuses as Centrifugo: 108 while publish_enabled is false or in versionless mode, 107 otherwise', async () => {
      const code = async (body: Record<string, unknown>) =>
        (await srv.api('shared_poll_publish', { key: 'k', data: 1, version: 1, ...body })).body.error?.code;
      assert.equal(await code({ channel: 'quiet:main' }), 108);
      assert.equal(await code({ channel: 'loose:main' }), 108);
      assert.equal(await code({ channel: 'news:main' }), 107, 'not a shared_poll channel');
      assert.equal(await code({ channel: 'feed:main', version: 0 }), 107, 'versions start at 1');
      assert.equal(await code({ channel: 'feed:main', key: '' }), 107);
      assert.equal(await code({ channel: 'feed:main', key: 'a\u0000b' }), 107);
      assert.equal(await code({ channel: 'nowhere:main' }), 102);
    });
  });
}

await describeRedis('shared_poll_publish in a cluster', () => {
  it('a publish on one node reaches the trackers on another', async (t: TestContext) => {
    const prefix = uniquePrefix();
    t.after(() => removeKeys(prefix).then(() => undefined));
    const origin = await OriginServer.start();
    t.after(() => origin.close());
    origin.route('/refresh', versionedBackend);
    const config = {
      ...sharedPollConfig(origin),
      engine: { type: 'redis' as const, redis: { address: [redisUrl], prefix } },
    };
    const [one, two] = await Promise.all([startTestServer(config), startTestServer(config)]);
    t.after(async () => {
      await one!.close();
      await two!.close();
    });
    const channel = 'feed:cluster';
    const far = await tracking(two!, 'dave', channel, ['x']);
    const near = await tracking(one!, 'erin', channel, ['x']);
    const r = await one!.api('shared_poll_publish', { channel, key: 'x', data: 'new', version: 7 });
    assert.deepEqual(r.body, { result: {} });
    await waitUntil(
      () => [far, near].every((s) => s.updates.at(-1)?.version === 7),
      3000,
      'both nodes delivered version 7',
    );
    assert.equal(far.updates.at(-1)?.data, 'new');
    far.sub.unsubscribe();
    near.sub.unsubscribe();
  });
});
