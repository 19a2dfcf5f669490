/**
 * Shared poll subscriptions (docs/SHARED_POLL.md) with the real `centrifuge` SDK, over real
 * sockets, in both formats: track → initial items → a backend change arrives with a new
 * version; untrack stops updates; a removed item reaches its trackers; a bad signature is
 * refused with 103 and too many keys with 106; a wrong subscription type with 107. The
 * backend is a counting origin answering the refresh proxy from a table the test changes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SharedPollSubscription } from 'centrifuge';
import { signTrackSignature } from '../src/auth/shared-poll-signature.js';
import { OriginServer, type OriginRequest } from './helpers/origin.js';
import { newCentrifuge, nextEvent, sleep, startTestServer, waitUntil, type TestServer } from './helpers/server.js';

/** Update is an `update` event as the test keeps it: data decoded to JSON in both formats. */
interface Update {
  key: string;
  data: unknown;
  version?: number;
  removed?: boolean;
}

/** Backend is the game's item table the refresh proxy answers from. */
export class Backend {
  readonly values = new Map<string, unknown>();
  readonly removed = new Set<string>();

  answer = (req: OriginRequest): { body: unknown } => {
    const body = req.body as { items: Array<{ key: string }> };
    const items = body.items.flatMap(({ key }): object[] => {
      if (this.removed.has(key)) return [{ key, removed: true }];
      return this.values.has(key) ? [{ key, data: this.values.get(key) }] : [];
    });
    return { body: { result: { items } } };
  };
}

function decode(data: unknown): unknown {
  if (data instanceof Uint8Array) return JSON.parse(new TextDecoder().decode(data));
  return data;
}

const channel = 'votes:feed';

for (const format of ['json', 'protobuf'] as const) {
  describe(`shared poll subscription (${format})`, () => {
    let srv: TestServer;
    let origin: OriginServer;
    const backend = new Backend();
    const pollSecret = 'poll-secret-for-tests';

    before(async () => {
      origin = await OriginServer.start();
      origin.route('/refresh', backend.answer);
      srv = await startTestServer({
        shared_poll: { hmac_secret_key: pollSecret },
        channel: {
          proxy: { shared_poll_refresh: { endpoint: `${origin.url}/refresh`, timeout: '1s' } },
          namespaces: [
            {
              name: 'votes',
              subscription_type: 'shared_poll',
              allow_subscribe_for_client: true,
              shared_poll: { refresh_interval: '200ms', max_keys_per_connection: 3 },
            },
          ],
        },
      });
    });
    after(async () => {
      await srv.close();
      await origin.close();
    });

    async function subscribed(user: string): Promise<{ sub: SharedPollSubscription; updates: Update[] }> {
      const client = newCentrifuge(srv.url, { token: await srv.token(user) }, format);
      client.connect();
      const sub = client.newSharedPollSubscription(channel, {
        getSignature: (ctx) =>
          Promise.resolve({ keys: ctx.keys, signature: signTrackSignature(pollSecret, user, channel, ctx.keys, 60) }),
      });
      const updates: Update[] = [];
      sub.on('update', (ctx) => updates.push({ ...ctx, data: ctx.removed ? null : decode(ctx.data) }));
      const ready = nextEvent(sub, 'subscribed');
      sub.subscribe();
      await ready;
      return { sub, updates };
    }

    it('tracks items, gets their values, then only changes, until untracked or removed', async () => {
      backend.values.set('p1', { votes: 1 });
      backend.values.set('p2', { votes: 7 });
      const { sub, updates } = await subscribed('alice');
      sub.track(['p1', 'p2']);
      await waitUntil(() => updates.length >= 2, 3000, 'initial items');
      const byKey = (k: string) => updates.filter((u) => u.key === k);
      assert.deepEqual(byKey('p1')[0]?.data, { votes: 1 });
      assert.deepEqual(byKey('p2')[0]?.data, { votes: 7 });
      const v1 = byKey('p1')[0]?.version ?? 0;
      assert.ok(v1 > 0, 'a version comes with the item');

      // Unchanged items send nothing.
      await sleep(500);
      assert.equal(updates.length, 2);

      backend.values.set('p1', { votes: 2 });
      await waitUntil(() => byKey('p1').length === 2, 3000, 'changed item');
      assert.deepEqual(byKey('p1')[1]?.data, { votes: 2 });
      assert.ok((byKey('p1')[1]?.version ?? 0) > v1, 'a change has a newer version');

      sub.untrack(['p2']);
      await sleep(100);
      backend.values.set('p2', { votes: 8 });
      await sleep(600);
      assert.equal(byKey('p2').length, 1, 'no update for an untracked key');

      backend.removed.add('p1');
      await waitUntil(() => byKey('p1').some((u) => u.removed === true), 3000, 'removal');
      backend.removed.delete('p1');
      sub.unsubscribe();
    });

    it('refuses a bad signature with 103 and more keys than max_keys_per_connection with 106', async () => {
      backend.values.set('q1', 1);
      const { sub, updates } = await subscribed('bob');
      const forged = signTrackSignature('not-the-secret', 'bob', channel, ['q1'], 60);
      const bad = nextEvent(sub, 'error', 3000, (e) => e.type === 'track');
      sub.track([{ key: 'q1', version: 0 }], forged);
      assert.equal((await bad).error.code, 103);
      // Someone else's signature is no good either.
      const stolen = signTrackSignature(pollSecret, 'alice', channel, ['q1'], 60);
      const bad2 = nextEvent(sub, 'error', 3000, (e) => e.type === 'track');
      sub.track([{ key: 'q1', version: 0 }], stolen);
      assert.equal((await bad2).error.code, 103);

      const keys = ['k1', 'k2', 'k3', 'k4'];
      const limit = nextEvent(sub, 'error', 3000, (e) => e.type === 'track');
      sub.track(
        keys.map((key) => ({ key, version: 0 })),
        signTrackSignature(pollSecret, 'bob', channel, keys, 60),
      );
      assert.equal((await limit).error.code, 106);
      assert.equal(updates.filter((u) => !u.removed).length, 0);
      sub.unsubscribe();
    });

    it('refuses a stream subscribe to a shared_poll namespace with 107', async () => {
      const client = newCentrifuge(srv.url, { token: await srv.token('carol') }, format);
      client.connect();
      const sub = client.newSubscription(channel);
      const failed = nextEvent(sub, 'unsubscribed');
      sub.subscribe();
      assert.equal((await failed).code, 107);
    });
  });
}

describe('shared poll with a backend down or slow', () => {
  it('keeps the last data, backs off instead of retrying, shows the stale state, recovers', async () => {
    const origin = await OriginServer.start();
    const backend = new Backend();
    origin.route('/refresh', backend.answer);
    const pollSecret = 'another-poll-secret';
    const srv = await startTestServer({
      shared_poll: { hmac_secret_key: pollSecret },
      channel: {
        proxy: { shared_poll_refresh: { endpoint: `${origin.url}/refresh`, timeout: '300ms' } },
        namespaces: [
          {
            name: 'votes',
            subscription_type: 'shared_poll',
            allow_subscribe_for_client: true,
            shared_poll: { refresh_interval: '200ms', refresh_interval_max: '800ms' },
          },
        ],
      },
    });
    try {
      const stale = async (): Promise<number> => {
        const m = await srv.node.metrics.registry.getSingleMetric('bulwark_shared_poll_stale_channels')?.get();
        return m?.values[0]?.value ?? 0;
      };
      backend.values.set('s1', 'first');
      const client = newCentrifuge(srv.url, { token: await srv.token('dave') });
      client.connect();
      const sub = client.newSharedPollSubscription(channel, {
        getSignature: (ctx) =>
          Promise.resolve({ keys: ctx.keys, signature: signTrackSignature(pollSecret, 'dave', channel, ctx.keys, 60) }),
      });
      const updates: Update[] = [];
      sub.on('update', (ctx) => updates.push(ctx));
      sub.subscribe();
      sub.track(['s1']);
      await waitUntil(() => updates.length === 1, 3000, 'initial item');

      // Down: 500s. Without backoff 3 s at 200 ms would be ~15 calls; backing off (400, 800,
      // 800 … ms) it is a handful.
      origin.failure = { status: 500 };
      origin.resetCounters();
      await sleep(3000);
      const downCalls = origin.callsTo('/refresh');
      assert.ok(downCalls >= 2 && downCalls <= 7, `${downCalls} calls in 3 s while the backend is down`);
      assert.equal(await stale(), 1, 'the channel shows as stale');
      assert.equal(updates.length, 1, 'clients keep the last data: no removal, no update');

      // Slow: answers after the proxy timeout count as failures too.
      origin.failure = undefined;
      origin.delayMs = 1000;
      origin.resetCounters();
      await sleep(2000);
      const slowCalls = origin.callsTo('/refresh');
      assert.ok(slowCalls <= 5, `${slowCalls} calls in 2 s while the backend is slow`);
      assert.ok(origin.maxInFlight <= 2, `${origin.maxInFlight} calls in flight at once`);

      // Back: the next cycle (within refresh_interval_max) brings the change; stale clears.
      origin.delayMs = 0;
      backend.values.set('s1', 'second');
      await waitUntil(() => updates.length === 2, 4000, 'update after recovery');
      assert.equal(updates[1]?.data, 'second');
      await waitUntil(() => updates.length === 2, 100);
      assert.equal(await stale(), 0, 'no longer stale');
      sub.unsubscribe();
    } finally {
      await srv.close();
      await origin.close();
    }
  });
});

describe('shared poll cold keys', () => {
  it('fetches a key nobody has a value of once when first tracked on the node, not per track', async () => {
    const origin = await OriginServer.start();
    const backend = new Backend();
    origin.route('/refresh', backend.answer);
    const pollSecret = 'cold-key-poll-secret';
    const srv = await startTestServer({
      shared_poll: { hmac_secret_key: pollSecret },
      channel: {
        proxy: { shared_poll_refresh: { endpoint: `${origin.url}/refresh`, timeout: '1s' } },
        namespaces: [
          {
            name: 'votes',
            subscription_type: 'shared_poll',
            allow_subscribe_for_client: true,
            // Long: only cold fetches reach the backend during the test.
            shared_poll: { refresh_interval: '60s' },
          },
        ],
      },
    });
    try {
      backend.values.set('known', 1);
      for (const user of ['u1', 'u2', 'u3']) {
        const client = newCentrifuge(srv.url, { token: await srv.token(user) });
        client.connect();
        const sub = client.newSharedPollSubscription(channel, {
          getSignature: (ctx) =>
            Promise.resolve({ keys: ctx.keys, signature: signTrackSignature(pollSecret, user, channel, ctx.keys, 60) }),
        });
        const updates: Update[] = [];
        sub.on('update', (ctx) => updates.push(ctx));
        const ready = nextEvent(sub, 'subscribed');
        sub.subscribe();
        await ready;
        // `ghost` is the slot of a post not written yet: the backend has no value for it.
        sub.track(['known', 'ghost']);
        await waitUntil(() => updates.length === 1, 3000, `${user}: the known item`);
        await sleep(100);
      }
      assert.equal(origin.callsTo('/refresh'), 1, 'one cold fetch, by the first tracker; the cycle asks later');
    } finally {
      await srv.close();
      await origin.close();
    }
  });
});
