/**
 * The recovery options, end to end with the real `centrifuge` SDK in both formats on the
 * memory and the Redis engine: `force_recovery_mode: "cache"` (a recovering subscriber gets the
 * latest publication only, the latest matching one under a tags filter), and the SDK's
 * getState flow, whose subscribe flag makes an unrecoverable subscribe fail with 112 (and the
 * SDK reload its state) instead of succeeding with `recovered: false`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { Centrifuge, PublicationContext, SubscribedContext, Subscription, SubscriptionOptions } from 'centrifuge';
import { describeRedis, redisUrl, uniquePrefix } from './helpers/redis.js';
import {
  nextEvent,
  newCentrifuge,
  rawClient,
  sleep,
  startTestServer,
  waitUntil,
  type TestServer,
} from './helpers/server.js';

type Format = 'json' | 'protobuf';

/** payload reads a publication's data in either format (Protobuf carries the JSON's bytes). */
function payload(data: unknown): { n: number } {
  if (data instanceof Uint8Array) return JSON.parse(new TextDecoder().decode(data)) as { n: number };
  return data as { n: number };
}

interface Seen {
  sub: Subscription;
  got: number[];
  subscribed: SubscribedContext[];
}

function watch(c: Centrifuge, channel: string, opts: Partial<SubscriptionOptions>): Seen {
  const sub = c.newSubscription(channel, opts);
  const seen: Seen = { sub, got: [], subscribed: [] };
  sub.on('publication', (ctx: PublicationContext) => seen.got.push(payload(ctx.data).n));
  sub.on('subscribed', (ctx) => seen.subscribed.push(ctx));
  return seen;
}

function modes(engine: 'memory' | 'redis'): void {
  let srv: TestServer;

  before(async () => {
    srv = await startTestServer({
      ...(engine === 'redis'
        ? { engine: { type: 'redis', redis: { address: [redisUrl], prefix: uniquePrefix() } } }
        : {}),
      channel: {
        namespaces: [
          {
            name: 'state',
            history_size: 10,
            history_ttl: '300s',
            force_recovery: true,
            force_recovery_mode: 'cache',
            allow_tags_filter: true,
            allow_subscribe_for_client: true,
          },
        ],
      },
    });
  });
  after(() => srv.close());

  async function client(t: TestContext, user: string, format: Format): Promise<Centrifuge> {
    const c = newCentrifuge(srv.url, { token: await srv.token(user) }, format);
    const ok = nextEvent(c, 'connected');
    c.connect();
    await ok;
    t.after(() => c.disconnect());
    return c;
  }

  async function publish(channel: string, from: number, to: number, tags?: (n: number) => Record<string, string>) {
    for (let n = from; n <= to; n++) {
      const pos = await srv.node.publish(channel, { n }, tags ? { tags: tags(n) } : {});
      assert.equal(pos.offset, n);
    }
  }

  /** reconnect forces a reconnect of `user`, running `meanwhile` while the client is away. */
  async function reconnect(c: Centrifuge, user: string, seen: Seen, meanwhile: () => Promise<void>): Promise<void> {
    const before = seen.subscribed.length;
    let done: Promise<void> = Promise.resolve();
    c.once('connecting', () => (done = meanwhile()));
    await srv.api('disconnect', { user, disconnect: { code: 3011, reason: 'reconnect' } });
    await waitUntil(() => seen.subscribed.length > before, 5000, 'resubscribed');
    await done;
  }

  for (const format of ['json', 'protobuf'] as const) {
    describe(format, () => {
      it('cache mode: a subscriber recovering gets only the latest publication, then every live one', async (t) => {
        const ch = `state:${format}-latest`;
        await publish(ch, 1, 5);
        const c = await client(t, `${format}-c1`, format);
        const s = watch(c, ch, { since: {} });
        s.sub.subscribe();
        await waitUntil(() => s.got.length === 1, 3000, 'latest');
        assert.equal(s.subscribed[0]?.recovered, true);
        assert.deepEqual(s.got, [5]);
        await publish(ch, 6, 6);
        await waitUntil(() => s.got.length === 2, 3000, 'live');
        await reconnect(c, `${format}-c1`, s, () => publish(ch, 7, 9));
        await waitUntil(() => s.got.length === 3, 3000, 'latest after reconnect');
        await sleep(50);
        assert.deepEqual(s.got, [5, 6, 9], 'never the backlog');
        assert.equal(s.subscribed[1]?.recovered, true);
        await publish(ch, 10, 10);
        await waitUntil(() => s.got.length === 4, 3000, 'live again');
      });

      it('cache mode: nothing to give is recovered: false; a tags filter gives the latest matching one', async (t) => {
        const c = await client(t, `${format}-c2`, format);
        const empty = watch(c, `state:${format}-empty`, { since: {} });
        empty.sub.subscribe();
        await waitUntil(() => empty.subscribed.length === 1, 3000, 'subscribed');
        assert.equal(empty.subscribed[0]?.recovered, false);
        assert.deepEqual(empty.got, []);

        const ch = `state:${format}-filtered`;
        await publish(ch, 1, 6, (n) => ({ region: n % 3 === 1 ? 'eu' : 'us' })); // eu: 1, 4
        const eu = watch(c, ch, { since: {}, tagsFilter: { key: 'region', cmp: 'eq', val: 'eu' } });
        eu.sub.subscribe();
        await waitUntil(() => eu.got.length === 1, 3000, 'latest eu');
        assert.deepEqual(eu.got, [4]);
        assert.equal(eu.subscribed[0]?.recovered, true);
        await publish(ch, 7, 8, (n) => ({ region: n === 8 ? 'eu' : 'us' }));
        await waitUntil(() => eu.got.length === 2, 3000, 'live eu');
        assert.deepEqual(eu.got, [4, 8]);
      });

      it('getState: an unrecoverable position is refused (112) and the SDK reloads its state', async (t) => {
        const ch = `tiny:${format}-gs`;
        const user = `${format}-gs`;
        let loads = 0;
        const getState = async () => {
          loads++;
          const h = await srv.api('history', { channel: ch });
          return { offset: h.body.result.offset ?? 0, epoch: h.body.result.epoch };
        };
        await publish(ch, 1, 2);
        const c = await client(t, user, format);
        const s = watch(c, ch, { getState });
        s.sub.subscribe();
        await waitUntil(() => s.subscribed.length === 1, 3000, 'subscribed');
        assert.equal(loads, 1);
        await publish(ch, 3, 3);
        await waitUntil(() => s.got.length === 1, 3000, 'live');

        // A short absence: history covers it, recovered without reloading.
        await reconnect(c, user, s, () => publish(ch, 4, 5));
        await waitUntil(() => s.got.length === 3, 3000, 'recovered');
        assert.deepEqual(s.got, [3, 4, 5]);
        assert.equal(s.subscribed[1]?.recovered, true);
        assert.equal(loads, 1);

        // A long one: 10 publications, `tiny` keeps 5. The subscribe is refused, getState runs
        // again, and the subscription comes back from the fresh position — never unrecovered.
        await reconnect(c, user, s, () => publish(ch, 6, 15));
        await waitUntil(() => loads === 2, 3000, 'state reloaded');
        assert.equal(s.subscribed.length, 3);
        assert.equal(s.subscribed[2]?.recovered, true, 'subscribed from the reloaded position');
        assert.ok(s.subscribed.every((x) => x.recovered !== false || !x.wasRecovering));
        await publish(ch, 16, 16);
        await waitUntil(() => s.got.includes(16), 3000, 'live after reload');
        assert.deepEqual(s.got, [3, 4, 5, 16], 'nothing from the lost stretch');
      });
    });
  }

  it('flag 2 refuses an unrecoverable subscribe with 112 and leaves nothing behind; without it, recovered: false', async () => {
    await publish('state:raw', 1, 1);
    const raw = await rawClient(srv.url);
    await raw.connect(await srv.token('raw'));
    const stale = { recover: true, offset: 1, epoch: 'another-epoch' };
    const r1 = await raw.call('subscribe', { channel: 'tiny:raw', ...stale, flag: 3 });
    assert.equal(r1.error?.code, 112);
    assert.equal(r1.error?.message, 'unrecoverable position');
    assert.equal(srv.node.hub.hasSubscribers('tiny:raw'), false, 'not subscribed');
    const r2 = await raw.call('subscribe', { channel: 'tiny:raw', ...stale });
    assert.equal(r2.error, undefined, 'no 105: the refused subscribe left nothing');
    assert.equal(r2.subscribe?.was_recovering, true);
    assert.equal(r2.subscribe?.recovered, undefined, 'recovered: false (omitted as false fields are)');
    // Cache mode: an empty channel cannot be recovered either.
    const r3 = await raw.call('subscribe', { channel: 'state:raw-empty', recover: true, flag: 2 });
    assert.equal(r3.error?.code, 112);
    // A subscribe that does not recover is never refused.
    const r4 = await raw.call('subscribe', { channel: 'state:raw-empty2', flag: 2 });
    assert.equal(r4.error, undefined);
    raw.close();
  });
}

describe('recovery modes (memory engine)', () => modes('memory'));
await describeRedis('recovery modes (Redis engine)', () => modes('redis'));
