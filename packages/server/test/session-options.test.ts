import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { rawClient, startTestServer, type TestServer } from './helpers/server.js';

// Session behaviours that depend on options: token overrides, insecure mode, protocol order,
// sub-second pings, and join/leave ordering around a subscribe.
describe('session options', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ client: { ping_interval: '600ms', pong_timeout: '300ms' } });
  });
  after(() => srv.close());

  async function connectedRaw(t: TestContext, user: string) {
    const c = await rawClient(srv.url);
    t.after(() => c.close());
    const reply = await c.connect(await srv.token(user));
    assert.ok(reply.connect, JSON.stringify(reply));
    return { c, reply };
  }

  it('advertises a sub-second ping interval as 1 s, never 0 (which would mean "no pings")', async (t) => {
    const { reply } = await connectedRaw(t, 'pinger');
    assert.equal(reply.connect?.ping, 1);
    assert.equal(reply.connect?.pong, true);
  });

  it('an unknown command before connect closes with 3501, like any other', async (t) => {
    const c = await rawClient(srv.url);
    t.after(() => c.close());
    c.send({ id: 1, frobnicate: {} });
    assert.equal((await c.waitClose()).code, 3501);
  });

  it('a subscription token override turns presence off for that subscription', async (t) => {
    const { c } = await connectedRaw(t, 'ghost');
    const token = await srv.subToken('ghost', '$chat:hidden', { override: { presence: false } });
    const sub = await c.call('subscribe', { channel: '$chat:hidden', token });
    assert.ok(sub.subscribe, JSON.stringify(sub));
    const { c: other } = await connectedRaw(t, 'seer');
    const token2 = await srv.subToken('seer', '$chat:hidden');
    await other.call('subscribe', { channel: '$chat:hidden', token: token2 });
    const presence = await other.call('presence', { channel: '$chat:hidden' });
    const users = Object.values(presence.presence?.presence ?? {}).map((i) => i.user);
    assert.deepEqual(users, ['seer'], 'the overridden subscription is not in presence');
  });

  it('delivers a join that happens during a subscribe after the subscribe reply, not never', async (t) => {
    const { c: watcher } = await connectedRaw(t, 'watcher');
    watcher.send({ id: 100, subscribe: { channel: 'chat:joins', join_leave: true } });
    // The second client joins while the watcher's subscribe may still be in flight.
    const { c: joiner } = await connectedRaw(t, 'joiner');
    await joiner.call('subscribe', { channel: 'chat:joins' });
    const reply = await watcher.waitFor((m) => m.id === 100);
    assert.ok(reply.subscribe, JSON.stringify(reply));
    // Its own join comes too (as in Centrifugo); the joiner's must not be lost.
    const join = await watcher.waitFor((m) => m.push?.join?.info.user === 'joiner', 2000, 'join push of joiner');
    assert.equal(join.push?.channel, 'chat:joins');
  });
});

describe('insecure mode', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ client: { insecure: true } });
  });
  after(() => srv.close());

  it('accepts connections without a token and lifts channel permission checks', async (t) => {
    const c = await rawClient(srv.url);
    t.after(() => c.close());
    const reply = await c.connect();
    assert.ok(reply.connect?.client, JSON.stringify(reply));
    // `locked` grants nothing to clients; insecure mode lets a demo use it anyway.
    const sub = await c.call('subscribe', { channel: 'locked:room' });
    assert.ok(sub.subscribe, JSON.stringify(sub));
    const pub = await c.call('publish', { channel: 'locked:room', data: { hi: 1 } });
    assert.deepEqual(pub.publish, {});
  });
});
