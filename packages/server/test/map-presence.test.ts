/**
 * Map presence with the real `centrifuge` SDK (`newMapClientsSubscription`,
 * `newMapUsersSubscription`): subscribers of a game channel listed by connection and by user in
 * map channels a lobby screen subscribes to — joins and leaves live, one entry per user however
 * many connections, a user's entry expiring key_ttl after their last connection left while the
 * entries of those still there are refreshed without deliveries; a cursor map that drops a
 * client's key when it unsubscribes; and the config refusing a prefix that names no map presence
 * namespace.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Centrifuge, MapSubscription, MapUpdateContext } from 'centrifuge';
import { loadConfig } from '../src/config/load.js';
import type { ConfigInput } from '../src/config/schema.js';
import { nextEvent, newCentrifuge, sleep, startTestServer, waitUntil, type TestServer } from './helpers/server.js';

type Namespaces = NonNullable<NonNullable<ConfigInput['channel']>['namespaces']>;

const namespaces: Namespaces = [
  {
    name: 'game',
    allow_subscribe_for_client: true,
    map_clients_presence_channel_prefix: 'clients:',
    map_users_presence_channel_prefix: 'users:',
  },
  { name: 'clients', subscription_type: 'map_clients', allow_subscribe_for_client: true, map: { mode: 'durable' } },
  {
    name: 'users',
    subscription_type: 'map_users',
    allow_subscribe_for_client: true,
    map: { mode: 'durable', key_ttl: '600ms' },
  },
  {
    name: 'cursors',
    subscription_type: 'map',
    allow_subscribe_for_client: true,
    map: {
      mode: 'ephemeral',
      allow_publish_for_subscriber: true,
      client_key: 'client_id',
      remove_client_on_unsubscribe: true,
    },
  },
];

/** Keys is the key set a map subscriber holds, with how many updates it got. */
class Keys {
  readonly keys = new Set<string>();
  updates = 0;
  constructor(sub: MapSubscription) {
    sub.on('sync', (ctx) => {
      this.keys.clear();
      for (const e of ctx.entries) this.keys.add(e.key);
    });
    sub.on('update', (ctx: MapUpdateContext) => {
      this.updates++;
      if (ctx.removed) this.keys.delete(ctx.key);
      else this.keys.add(ctx.key);
    });
  }
}

describe('map presence', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ client: { presence_update_interval: '150ms' }, channel: { namespaces } });
  });
  after(() => srv.close());

  async function client(user: string): Promise<{ c: Centrifuge; id: string }> {
    const c = newCentrifuge(srv.url, { token: await srv.token(user) });
    const up = nextEvent(c, 'connected');
    c.connect();
    return { c, id: (await up).client };
  }

  async function mapSub(c: Centrifuge, kind: 'clients' | 'users', channel: string): Promise<Keys> {
    const sub = kind === 'clients' ? c.newMapClientsSubscription(channel) : c.newMapUsersSubscription(channel);
    const keys = new Keys(sub);
    const synced = nextEvent(sub, 'sync');
    sub.subscribe();
    await synced;
    return keys;
  }

  async function join(c: Centrifuge, channel: string) {
    const sub = c.newSubscription(channel);
    const done = nextEvent(sub, 'subscribed');
    sub.subscribe();
    await done;
    return sub;
  }

  it('lists subscribers by connection and by user, live', async () => {
    const { c: lobby } = await client('lobby-screen');
    const clients = await mapSub(lobby, 'clients', 'clients:game:1');
    const users = await mapSub(lobby, 'users', 'users:game:1');
    const a1 = await client('alice');
    const a2 = await client('alice');
    const b = await client('bob');
    const subA1 = await join(a1.c, 'game:1');
    await join(a2.c, 'game:1');
    await join(b.c, 'game:1');
    await waitUntil(() => clients.keys.size === 3 && users.keys.size === 2, 3000, 'three connections, two users');
    assert.deepEqual([...clients.keys].sort(), [a1.id, a2.id, b.id].sort());
    assert.deepEqual([...users.keys].sort(), ['alice', 'bob']);

    // While nobody comes or goes, the refreshes (every 150 ms) deliver nothing.
    const quiet = clients.updates + users.updates;
    await sleep(700);
    assert.equal(clients.updates + users.updates, quiet, 'refreshes cost no deliveries');
    assert.ok(users.keys.has('alice') && users.keys.has('bob'), 'refreshed entries outlive key_ttl');

    // One of alice's connections leaves: she stays listed as a user.
    subA1.unsubscribe();
    await waitUntil(() => clients.keys.size === 2, 3000, 'a1 gone');
    assert.equal(clients.keys.has(a1.id), false);
    b.c.disconnect();
    await waitUntil(() => clients.keys.size === 1, 3000, 'bob gone');
    // bob's user entry expires key_ttl (600 ms) after his last connection left; alice's does not.
    await waitUntil(() => !users.keys.has('bob'), 3000, 'bob expired');
    assert.deepEqual([...users.keys], ['alice']);
  });

  it('removes a cursor when its client unsubscribes (remove_client_on_unsubscribe)', async () => {
    const { c: watcher } = await client('watcher');
    const sub = watcher.newMapSubscription('cursors:board');
    const keys = new Keys(sub);
    const synced = nextEvent(sub, 'sync');
    sub.subscribe();
    await synced;
    const mover = await client('mover');
    const ms = mover.c.newMapSubscription('cursors:board');
    const moverSynced = nextEvent(ms, 'sync');
    ms.subscribe();
    await moverSynced;
    await ms.publish('anything', { x: 3, y: 4 });
    await waitUntil(() => keys.keys.has(mover.id), 3000, 'cursor shown');
    ms.unsubscribe();
    await waitUntil(() => !keys.keys.has(mover.id), 1000, 'cursor removed at once, not after key_ttl');
  });

  it('refuses a presence prefix that names no map presence namespace', () => {
    const base = { client: { insecure: true }, http_api: { insecure: true } };
    assert.throws(
      () =>
        loadConfig({
          object: {
            ...base,
            channel: { namespaces: [{ name: 'game', map_clients_presence_channel_prefix: 'game:' }] },
          },
        }),
      /map_clients_presence_channel_prefix.*subscription_type map_clients/s,
    );
  });
});
