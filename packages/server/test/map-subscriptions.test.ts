/**
 * Map subscriptions end to end with the real `centrifuge` SDK (`newMapSubscription`), in its
 * JSON and Protobuf builds: a paged snapshot then live changes, a catch-up after a forced
 * disconnect with changes made meanwhile, key TTL expiry seen by subscribers, client writes
 * with the namespace's permissions and Bulwark's `client_key_mode: if_new` (exactly one of two
 * racing players takes a slot), cursor-style maps keyed by connection and removed on
 * unsubscribe, and the refusals (wrong subscription type, missing key, key limits).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Centrifuge, MapSubscription, MapUpdateContext } from 'centrifuge';
import type { ConfigInput } from '../src/config/schema.js';
import { ErrorCode } from '../src/protocol/codes.js';
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

type ConfigNamespaces = NonNullable<NonNullable<ConfigInput['channel']>['namespaces']>;

const namespaces: ConfigNamespaces = [
  {
    name: 'lobby',
    subscription_type: 'map',
    allow_subscribe_for_client: true,
    map: {
      mode: 'durable',
      key_ttl: '60s',
      allow_publish_for_subscriber: true,
      allow_remove_for_subscriber: true,
      client_key_mode: 'if_new',
      client_owned_keys: true,
      default_page_size: 3,
      min_page_size: 1,
      max_keys: 8,
      max_key_length: 16,
    },
  },
  {
    name: 'board',
    subscription_type: 'map',
    allow_subscribe_for_client: true,
    map: { mode: 'persistent', min_page_size: 1, default_page_size: 4, live_transition_max_publication_limit: 2 },
  },
  {
    name: 'cursors',
    subscription_type: 'map',
    allow_subscribe_for_client: true,
    map: {
      mode: 'ephemeral',
      key_ttl: '400ms',
      allow_publish_for_subscriber: true,
      client_key: 'client_id',
      remove_client_on_unsubscribe: true,
      min_page_size: 1,
      default_page_size: 2,
    },
  },
];

const enc = new TextEncoder();
const dec = new TextDecoder();

/** value is a payload as the app sees it: the SDK's Protobuf build hands over bytes (JSON text here). */
function value(format: Format, data: unknown): unknown {
  return format === 'protobuf' ? (JSON.parse(dec.decode(data as Uint8Array)) as unknown) : data;
}

/** payload is what the app passes to the SDK for `v`: bytes in the Protobuf build. */
function payload(format: Format, v: unknown): unknown {
  return format === 'protobuf' ? enc.encode(JSON.stringify(v)) : v;
}

/** Mirror is what a map subscriber holds: its `sync` snapshot with every `update` applied. */
class Mirror {
  readonly map = new Map<string, unknown>();
  syncs = 0;
  updates = 0;

  constructor(sub: MapSubscription, format: Format) {
    sub.on('sync', (ctx) => {
      this.syncs++;
      this.map.clear();
      for (const e of ctx.entries) this.map.set(e.key, value(format, e.data));
    });
    sub.on('update', (ctx: MapUpdateContext) => {
      this.updates++;
      if (ctx.removed) this.map.delete(ctx.key);
      else this.map.set(ctx.key, value(format, ctx.data));
    });
  }

  toObject(): Record<string, unknown> {
    return Object.fromEntries([...this.map.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
  }
}

/** serverState reads the whole map through the API (map_read_state, paged). */
async function serverState(srv: TestServer, channel: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  let cursor = '';
  do {
    const r = await srv.api('map_read_state', { channel, cursor, limit: 2 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    for (const p of r.body.result.publications as Array<{ key: string; data: unknown }>) out[p.key] = p.data;
    cursor = r.body.result.cursor ?? '';
  } while (cursor !== '');
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

async function clientOf(srv: TestServer, user: string, format: Format): Promise<Centrifuge> {
  const c = newCentrifuge(srv.url, { token: await srv.token(user) }, format);
  const up = nextEvent(c, 'connected');
  c.connect();
  await up;
  return c;
}

for (const format of ['json', 'protobuf'] as const) {
  describe(`map subscriptions (${format})`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startTestServer({ channel: { namespaces } });
    });
    after(() => srv.close());

    it('delivers a paged snapshot, then live sets and removals', async () => {
      const ch = `board:snap-${format}`;
      for (let i = 0; i < 10; i++) {
        const r = await srv.api('map_publish', { channel: ch, key: `post-${i}`, data: { text: `post ${i}` } });
        assert.equal(r.status, 200);
        assert.ok(r.body.result.offset > 0, JSON.stringify(r.body));
      }
      const c = await clientOf(srv, 'reader', format);
      const sub = c.newMapSubscription(ch);
      const mirror = new Mirror(sub, format);
      const synced = nextEvent(sub, 'sync');
      sub.subscribe();
      await synced;
      assert.equal(mirror.map.size, 10);
      await srv.api('map_publish', { channel: ch, key: 'post-3', data: { text: 'edited' } });
      await srv.api('map_remove', { channel: ch, key: 'post-4' });
      await srv.api('map_publish', { channel: ch, key: 'post-99', data: { text: 'new' } });
      await waitUntil(() => mirror.updates >= 3, 3000, 'three updates');
      assert.deepEqual(mirror.toObject(), await serverState(srv, ch));
      assert.deepEqual(mirror.map.get('post-3'), { text: 'edited' });
      assert.equal(mirror.map.has('post-4'), false);
    });

    it('converges when writes race the snapshot pages', async () => {
      const ch = `board:race-${format}`;
      for (let i = 0; i < 20; i++) await srv.api('map_publish', { channel: ch, key: `k${i}`, data: i });
      const c = await clientOf(srv, 'racer', format);
      const sub = c.newMapSubscription(ch, { pageSize: 2 });
      const mirror = new Mirror(sub, format);
      let writing = true;
      const writer = (async () => {
        for (let n = 0; writing; n++) {
          const key = `k${n % 25}`;
          if (n % 4 === 3) await srv.api('map_remove', { channel: ch, key });
          else await srv.api('map_publish', { channel: ch, key, data: n });
        }
      })();
      const synced = nextEvent(sub, 'sync', 5000);
      sub.subscribe();
      await synced;
      writing = false;
      await writer;
      const expected = await serverState(srv, ch);
      await waitUntil(
        () => JSON.stringify(mirror.toObject()) === JSON.stringify(expected),
        3000,
        'mirror equals server',
      );
    });

    it('catches up after a forced disconnect with the changes made meanwhile', async () => {
      const ch = `board:recover-${format}`;
      for (let i = 0; i < 5; i++) await srv.api('map_publish', { channel: ch, key: `p${i}`, data: i });
      const c = await clientOf(srv, 'recoverer', format);
      const sub = c.newMapSubscription(ch);
      const mirror = new Mirror(sub, format);
      const synced = nextEvent(sub, 'sync');
      sub.subscribe();
      await synced;
      const resubscribed = nextEvent(sub, 'subscribed', 5000, (ctx) => ctx.wasRecovering);
      await srv.api('disconnect', { user: 'recoverer', disconnect: { code: 3011, reason: 'force reconnect' } });
      // Force a reconnect: the change below lands while the client is away.
      await srv.api('map_publish', { channel: ch, key: 'p1', data: 'changed while away' });
      await srv.api('map_remove', { channel: ch, key: 'p2' });
      const ctx = await resubscribed;
      assert.equal(ctx.recovered, true);
      await waitUntil(() => mirror.map.get('p1') === 'changed while away' && !mirror.map.has('p2'), 3000, 'caught up');
      assert.equal(mirror.syncs, 1, 'recovered by updates, not a second snapshot');
      assert.deepEqual(mirror.toObject(), await serverState(srv, ch));
    });

    it('removes expired keys from every subscriber (key_ttl)', async () => {
      const ch = `cursors:ttl-${format}`;
      const c = await clientOf(srv, 'mover', format);
      const sub = c.newMapSubscription(ch);
      const mirror = new Mirror(sub, format);
      const synced = nextEvent(sub, 'sync');
      sub.subscribe();
      await synced;
      await sub.publish('ignored', payload(format, { x: 1, y: 2 }));
      await waitUntil(() => mirror.map.size === 1, 3000, 'own cursor');
      const [key] = [...mirror.map.keys()];
      assert.equal(key, await srvClientId(srv, 'mover'), 'keyed by connection id, whatever key the client sent');
      await waitUntil(() => mirror.map.size === 0, 3000, 'cursor expired');
      assert.equal(mirror.updates, 2);
    });

    it('lets exactly one of two racing players take the last slot (client_key_mode if_new)', async () => {
      const ch = `lobby:slots-${format}`;
      const a = await clientOf(srv, 'alice', format);
      const b = await clientOf(srv, 'bob', format);
      const sa = a.newMapSubscription(ch);
      const sb = b.newMapSubscription(ch);
      for (const s of [sa, sb]) {
        const synced = nextEvent(s, 'sync');
        s.subscribe();
        await synced;
      }
      const results = await Promise.allSettled([
        sa.publish('slot-4', payload(format, { player: 'alice' })),
        sb.publish('slot-4', payload(format, { player: 'bob' })),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      assert.equal(won.length, 1);
      assert.equal(lost.length, 1);
      assert.equal((lost[0] as PromiseRejectedResult).reason.code, ErrorCode.Conflict);
      const state = await serverState(srv, ch);
      const holder = (state['slot-4'] as { player: string }).player;
      assert.ok(['alice', 'bob'].includes(holder));
      // client_owned_keys: the loser cannot kick the winner out; the winner can leave.
      const [winner, loser] = holder === 'alice' ? [sa, sb] : [sb, sa];
      await assert.rejects(loser.remove('slot-4'), (err: { code: number }) => err.code === ErrorCode.PermissionDenied);
      assert.ok('slot-4' in (await serverState(srv, ch)));
      await winner.remove('slot-4');
      assert.equal('slot-4' in (await serverState(srv, ch)), false);
    });
  });
}

/** srvClientId is the connection id of `user`'s one connection, from the node's hub. */
async function srvClientId(srv: TestServer, user: string): Promise<string> {
  await sleep(0);
  for (const s of srv.node.hub.sessions()) if (s.user === user) return s.id;
  return '';
}

describe('map subscriptions: refusals and limits', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ channel: { namespaces } });
  });
  after(() => srv.close());

  it('refuses a stream subscribe to a map channel, and a map subscribe to a stream channel (107)', async () => {
    const c = await rawClient(srv.url);
    await c.connect(await srv.token('u'));
    const stream = await c.call('subscribe', { channel: 'board:x' });
    assert.equal(stream.error?.code, ErrorCode.BadRequest);
    const map = await c.call('subscribe', { channel: 'chat:x', type: 1, phase: 2 });
    assert.equal(map.error?.code, ErrorCode.BadRequest);
    c.close();
  });

  it('tells a token subscription its expiry and data in the live reply', async () => {
    const c = await rawClient(srv.url);
    await c.connect(await srv.token('tok'));
    const token = await srv.subToken('tok', 'cursors:tok', { ttlSeconds: 60, data: { seat: 3 } });
    const live = await c.call('subscribe', { channel: 'cursors:tok', type: 1, phase: 2, token });
    assert.equal(live.error, undefined, JSON.stringify(live));
    const r = live.subscribe as { expires?: boolean; ttl?: number; data?: unknown; phase?: number };
    assert.equal(r.phase, undefined, 'an ephemeral map goes live on its last state page');
    assert.equal(r.expires, true);
    assert.ok((r.ttl ?? 0) > 50 && (r.ttl ?? 0) <= 60);
    assert.deepEqual(r.data, { seat: 3 });
    c.close();
  });

  it('refuses keys that are missing or too long, and writes beyond max_keys', async () => {
    const long = await srv.api('map_publish', { channel: 'lobby:lim', key: 'k'.repeat(17), data: 1 });
    assert.equal(long.body.error?.code, ErrorCode.BadRequest);
    const missing = await srv.api('map_publish', { channel: 'lobby:lim', data: 1 });
    assert.equal(missing.body.error?.code, ErrorCode.BadRequest);
    for (let i = 0; i < 8; i++)
      assert.equal((await srv.api('map_publish', { channel: 'lobby:lim', key: `k${i}`, data: i })).status, 200);
    const over = await srv.api('map_publish', { channel: 'lobby:lim', key: 'k8', data: 8 });
    assert.equal(over.body.error?.code, ErrorCode.LimitExceeded);
    const update = await srv.api('map_publish', { channel: 'lobby:lim', key: 'k0', data: 'still fits' });
    assert.equal(update.status, 200);
    assert.equal((await srv.api('map_stats', { channel: 'lobby:lim' })).body.result.num_keys, 8);
  });

  it('counts a client removal of a missing key as suppressed, not as an applied write', async () => {
    const series = async (prefix: string): Promise<number> => {
      const text = await (await fetch(`${srv.httpUrl}/metrics`)).text();
      return text
        .split('\n')
        .filter((l) => l.startsWith(prefix))
        .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    };
    const removes = () => series('bulwark_map_writes_total{op="remove",from="client"');
    const notFound = () => series('bulwark_map_writes_suppressed_total{reason="key_not_found"');
    const c = await rawClient(srv.url);
    await c.connect(await srv.token('remover'));
    const state = await c.call('subscribe', { channel: 'lobby:count', type: 1, phase: 2 });
    const { offset, epoch } = state.subscribe as { offset?: number; epoch: string };
    const live = await c.call('subscribe', { channel: 'lobby:count', type: 1, phase: 1, offset: offset ?? 0, epoch });
    assert.equal(live.error, undefined);
    const [removes0, notFound0] = [await removes(), await notFound()];
    assert.equal(
      (await c.call('publish', { channel: 'lobby:count', type: 1, key: 'slot-1', data: 1 })).error,
      undefined,
    );
    const remove = { channel: 'lobby:count', type: 1, key: 'slot-1', removed: true };
    assert.equal((await c.call('publish', remove)).error, undefined);
    assert.equal((await c.call('publish', remove)).error, undefined, 'a missing key is removed without an error');
    assert.equal((await removes()) - removes0, 1);
    assert.equal((await notFound()) - notFound0, 1);
    c.close();
  });

  it('answers a conditional API write that loses with suppressed and the position', async () => {
    await srv.api('map_publish', { channel: 'board:cas', key: 'a', data: 1 });
    const taken = await srv.api('map_publish', { channel: 'board:cas', key: 'a', data: 2, key_mode: 'if_new' });
    assert.equal(taken.body.result.suppressed, true);
    assert.equal(taken.body.result.suppress_reason, 'key_exists');
    const pos = taken.body.result as { offset: number; epoch: string };
    const stale = await srv.api('map_publish', {
      channel: 'board:cas',
      key: 'b',
      data: 1,
      expected_position: { offset: pos.offset - 1, epoch: pos.epoch },
    });
    assert.equal(stale.body.result.suppress_reason, 'position_mismatch');
    const fresh = await srv.api('map_publish', { channel: 'board:cas', key: 'b', data: 1, expected_position: pos });
    assert.equal(fresh.body.result.suppressed, undefined);
    assert.equal(fresh.body.result.offset, pos.offset + 1);
    const api = await srv.api('publish', { channel: 'board:cas', data: 1 });
    assert.equal(api.body.error?.code, ErrorCode.BadRequest, 'a keyless publish to a map channel is refused');
  });
});
