/**
 * The client protocol end to end, driven by the real `centrifuge` SDK (v5): connect and
 * token refresh, subscriptions and publications, presence, history, join/leave, permission
 * errors, subscription tokens, RPC and send, server-side subscriptions, and the server API
 * acting on connected clients.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { Centrifuge, PublicationContext, Subscription } from 'centrifuge';
import { signConnectionToken, signSubscriptionToken } from '../src/auth/token-signer.js';
import { ProtocolError } from '../src/protocol/codes.js';
import {
  newCentrifuge,
  nextEvent,
  rawClient,
  sleep,
  startTestServer,
  waitUntil,
  type TestServer,
  connectedAs,
} from './helpers/server.js';

/** Errors the SDK rejects calls with. */
interface SdkError {
  code: number;
  message: string;
}

/** expectSdkError asserts `promise` rejects with protocol error `code`. */
async function expectSdkError(promise: Promise<unknown>, code: number): Promise<void> {
  await assert.rejects(promise, (err: SdkError) => {
    assert.equal(err.code, code, `expected error ${code}, got ${JSON.stringify(err)}`);
    return true;
  });
}

/** subscribed creates a subscription, subscribes and waits until it is subscribed. */
async function subscribed(
  client: Centrifuge,
  channel: string,
  opts: Parameters<Centrifuge['newSubscription']>[1] = {},
): Promise<Subscription> {
  const sub = client.newSubscription(channel, opts);
  const ready = nextEvent(sub, 'subscribed');
  sub.subscribe();
  await ready;
  return sub;
}

/** collect records a subscription's publications. */
function collect(sub: Subscription): PublicationContext[] {
  const out: PublicationContext[] = [];
  sub.on('publication', (ctx) => out.push(ctx));
  return out;
}

describe('client protocol with the centrifuge SDK', () => {
  let srv: TestServer;
  const messages: Array<{ data: unknown; user: string }> = [];

  before(async () => {
    srv = await startTestServer({ client: { expired_close_delay: '1500ms' } });
    srv.node.rpc('echo', (data, ctx) => ({ echo: data, user: ctx.user }));
    srv.node.rpc('fail', () => {
      throw new ProtocolError(4001, 'custom failure');
    });
    srv.node.onMessage((data, ctx) => {
      messages.push({ data, user: ctx.user });
    });
  });
  after(() => srv.close());

  const client = (t: TestContext, user: string, opts: Parameters<typeof connectedAs>[3] = {}) =>
    connectedAs(srv, t, user, opts);

  it('connects with a token; the server knows the user and the client id', async (t) => {
    const c = newCentrifuge(srv.url, { token: await srv.token('alice', { info: { name: 'Alice' } }) });
    t.after(() => c.disconnect());
    const ready = nextEvent(c, 'connected');
    c.connect();
    const ctx = await ready;
    assert.equal(c.state, 'connected');
    assert.equal(ctx.transport, 'websocket');
    const session = srv.node.hub.session(ctx.client);
    assert.ok(session, 'the server has a session with the client id of the connect reply');
    assert.equal(session.user, 'alice');
    assert.equal(session.connInfo, JSON.stringify({ name: 'Alice' }));
  });

  it('a bad token fails the connection with 3500 and the client does not reconnect', async (t) => {
    const wrongSecret = await signConnectionToken({ secret: 'not-the-server-secret', user: 'mallory' });
    for (const token of ['not-a-jwt', wrongSecret]) {
      const c = newCentrifuge(srv.url, { token });
      t.after(() => c.disconnect());
      let connecting = 0;
      c.on('connecting', () => connecting++);
      const gone = nextEvent(c, 'disconnected');
      c.connect();
      const ctx = await gone;
      assert.equal(ctx.code, 3500, `token ${token.slice(0, 12)}…: ${JSON.stringify(ctx)}`);
      await sleep(400); // longer than the client's largest reconnect delay (300 ms)
      assert.equal(c.state, 'disconnected');
      assert.equal(connecting, 1, 'one attempt, no reconnect');
    }
  });

  it('an already expired token is answered 109 and the client connects with getToken', async (t) => {
    let calls = 0;
    const c = await client(t, 'bob', {
      token: await srv.token('bob', { ttlSeconds: -10 }),
      getToken: async () => {
        calls++;
        return srv.token('bob', { ttlSeconds: 60 });
      },
    });
    assert.equal(c.state, 'connected');
    assert.equal(calls, 1);
  });

  it('a connection token about to expire is refreshed via getToken; the connection outlives expiry + grace', async (t) => {
    let calls = 0;
    let clientId = '';
    const c = newCentrifuge(srv.url, {
      token: await srv.token('carol', { ttlSeconds: 1 }),
      getToken: async () => {
        calls++;
        return srv.token('carol', { ttlSeconds: 60 });
      },
    });
    t.after(() => c.disconnect());
    let reconnects = 0;
    c.on('connecting', () => reconnects++);
    c.on('connected', (ctx) => (clientId ||= ctx.client));
    // Control: a raw connection with the same short token that never refreshes.
    const raw = await rawClient(srv.url);
    t.after(() => raw.close());
    const reply = await raw.connect(await srv.token('carol', { ttlSeconds: 1 }));
    assert.equal(reply.connect?.expires, true);
    assert.ok((reply.connect?.ttl ?? 0) >= 1 && (reply.connect?.ttl ?? 0) <= 2, JSON.stringify(reply));

    const started = Date.now();
    c.connect();
    await nextEvent(c, 'connected');
    await waitUntil(() => calls >= 1, 2500, 'getToken call');
    // Expiry is at most 1 s after signing; the grace is 1.5 s: wait past both.
    await sleep(Math.max(0, 2700 - (Date.now() - started)));
    assert.equal(c.state, 'connected');
    assert.equal(reconnects, 1, 'only the initial connect, no reconnect');
    const session = srv.node.hub.session(clientId);
    assert.ok(session, 'same session still there');
    assert.ok(session.expireAt > Date.now() + 50_000, 'expiry moved by the refreshed token');

    const closed = await raw.waitClose(500);
    assert.deepEqual(closed, { code: 3005, reason: 'connection expired' });
  });

  it('a client publication reaches every subscriber with the publisher info', async (t) => {
    const a = await client(t, 'alice');
    const b = await client(t, 'bob');
    const subA = await subscribed(a, 'chat:pub1');
    const subB = await subscribed(b, 'chat:pub1');
    const gotA = collect(subA);
    const gotB = collect(subB);
    await subA.publish({ text: 'hello' });
    await waitUntil(() => gotA.length === 1 && gotB.length === 1, 2000, 'publication on both');
    for (const got of [gotA, gotB]) {
      const p = got[0] as PublicationContext;
      assert.deepEqual(p.data, { text: 'hello' });
      assert.equal(p.info?.user, 'alice');
      assert.equal(p.offset, 1);
    }
  });

  it('a server API publication reaches subscribers with its offset and tags', async (t) => {
    const a = await client(t, 'alice');
    const sub = await subscribed(a, 'chat:api1');
    const got = collect(sub);
    const res = await srv.api('publish', { channel: 'chat:api1', data: { n: 1 }, tags: { k: 'v' } });
    assert.equal(res.status, 200);
    assert.equal(res.body.result.offset, 1);
    assert.equal(typeof res.body.result.epoch, 'string');
    await waitUntil(() => got.length === 1, 2000, 'publication');
    assert.deepEqual(got[0]?.data, { n: 1 });
    assert.equal(got[0]?.offset, 1);
    assert.deepEqual(got[0]?.tags, { k: 'v' });
    assert.equal(got[0]?.info, undefined, 'no publisher info for API publications');
  });

  it('presence and presence_stats list the subscribers', async (t) => {
    const a = await client(t, 'alice', { token: await srv.token('alice', { info: { hat: 'red' } }) });
    const b = await client(t, 'bob');
    const b2 = await client(t, 'bob');
    const subA = await subscribed(a, 'chat:presence1');
    await subscribed(b, 'chat:presence1');
    await subscribed(b2, 'chat:presence1');
    const presence = await subA.presence();
    const infos = Object.values(presence.clients);
    assert.equal(infos.length, 3);
    assert.deepEqual(infos.map((i) => i.user).sort(), ['alice', 'bob', 'bob']);
    assert.deepEqual(infos.find((i) => i.user === 'alice')?.connInfo, { hat: 'red' });
    assert.deepEqual(await subA.presenceStats(), { numClients: 3, numUsers: 2 });
    // The same through the client methods, and via the API.
    assert.deepEqual(await a.presenceStats('chat:presence1'), { numClients: 3, numUsers: 2 });
    const api = await srv.api('presence_stats', { channel: 'chat:presence1' });
    assert.deepEqual(api.body, { result: { num_clients: 3, num_users: 2 } });
    // Leaving removes the entry.
    b2.disconnect();
    await waitUntil(() => srv.node.hub.userSessions('bob').size === 1, 2000, 'bob2 gone');
    await sleep(20);
    assert.deepEqual(await subA.presenceStats(), { numClients: 2, numUsers: 2 });
  });

  it('history honours limit, reverse and since', async (t) => {
    const ch = 'chat:history1';
    for (let i = 1; i <= 10; i++) await srv.node.publish(ch, { i });
    const a = await client(t, 'alice');
    const sub = await subscribed(a, ch);
    const nums = (r: { publications: PublicationContext[] }) => r.publications.map((p) => (p.data as { i: number }).i);

    const top = await sub.history({ limit: 0 });
    assert.equal(top.publications.length, 0);
    assert.equal(top.offset, 10);
    assert.ok(top.epoch.length > 0);
    assert.deepEqual(nums(await sub.history({ limit: 3 })), [1, 2, 3]);
    assert.deepEqual(nums(await sub.history({ limit: 3, reverse: true })), [10, 9, 8]);
    assert.deepEqual(nums(await sub.history({ limit: 10, since: { offset: 5, epoch: top.epoch } })), [6, 7, 8, 9, 10]);
    assert.deepEqual(nums(await sub.history({ limit: 2, since: { offset: 5, epoch: top.epoch } })), [6, 7]);
    assert.deepEqual(
      nums(await sub.history({ limit: 10, since: { offset: 5, epoch: top.epoch }, reverse: true })),
      [4, 3, 2, 1],
    );
    assert.deepEqual(
      (await sub.history({ limit: 3 })).publications.map((p) => p.offset),
      [1, 2, 3],
    );
    // A position from another epoch cannot be continued: 112.
    await expectSdkError(sub.history({ limit: 10, since: { offset: 5, epoch: 'not-the-epoch' } }), 112);
    // History needs a subscription in chat (allow_history_for_subscriber only): 103.
    const b = await client(t, 'bob');
    await expectSdkError(b.history(ch, { limit: 1 }), 103);
  });

  it('join and leave events reach subscribers that asked for them', async (t) => {
    const a = await client(t, 'alice');
    const b = await client(t, 'bob');
    const subA = await subscribed(a, 'chat:joins1', { joinLeave: true });
    const join = nextEvent(subA, 'join');
    const subB = await subscribed(b, 'chat:joins1');
    const j = await join;
    assert.equal(j.info.user, 'bob');
    assert.equal(j.info.client, [...srv.node.hub.userSessions('bob')][0]?.id);
    const leave = nextEvent(subA, 'leave');
    subB.unsubscribe();
    const l = await leave;
    assert.equal(l.info.user, 'bob');
    assert.equal(l.info.client, j.info.client);
  });

  it('subscribing to a channel without permissions is refused with 103; publishing too', async (t) => {
    const a = await client(t, 'alice');
    const sub = a.newSubscription('locked:room');
    const unsub = nextEvent(sub, 'unsubscribed');
    sub.subscribe();
    const ctx = await unsub;
    assert.equal(ctx.code, 103);
    assert.equal(sub.state, 'unsubscribed');
    await expectSdkError(a.publish('locked:room', { x: 1 }), 103);
    // chat allows publishing to subscribers only.
    await expectSdkError(a.publish('chat:not-subscribed', { x: 1 }), 103);
    assert.equal(a.state, 'connected', 'errors do not cost the connection');
  });

  it('an unknown namespace is refused with 102', async (t) => {
    const a = await client(t, 'alice');
    const sub = a.newSubscription('nope:room');
    const unsub = nextEvent(sub, 'unsubscribed');
    sub.subscribe();
    assert.equal((await unsub).code, 102);
    await expectSdkError(a.publish('nope:room', {}), 102);
  });

  it('a private channel needs a valid subscription token', async (t) => {
    const a = await client(t, 'alice');
    const ch = '$chat:secret';

    // No token: 103.
    const noToken = a.newSubscription(ch);
    const refused = nextEvent(noToken, 'unsubscribed');
    noToken.subscribe();
    assert.equal((await refused).code, 103);
    a.removeSubscription(noToken);

    // A token signed with another key: 103.
    const forged = await signSubscriptionToken({ secret: 'not-the-secret', user: 'alice', channel: ch });
    const bad = a.newSubscription(ch, { token: forged });
    const refused2 = nextEvent(bad, 'unsubscribed');
    bad.subscribe();
    assert.equal((await refused2).code, 103);
    a.removeSubscription(bad);

    // An expired token: 109, the SDK gets a new one from getToken and subscribes.
    let calls = 0;
    const good = await subscribed(a, ch, {
      token: await srv.subToken('alice', ch, { ttlSeconds: -10 }),
      getToken: async () => {
        calls++;
        return srv.subToken('alice', ch, { ttlSeconds: 60, data: { welcome: true } });
      },
    });
    assert.equal(calls, 1);
    assert.equal(good.state, 'subscribed');
    const got = collect(good);
    await srv.node.publish(ch, { secret: 42 });
    await waitUntil(() => got.length === 1, 2000, 'private publication');
    assert.deepEqual(got[0]?.data, { secret: 42 });
    assert.equal(a.state, 'connected');
  });

  it('RPC reaches node.rpc handlers; unknown methods get 104, handler errors pass through', async (t) => {
    const a = await client(t, 'alice');
    const res = await a.rpc('echo', { x: 1 });
    assert.deepEqual(res.data, { echo: { x: 1 }, user: 'alice' });
    await expectSdkError(a.rpc('no.such.method', {}), 104);
    await expectSdkError(a.rpc('fail', {}), 4001);
    assert.equal(a.state, 'connected');
  });

  it('send reaches node.onMessage with the sender', async (t) => {
    const a = await client(t, 'alice');
    const before = messages.length;
    await a.send({ hello: 'server' });
    await waitUntil(() => messages.length === before + 1, 2000, 'onMessage');
    assert.deepEqual(messages[before], { data: { hello: 'server' }, user: 'alice' });
  });

  it("server-side subscriptions from the token's channels claim", async (t) => {
    const c = newCentrifuge(srv.url, { token: await srv.token('dave', { channels: ['news:alerts', 'chat:dave'] }) });
    t.after(() => c.disconnect());
    const subs = new Map<string, { recoverable: boolean }>();
    c.on('subscribed', (ctx) => subs.set(ctx.channel, ctx));
    const pubs: Array<{ channel: string; data: unknown }> = [];
    c.on('publication', (ctx) => pubs.push({ channel: ctx.channel, data: ctx.data }));
    c.connect();
    await nextEvent(c, 'connected');
    await waitUntil(() => subs.size === 2, 2000, 'two server-side subscriptions');
    assert.equal(subs.get('news:alerts')?.recoverable, false);
    assert.equal(subs.get('chat:dave')?.recoverable, true, 'chat forces recovery');
    await srv.api('publish', { channel: 'news:alerts', data: { alert: 1 } });
    await srv.api('publish', { channel: 'chat:dave', data: { dm: 1 } });
    await waitUntil(() => pubs.length === 2, 2000, 'server-side publications');
    assert.deepEqual(pubs, [
      { channel: 'news:alerts', data: { alert: 1 } },
      { channel: 'chat:dave', data: { dm: 1 } },
    ]);
  });

  it('API subscribe, unsubscribe, send, refresh and disconnect reach a connected client', async (t) => {
    const c = await client(t, 'erin');
    const other = await client(t, 'frank');

    // subscribe → 'subscribed' on the client, then its publications.
    const subd = nextEvent(c, 'subscribed', 2000, (ctx) => ctx.channel === 'news:srv');
    const sres = await srv.api('subscribe', { user: 'erin', channel: 'news:srv', data: { hi: 1 } });
    assert.deepEqual(sres.body, { result: {} });
    assert.deepEqual((await subd).data, { hi: 1 });
    const pub = nextEvent(c, 'publication', 2000, (ctx) => ctx.channel === 'news:srv');
    await srv.api('publish', { channel: 'news:srv', data: 'x' });
    assert.equal((await pub).data, 'x');

    // unsubscribe → 'unsubscribed'.
    const unsub = nextEvent(c, 'unsubscribed', 2000, (ctx) => ctx.channel === 'news:srv');
    await srv.api('unsubscribe', { user: 'erin', channel: 'news:srv' });
    await unsub;
    assert.equal(srv.node.hub.userSessions('erin').values().next().value?.subs.size, 0);

    // send → 'message'.
    const msg = nextEvent(c, 'message');
    await srv.api('send', { user: 'erin', data: { note: 'direct' } });
    assert.deepEqual((await msg).data, { note: 'direct' });

    // refresh with a new expiry: the session takes it, the client stays.
    const expireAt = Math.floor(Date.now() / 1000) + 3600;
    await srv.api('refresh', { user: 'erin', expire_at: expireAt });
    const session = [...srv.node.hub.userSessions('erin')][0];
    assert.equal(session?.expireAt, expireAt * 1000);
    await sleep(50);
    assert.equal(c.state, 'connected');

    // refresh expired → 3005, the client reconnects (its token has no expiry).
    const reconnecting = nextEvent(c, 'connecting');
    await srv.api('refresh', { user: 'erin', expired: true });
    assert.equal((await reconnecting).code, 3005);
    await nextEvent(c, 'connected');

    // disconnect with a terminal code → 'disconnected', no reconnect; others untouched.
    const gone = nextEvent(c, 'disconnected');
    await srv.api('disconnect', { user: 'erin', disconnect: { code: 4501, reason: 'banned' } });
    assert.deepEqual(await gone, { code: 4501, reason: 'banned' });
    await sleep(350);
    assert.equal(c.state, 'disconnected');
    assert.equal(other.state, 'connected');
  });

  it('the API refresh push is sent to the connection (raw view)', async (t) => {
    const raw = await rawClient(srv.url);
    t.after(() => raw.close());
    await raw.connect(await srv.token('gina'));
    const expireAt = Math.floor(Date.now() / 1000) + 100;
    await srv.api('refresh', { user: 'gina', expire_at: expireAt });
    const push = await raw.waitFor((m) => m.push?.refresh !== undefined);
    assert.equal(push.push?.refresh?.expires, true);
    assert.ok(Math.abs((push.push?.refresh?.ttl ?? 0) - 100) <= 1);
  });
});
