/**
 * Publication variants (Bulwark's own; incident 2): one publish carries a sticker for clients
 * that can render it and an "upgrade" text for older ones; each real `centrifuge` SDK client
 * (JSON and Protobuf) gets the payload its connect `name`/`version` and token `features`
 * select, live, from history and after recovery; a variant answered by a cacheable backend RPC
 * costs one backend call per sticker however often it is posted; the variants travel through
 * Redis to another node; bad variants are refused with 107 and publish nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { Centrifuge, Options } from 'centrifuge';
import { OriginServer, type OriginRequest } from './helpers/origin.js';
import { describeRedis, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';
import { newCentrifuge, nextEvent, sleep, startTestServer, waitUntil, type TestServer } from './helpers/server.js';

const dec = new TextDecoder();
const sticker = { type: 'sticker', id: 'lovey-dovey', animated: true };
const upgrade = { type: 'text', text: 'Update the game to see this sticker' };
const variants = [{ when: { lacks: 'animated_stickers', version_below: '5.2' }, data: upgrade }];

/** Seen records the data of every publication a subscription got, decoded from either format. */
interface Seen {
  data: unknown[];
  client: Centrifuge;
}

/** player connects an SDK client declaring `version` (and `features` in its token) and subscribes. */
async function player(
  t: TestContext,
  srv: TestServer,
  user: string,
  version: string,
  opts: { features?: string[]; format?: 'json' | 'protobuf'; channel?: string; more?: Partial<Options> } = {},
): Promise<Seen> {
  const token = await srv.token(user, opts.features ? { features: opts.features } : {});
  const client = newCentrifuge(srv.url, { token, name: 'android', version, ...opts.more }, opts.format ?? 'json');
  t.after(() => client.disconnect());
  const seen: Seen = { data: [], client };
  const sub = client.newSubscription(opts.channel ?? 'chat:lobby');
  sub.on('publication', (ctx) => {
    seen.data.push(ctx.data instanceof Uint8Array ? JSON.parse(dec.decode(ctx.data)) : ctx.data);
  });
  const subscribed = nextEvent(sub, 'subscribed', 3000);
  sub.subscribe();
  client.connect();
  await subscribed;
  return seen;
}

describe('publication variants (memory engine)', () => {
  it('each client gets the payload its version and features select, live and from history', async (t) => {
    const srv = await startTestServer();
    t.after(() => srv.close());
    const old = await player(t, srv, 'old', '5.1.3');
    const oldPb = await player(t, srv, 'old-pb', '4', { format: 'protobuf' });
    const fresh = await player(t, srv, 'new', '5.2.0', { features: ['animated_stickers'] });
    const freshPb = await player(t, srv, 'new-pb', '6.0', { features: ['animated_stickers'], format: 'protobuf' });
    // The variant needs both conditions: a 5.2 client without the feature flag gets the sticker.
    const newNoFeature = await player(t, srv, 'new-nofeat', '5.2.0');

    const res = await srv.api('publish', { channel: 'chat:lobby', data: sticker, variants });
    assert.equal(res.body.result?.offset, 1, JSON.stringify(res.body));
    const all = [old, oldPb, fresh, freshPb, newNoFeature];
    await waitUntil(() => all.every((p) => p.data.length === 1), 3000, 'every client got one publication');
    assert.deepEqual(
      all.map((p) => p.data[0]),
      [upgrade, upgrade, sticker, sticker, sticker],
    );

    // History: the client's own variant; the API's history shows the publication with its variants.
    const sub = old.client.getSubscription('chat:lobby')!;
    const h = await sub.history({ limit: 10 });
    assert.deepEqual(
      h.publications.map((p) => p.data),
      [upgrade],
    );
    const apiHistory = await srv.api('history', { channel: 'chat:lobby', limit: 10 });
    assert.deepEqual(apiHistory.body.result.publications[0].data, sticker);
    assert.deepEqual(apiHistory.body.result.publications[0].variants, variants);

    const metrics = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    assert.match(metrics, /^bulwark_variant_deliveries_total\{[^}]*variant="0"[^}]*\} 2$/m);
    assert.match(metrics, /^bulwark_variant_deliveries_total\{[^}]*variant="default"[^}]*\} 3$/m);
  });

  it('a recovering old client gets its variant of what it missed', async (t) => {
    const srv = await startTestServer();
    t.after(() => srv.close());
    const old = await player(t, srv, 'old', '5.0');
    await srv.api('publish', { channel: 'chat:lobby', data: { n: 1 } });
    await waitUntil(() => old.data.length === 1, 3000, 'the first publication');
    old.client.disconnect();
    await srv.api('publish', { channel: 'chat:lobby', data: sticker, variants });
    await srv.api('publish', { channel: 'chat:lobby', data: { n: 3 } });
    const resubscribed = nextEvent(old.client.getSubscription('chat:lobby')!, 'subscribed', 3000);
    old.client.connect();
    const ctx = await resubscribed;
    assert.equal(ctx.recovered, true);
    await waitUntil(() => old.data.length === 3, 3000, 'the recovered publications');
    assert.deepEqual(old.data, [{ n: 1 }, upgrade, { n: 3 }]);
  });

  it('refuses bad variants with 107 and publishes nothing', async (t) => {
    const srv = await startTestServer({ http_api: { publication_variants_max: 2 } });
    t.after(() => srv.close());
    const v = (x: object) => ({ when: { lacks: 'x' }, data: 1, ...x });
    const bad: [unknown, RegExp][] = [
      [[{ when: { platform: 'ios' }, data: 1 }], /variants\.0\.when/],
      [[{ when: {}, data: 1 }], /at least one condition/],
      [[{ when: { version_below: 'latest' }, data: 1 }], /must be a version/],
      [[{ when: { has: 'x' } }], /exactly one of data, b64data, rpc/],
      [[v({ rpc: { method: 'm' } })], /exactly one of data, b64data, rpc/],
      [[v({}), v({}), v({})], /variants: more than http_api.publication_variants_max \(2 entries\)/],
      [[{ when: { has: 'x' }, rpc: { method: 'no.route' } }], /variants\[0\]\.rpc\.method: no RPC proxy route/],
      ['not an array', /variants/],
    ];
    for (const [variantsField, message] of bad) {
      for (const body of [
        { channel: 'chat:v', data: 1, variants: variantsField },
        { channels: ['chat:v'], data: 1, variants: variantsField },
      ]) {
        const res = await srv.api('channel' in body ? 'publish' : 'broadcast', body);
        assert.equal(res.body.error?.code, 107, `${JSON.stringify(variantsField)}: ${JSON.stringify(res.body)}`);
        assert.match(res.body.error.message, message);
      }
    }
    const h = await srv.api('history', { channel: 'chat:v', limit: -1 });
    assert.deepEqual(h.body.result.publications, []);
  });
});

describe('publication variants from a cacheable RPC', () => {
  let origin: OriginServer;
  before(async () => {
    origin = await OriginServer.start();
    origin.route('/rpc', (req: OriginRequest) => {
      const id = (req.body as { data?: { id?: string } }).data?.id ?? '?';
      return { body: { result: { data: { type: 'text', text: `Update to see ${id}` } } } };
    });
  });
  after(() => origin.close());

  it('posting a sticker many times costs the backend one call per sticker', async (t) => {
    const srv = await startTestServer({
      rpc: { proxy: { endpoint: `${origin.url}/rpc`, timeout: '2s' }, without_namespace: { proxy_enabled: true } },
      proxy: { cache: { rpc: [{ method: 'sticker.fallback', ttl: '60s', per_user: false }] } },
    });
    t.after(() => srv.close());
    const old = await player(t, srv, 'old', '1.0');
    const fresh = await player(t, srv, 'new', '9.0', { features: ['animated_stickers'] });
    origin.resetCounters();
    const post = (id: string) =>
      srv.api('publish', {
        channel: 'chat:lobby',
        data: { type: 'sticker', id },
        variants: [{ when: { lacks: 'animated_stickers' }, rpc: { method: 'sticker.fallback', data: { id } } }],
      });
    const answers = await Promise.all(['a', 'b', 'a', 'a', 'b', 'a'].map(post));
    for (const a of answers) assert.ok(a.body.result, JSON.stringify(a.body));
    await waitUntil(() => old.data.length === 6 && fresh.data.length === 6, 3000, 'six posts each');
    assert.equal(origin.callsTo('/rpc'), 2, 'one backend call per sticker');
    assert.deepEqual(
      new Set(old.data.map((d) => (d as { text: string }).text)),
      new Set(['Update to see a', 'Update to see b']),
    );
    assert.ok(fresh.data.every((d) => (d as { type: string }).type === 'sticker'));
  });
});

await describeRedis('publication variants across nodes on Redis', () => {
  const prefix = uniquePrefix();
  after(() => removeKeys(prefix).then(() => undefined));

  it('a publication with variants published on one node reaches the other node with them', async (t) => {
    const engine = { type: 'redis' as const, redis: { address: [redisUrl], prefix } };
    const a = await startTestServer({ engine });
    t.after(() => a.close());
    const b = await startTestServer({ engine });
    t.after(() => b.close());
    const old = await player(t, b, 'old', '5.1');
    const fresh = await player(t, b, 'new', '5.3', { features: ['animated_stickers'] });
    assert.equal((await a.api('publish', { channel: 'chat:lobby', data: sticker, variants })).body.result?.offset, 1);
    await waitUntil(() => old.data.length === 1 && fresh.data.length === 1, 3000, 'both got it on node b');
    await sleep(50);
    assert.deepEqual([old.data, fresh.data], [[upgrade], [sticker]]);
    const h = await old.client.getSubscription('chat:lobby')!.history({ limit: 10 });
    assert.deepEqual(
      h.publications.map((p) => p.data),
      [upgrade],
    );
  });
});
