/**
 * The map publish and remove proxies with the real `centrifuge` SDK and a real HTTP backend:
 * the backend sees every client write (connection, channel, key, data), refuses a cheat with
 * its own error, rewrites the key and data and stamps tags and score, turns a claim into an
 * `if_new` (113 for the loser), and decides removals; without an answer the write goes as sent;
 * a namespace pointing at a proxy without an endpoint is refused at config load.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Centrifuge, MapSubscription } from 'centrifuge';
import { loadConfig } from '../src/config/load.js';
import { ErrorCode } from '../src/protocol/codes.js';
import { OriginServer, type OriginRequest } from './helpers/origin.js';
import { nextEvent, newCentrifuge, startTestServer, type TestServer } from './helpers/server.js';

interface MapWriteBody {
  client: string;
  user: string;
  channel: string;
  key: string;
  data?: { score?: number; cheat?: boolean };
}

describe('map publish and remove proxies', () => {
  let srv: TestServer;
  let origin: OriginServer;
  before(async () => {
    origin = await OriginServer.start();
    origin.route('/map/publish', (req: OriginRequest) => {
      const b = req.body as MapWriteBody;
      if (b.data?.cheat === true) return { body: { error: { code: 1403, message: 'no cheating' } } };
      if (b.channel.startsWith('board:claims')) return { body: { result: { key_mode: 'if_new' } } };
      if (b.key === 'as-sent') return { body: {} };
      // A leaderboard entry: keyed by the user, score computed by the backend, tags stamped.
      const score = b.data?.score ?? 0;
      return {
        body: { result: { key: `player-${b.user}`, data: { score, checked: true }, score, tags: { by: 'backend' } } },
      };
    });
    origin.route('/map/remove', (req: OriginRequest) => {
      const b = req.body as MapWriteBody;
      return b.key === 'keep' ? { body: { error: { code: 1403, message: 'stays' } } } : { body: {} };
    });
    srv = await startTestServer({
      channel: {
        proxy: {
          map_publish: { endpoint: `${origin.url}/map/publish` },
          map_remove: { endpoint: `${origin.url}/map/remove` },
        },
        namespaces: [
          {
            name: 'board',
            subscription_type: 'map',
            allow_subscribe_for_client: true,
            map: { mode: 'persistent', publish_proxy_enabled: true, remove_proxy_enabled: true },
          },
        ],
      },
    });
  });
  after(async () => {
    await srv.close();
    await origin.close();
  });

  async function subscribed(user: string, channel: string): Promise<{ c: Centrifuge; sub: MapSubscription }> {
    const c = newCentrifuge(srv.url, { token: await srv.token(user) });
    const up = nextEvent(c, 'connected');
    c.connect();
    await up;
    const sub = c.newMapSubscription(channel);
    const synced = nextEvent(sub, 'sync');
    sub.subscribe();
    await synced;
    return { c, sub };
  }

  async function entries(channel: string) {
    const r = await srv.api('map_read_state', { channel });
    return r.body.result.publications as Array<{ key: string; data: unknown; score?: number; tags?: unknown }>;
  }

  it('lets the backend rewrite key and data and stamp score and tags, or refuse', async () => {
    const { sub } = await subscribed('ann', 'board:lb');
    await sub.publish('whatever', { score: 42 });
    const sent = origin.lastRequest('/map/publish')?.body as MapWriteBody;
    assert.equal(sent.channel, 'board:lb');
    assert.equal(sent.key, 'whatever');
    assert.equal(sent.user, 'ann');
    assert.deepEqual(sent.data, { score: 42 });
    assert.deepEqual(await entries('board:lb'), [
      {
        key: 'player-ann',
        data: { score: 42, checked: true },
        offset: 1,
        score: 42,
        tags: { by: 'backend' },
        info: { user: 'ann', client: sent.client },
      },
    ]);
    await assert.rejects(sub.publish('x', { cheat: true }), (err: { code: number; message: string }) => {
      assert.equal(err.code, 1403);
      assert.equal(err.message, 'no cheating');
      return true;
    });
    assert.equal((await entries('board:lb')).length, 1, 'a refused write changes nothing');
    await sub.publish('as-sent', { v: 1 });
    assert.ok(
      (await entries('board:lb')).some((e) => e.key === 'as-sent'),
      'an empty answer allows the write as sent',
    );
  });

  it('turns a claim into if_new when the backend says so: one winner, 113 for the other', async () => {
    const a = await subscribed('amy', 'board:claims');
    const b = await subscribed('ben', 'board:claims');
    const results = await Promise.allSettled([
      a.sub.publish('seat', { by: 'amy' }),
      b.sub.publish('seat', { by: 'ben' }),
    ]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const lost = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal((lost?.reason as { code: number }).code, ErrorCode.Conflict);
  });

  it('asks the backend before a removal', async () => {
    await srv.api('map_publish', { channel: 'board:rm', key: 'keep', data: 1 });
    await srv.api('map_publish', { channel: 'board:rm', key: 'drop', data: 2 });
    const { sub } = await subscribed('rita', 'board:rm');
    await assert.rejects(sub.remove('keep'), (err: { code: number }) => err.code === 1403);
    await sub.remove('drop');
    assert.deepEqual(
      (await entries('board:rm')).map((e) => e.key),
      ['keep'],
    );
    assert.equal((origin.lastRequest('/map/remove')?.body as MapWriteBody).key, 'drop');
  });

  it('refuses a namespace whose map proxy has no endpoint', () => {
    assert.throws(
      () =>
        loadConfig({
          object: {
            client: { insecure: true },
            http_api: { insecure: true },
            channel: {
              namespaces: [{ name: 'board', subscription_type: 'map', map: { publish_proxy_enabled: true } }],
            },
          },
        }),
      /map\.publish_proxy_enabled.*channel\.proxy\.map_publish/s,
    );
  });
});
