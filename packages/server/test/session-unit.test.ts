/**
 * ClientSession driven through a fake SessionContext (helpers/fake-context.ts): no sockets,
 * no HTTP server. The engine, hub, config, permissions, rate limiter, metrics, wheel and
 * token verifier are the real ones; the transport records what the session writes. Also the
 * session's write queue and deadlines on their own, with tiny fakes.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { signConnectionToken } from '../src/auth/token-signer.js';
import { Deadlines, type DeadlineOwner } from '../src/client/deadlines.js';
import type { SubState } from '../src/client/subscriber.js';
import { TimerWheel } from '../src/client/timer-wheel.js';
import { WriteQueue, type WriteQueueOwner } from '../src/client/write-queue.js';
import type { HistoryQuery, HistoryResult } from '../src/engine/broker.js';
import { MemoryBroker } from '../src/engine/broker-memory.js';
import { DisconnectCode, ErrorCode } from '../src/protocol/codes.js';
import { asRaw, type Publication, type RawJSON, type StreamPosition } from '../src/protocol/types.js';
import type { ProxyTarget } from '../src/proxy/proxies.js';
import {
  FakeTransport,
  Gate,
  fakeNode,
  sleep,
  waitUntil,
  type FakeContextOptions,
  type FakeNode,
} from './helpers/fake-context.js';
import type { ServerMessage } from './helpers/server.js';

/** node builds a fake context closed after the test. */
async function node(t: TestContext, opts: FakeContextOptions = {}): Promise<FakeNode> {
  const fn = await fakeNode(opts);
  t.after(() => fn.close());
  return fn;
}

/** pub is a publication as the hub receives it from the broker. */
function pub(data: unknown, offset = 0): Publication {
  return { offset, data: asRaw(data) };
}

/** dataOf lists the data of publication pushes. */
function dataOf(msgs: ServerMessage[]): unknown[] {
  return msgs.map((m) => m.push?.pub?.data);
}

describe('ClientSession: connect', () => {
  it('a valid token gets a connect reply with the client id, ping/pong, node and version', async (t) => {
    const fn = await node(t);
    const c = fn.client();
    const reply = await c.connect(await fn.token('alice'));
    assert.ok(reply.connect, JSON.stringify(reply));
    assert.equal(reply.connect.client, c.session.id);
    assert.equal(reply.connect.ping, 25, 'client.ping_interval (25 s) in seconds');
    assert.equal(reply.connect.pong, true);
    assert.equal(reply.connect.node, fn.ctx.nodeId);
    assert.equal(reply.connect.version, fn.ctx.version);
    assert.equal(reply.connect.expires, undefined, 'a token without exp does not expire');
    assert.equal(c.session.state, 'connected');
    assert.equal(c.session.user, 'alice');
    assert.equal(fn.hub.session(c.session.id), c.session);
    assert.equal(fn.hub.userConnectionCount('alice'), 1);
    assert.deepEqual([...fn.hub.connecting()], [], 'no longer counted as connecting');
  });

  it('an expiring token gets expires and ttl in the connect reply', async (t) => {
    const fn = await node(t);
    const c = fn.client();
    const reply = await c.connect(await fn.token('bob', { ttlSeconds: 60 }));
    assert.equal(reply.connect?.expires, true, JSON.stringify(reply));
    const ttl = reply.connect?.ttl ?? 0;
    assert.ok(ttl >= 59 && ttl <= 60, `ttl ${ttl}`);
    assert.ok(Math.abs(c.session.expireAt - (Date.now() + 60_000)) < 2000, 'expireAt in ms since epoch');
  });

  it('a token that does not verify closes the connection with 3500 (invalid token)', async (t) => {
    const fn = await node(t);
    const c = fn.client();
    c.send({ id: 1, connect: { token: await signConnectionToken({ secret: 'not-the-secret', user: 'eve' }) } });
    const closed = await c.transport.waitClose();
    assert.equal(closed.code, DisconnectCode.InvalidToken);
    assert.equal(c.transport.messages.length, 0, 'no reply, only the close');
    assert.equal(c.session.state, 'closed');
    assert.equal(fn.hub.numClients, 0);
    assert.equal(await fn.counter('disconnects', { code: '3500' }), 1);
  });

  it('an expired token is answered 109 and the connection stays open for a new token', async (t) => {
    const fn = await node(t);
    const c = fn.client();
    const reply = await c.connect(await fn.token('carol', { ttlSeconds: -10 }));
    assert.equal(reply.error?.code, ErrorCode.TokenExpired, JSON.stringify(reply));
    assert.equal(c.transport.closes.length, 0);
    assert.equal(c.session.state, 'connecting');
    const again = await c.connect(await fn.token('carol'));
    assert.ok(again.connect, JSON.stringify(again));
  });

  it('no token and no anonymous access: 101 unauthorized', async (t) => {
    const fn = await node(t);
    const c = fn.client();
    const reply = await c.connect();
    assert.equal(reply.error?.code, ErrorCode.Unauthorized, JSON.stringify(reply));
    assert.equal(c.session.state, 'connecting');
  });

  it('a command before connect closes with 3501 (bad request), unanswered', async (t) => {
    const fn = await node(t);
    const c = fn.client();
    c.send({ id: 1, subscribe: { channel: 'news:a' } });
    assert.equal((await c.transport.waitClose()).code, DisconnectCode.BadRequest);
    assert.equal(c.transport.messages.length, 0);
    assert.equal(fn.hub.numSubs, 0);
  });

  it('a second connect closes with 3501', async (t) => {
    const fn = await node(t);
    const c = await fn.connected('dave');
    c.send({ id: 9, connect: { token: await fn.token('dave') } });
    assert.equal((await c.transport.waitClose()).code, DisconnectCode.BadRequest);
    assert.equal(fn.hub.numClients, 0, 'closing removed the session from the hub');
  });
});

describe('ClientSession: subscriptions', () => {
  it('subscribe replies, then publications broadcast through the hub arrive in order', async (t) => {
    const fn = await node(t);
    const c = await fn.connected('u');
    const reply = await c.call('subscribe', { channel: 'news:a' });
    assert.deepEqual(reply.subscribe, {}, JSON.stringify(reply));
    assert.equal(fn.hub.numSubs, 1);
    for (let i = 0; i < 5; i++) fn.hub.broadcastPublication('news:a', pub({ n: i }));
    await waitUntil(() => c.transport.pubs('news:a').length === 5, 1000, '5 publications');
    assert.deepEqual(
      dataOf(c.transport.pubs('news:a')),
      [0, 1, 2, 3, 4].map((n) => ({ n })),
    );
    const replyAt = c.transport.messages.indexOf(reply);
    assert.ok(c.transport.messages.indexOf(c.transport.pubs('news:a')[0] as ServerMessage) > replyAt);
  });

  it('recover: recovered true and exactly the missed publications, then live ones', async (t) => {
    const fn = await node(t);
    await fn.publish('chat:r', { n: 1 });
    const seen = await fn.publish('chat:r', { n: 2 });
    for (let n = 3; n <= 5; n++) await fn.publish('chat:r', { n });
    const c = await fn.connected('u');
    const reply = await c.call('subscribe', { channel: 'chat:r', recover: true, offset: 2, epoch: seen.epoch });
    const sub = reply.subscribe;
    assert.ok(sub, JSON.stringify(reply));
    assert.equal(sub.recovered, true);
    assert.equal(sub.was_recovering, true);
    assert.equal(sub.epoch, seen.epoch);
    assert.deepEqual(
      sub.publications?.map((p) => [p.offset, p.data]),
      [
        [3, { n: 3 }],
        [4, { n: 4 }],
        [5, { n: 5 }],
      ],
    );
    await fn.publish('chat:r', { n: 6 });
    await waitUntil(() => c.transport.pubs('chat:r').length === 1, 1000, 'live publication');
    assert.equal(c.transport.pubs('chat:r')[0]?.push?.pub?.offset, 6);
    assert.equal(await fn.counter('recoveries', { result: 'recovered' }), 1);
  });

  it('recover from another epoch: not recovered, no publications, the current position', async (t) => {
    const fn = await node(t);
    for (let n = 1; n <= 3; n++) await fn.publish('chat:e', { n });
    const c = await fn.connected('u');
    const reply = await c.call('subscribe', { channel: 'chat:e', recover: true, offset: 1, epoch: 'gone' });
    assert.equal(reply.subscribe?.was_recovering, true, JSON.stringify(reply));
    assert.equal(reply.subscribe?.recovered, undefined, 'not recovered (false is omitted on the wire)');
    assert.equal(reply.subscribe?.publications, undefined);
    assert.notEqual(reply.subscribe?.epoch, 'gone');
    assert.equal(reply.subscribe?.offset, 3);
  });

  it('unsubscribe replies, the hub forgets the subscription, and publications stop', async (t) => {
    const fn = await node(t);
    const c = await fn.connected('u');
    await c.call('subscribe', { channel: 'news:u' });
    assert.equal(fn.hub.hasSubscribers('news:u'), true);
    const reply = await c.call('unsubscribe', { channel: 'news:u' });
    assert.deepEqual(reply.unsubscribe, {}, JSON.stringify(reply));
    assert.equal(fn.hub.numSubs, 0);
    assert.equal(fn.hub.hasSubscribers('news:u'), false);
    assert.equal(c.session.subs.size, 0);
    assert.equal(fn.hub.broadcastPublication('news:u', pub('late')), 0);
    // The broker too stopped delivering the channel to this node: a publish reaches no one.
    await fn.publish('news:u', 'later');
    await sleep(5);
    assert.equal(c.transport.pubs('news:u').length, 0);
  });

  it('subscribe to a namespace without allow_subscribe_for_client is answered 103', async (t) => {
    const fn = await node(t);
    const c = await fn.connected('u');
    const reply = await c.call('subscribe', { channel: 'locked:room' });
    assert.equal(reply.error?.code, ErrorCode.PermissionDenied, JSON.stringify(reply));
    assert.equal(fn.hub.numSubs, 0);
    assert.equal(c.session.state, 'connected', 'an error, not a disconnect');
  });

  it('insecure mode: connect without a token, and channel permissions lifted', async (t) => {
    const fn = await node(t, { config: { client: { insecure: true } } });
    const c = fn.client();
    const reply = await c.connect();
    assert.ok(reply.connect, JSON.stringify(reply));
    assert.equal(c.session.user, '');
    const sub = await c.call('subscribe', { channel: 'locked:room' });
    assert.deepEqual(sub.subscribe, {}, JSON.stringify(sub));
    const published = await c.call('publish', { channel: 'locked:room', data: { hi: 1 } });
    assert.deepEqual(published.publish, {}, JSON.stringify(published));
    await waitUntil(() => c.transport.pubs('locked:room').length === 1, 1000, 'own publication');
  });
});

/** GatedBroker is a memory broker whose subscribe and history calls a test can hold. */
class GatedBroker extends MemoryBroker {
  /** Held after the node subscription is made (publications already flow), before it resolves. */
  subscribeGate: Gate | undefined;
  /** Held before history is read. */
  historyBefore: Gate | undefined;
  /** Held after history was read, before the result is returned. */
  historyAfter: Gate | undefined;
  historyRead = false;

  override async subscribe(channel: string): Promise<void> {
    await super.subscribe(channel);
    await this.subscribeGate?.wait();
  }

  override async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    await this.historyBefore?.wait();
    const result = await super.history(channel, query);
    this.historyRead = true;
    await this.historyAfter?.wait();
    return result;
  }
}

describe('ClientSession: publications during a subscribe', () => {
  it('positioned (recovering): delivered after the reply exactly once, none lost or doubled', async (t) => {
    const broker = new GatedBroker({ sweepIntervalMs: 0 });
    const fn = await node(t, { broker });
    await fn.publish('chat:f', { n: 1 });
    const from = await fn.publish('chat:f', { n: 2 });
    const c = await fn.connected('u');
    broker.historyBefore = new Gate();
    broker.historyAfter = new Gate();
    const id = c.nextId();
    c.send({ id, subscribe: { channel: 'chat:f', recover: true, offset: from.offset, epoch: from.epoch } });
    await waitUntil(() => broker.historyBefore?.entered === 1, 1000, 'history read started');
    // Before the read: in history, so in the reply — and also buffered, to be skipped.
    await fn.publish('chat:f', { n: 3 });
    broker.historyBefore.open();
    await waitUntil(() => broker.historyRead, 1000, 'history read');
    // After the read: not in the reply, only buffered.
    await fn.publish('chat:f', { n: 4 });
    assert.equal(c.transport.pubs('chat:f').length, 0, 'nothing before the reply');
    broker.historyAfter.open();
    const reply = await c.transport.reply(id);
    assert.equal(reply.subscribe?.recovered, true, JSON.stringify(reply));
    assert.deepEqual(
      reply.subscribe?.publications?.map((p) => p.offset),
      [3],
    );
    await waitUntil(() => c.transport.pubs('chat:f').length >= 1, 1000, 'buffered publication');
    await fn.publish('chat:f', { n: 5 });
    await waitUntil(() => c.transport.pubs('chat:f').length >= 2, 1000, 'live publication');
    const pushes = c.transport.pubs('chat:f');
    assert.deepEqual(
      pushes.map((m) => m.push?.pub?.offset),
      [4, 5],
    );
    assert.ok(c.transport.messages.indexOf(pushes[0] as ServerMessage) > c.transport.messages.indexOf(reply));
  });

  it('not positioned: a publication during the subscribe comes after the reply, once', async (t) => {
    const broker = new GatedBroker({ sweepIntervalMs: 0 });
    const fn = await node(t, { broker });
    const c = await fn.connected('u');
    broker.subscribeGate = new Gate();
    const id = c.nextId();
    c.send({ id, subscribe: { channel: 'news:f' } });
    await waitUntil(() => broker.subscribeGate?.entered === 1, 1000, 'node subscribe started');
    await fn.publish('news:f', 'during');
    assert.equal(fn.hub.broadcastPublication('news:f', pub('also during')), 1);
    assert.equal(c.transport.messages.length, 1, 'only the connect reply so far');
    broker.subscribeGate.open();
    const reply = await c.transport.reply(id);
    await waitUntil(() => c.transport.pubs('news:f').length === 2, 1000, 'buffered publications');
    await sleep(5);
    const pushes = c.transport.pubs('news:f');
    assert.deepEqual(dataOf(pushes), ['during', 'also during']);
    assert.ok(c.transport.messages.indexOf(pushes[0] as ServerMessage) > c.transport.messages.indexOf(reply));
  });
});

/** DelayedBroker delays each publish by the next of `delays` (ms): earlier ones slower. */
class DelayedBroker extends MemoryBroker {
  delays: number[] = [];
  override async publish(
    channel: string,
    data: RawJSON,
    opts: Parameters<MemoryBroker['publish']>[2],
  ): Promise<StreamPosition> {
    const d = this.delays.shift() ?? 0;
    if (d > 0) await sleep(d);
    return super.publish(channel, data, opts);
  }
}

describe('ClientSession: command order', () => {
  it('publishes pipelined in one frame get replies in command order and land in history in order', async (t) => {
    const broker = new DelayedBroker({ sweepIntervalMs: 0 });
    const fn = await node(t, { broker });
    const c = await fn.connected('u');
    broker.delays = [30, 20, 10, 0, 0];
    const ids = [0, 1, 2, 3, 4].map(() => c.nextId());
    c.send(...ids.map((id, n) => ({ id, publish: { channel: 'chat:order', data: { n } } })));
    await c.transport.reply(ids[4] as number);
    const replyIds = c.transport.messages.filter((m) => m.id !== undefined && ids.includes(m.id)).map((m) => m.id);
    assert.deepEqual(replyIds, ids);
    for (const id of ids) assert.deepEqual(c.transport.messages.find((m) => m.id === id)?.publish, {});
    const h = await broker.history('chat:order', { limit: -1, metaTtlMs: 0 });
    assert.deepEqual(
      h.publications.map((p) => [p.offset, JSON.parse(p.data)]),
      [0, 1, 2, 3, 4].map((n) => [n + 1, { n }]),
    );
    assert.equal(h.publications[0]?.info?.user, 'u', 'client publications carry the publisher info');
  });

  it('beyond protection.rate_limit.max_pending_commands, a command is refused on arrival and answered 111 in its turn', async (t) => {
    const fn = await node(t, { config: { protection: { rate_limit: { max_pending_commands: 2 } } } });
    const gate = new Gate();
    let started = 0;
    fn.ctx.rpcHandlers.set('slow', async () => {
      started++;
      await gate.wait();
      return { ok: true };
    });
    const c = await fn.connected('u');
    const [a, b, x] = [c.nextId(), c.nextId(), c.nextId()];
    c.send({ id: a, rpc: { method: 'slow' } });
    c.send({ id: b, rpc: { method: 'slow' } });
    c.send({ id: x, rpc: { method: 'slow' } });
    await sleep(20);
    assert.equal(await fn.counter('rejections', { reason: 'pending_commands' }), 1, 'judged on arrival');
    const mine = (m: { id?: number }) => m.id === a || m.id === b || m.id === x;
    assert.equal(c.transport.messages.filter(mine).length, 0, 'no reply overtakes the ones still running');
    gate.open();
    const refused = await c.transport.reply(x);
    assert.equal(refused.error?.code, ErrorCode.TooManyRequests, JSON.stringify(refused));
    assert.equal(refused.error?.temporary, true);
    assert.deepEqual(
      c.transport.messages.filter(mine).map((m) => m.id),
      [a, b, x],
      'replies in command order',
    );
    assert.equal(started, 2, 'the refused command never ran');
    // The cap counts what waits: with the queue drained, commands are admitted again.
    assert.ok((await c.call('rpc', { method: 'slow' })).rpc);
  });

  it('max_pending_commands also caps the commands of a single pipelined frame', async (t) => {
    const fn = await node(t, { config: { protection: { rate_limit: { max_pending_commands: 2 } } } });
    const gate = new Gate();
    fn.ctx.rpcHandlers.set('slow', () => gate.wait().then(() => ({ ok: true })));
    const c = await fn.connected('u');
    const ids = [c.nextId(), c.nextId(), c.nextId(), c.nextId()];
    c.send(...ids.map((id) => ({ id, rpc: { method: 'slow' } })));
    await sleep(20);
    assert.equal(await fn.counter('rejections', { reason: 'pending_commands' }), 2, 'two of four over a cap of 2');
    gate.open();
    await c.transport.reply(ids[3] as number);
    const replies = c.transport.messages.filter((m) => ids.includes(m.id as number));
    assert.deepEqual(
      replies.map((m) => m.id),
      ids,
    );
    assert.deepEqual(
      replies.map((m) => m.error?.code ?? 0),
      [0, 0, ErrorCode.TooManyRequests, ErrorCode.TooManyRequests],
    );
  });

  it('load shedding at its read level refuses rpc with 111, and serves it again once it stops', async (t) => {
    const fn = await node(t);
    fn.ctx.rpcHandlers.set('echo', (data) => data);
    const c = await fn.connected('u');
    fn.ctx.shedder.read = true;
    const shed = await c.call('rpc', { method: 'echo', data: 1 });
    assert.equal(shed.error?.code, ErrorCode.TooManyRequests, JSON.stringify(shed));
    assert.equal(await fn.counter('rejections', { reason: 'overload_rpc' }), 1);
    fn.ctx.shedder.read = false;
    assert.deepEqual((await c.call('rpc', { method: 'echo', data: 1 })).rpc, { data: 1 });
  });
});

describe('ClientSession: write queue', () => {
  it('over client.queue_max_size (queued + socket buffer) the client is disconnected with 3008 and counted', async (t) => {
    const fn = await node(t, { config: { client: { queue_max_size: 1024 } } });
    const c = await fn.connected('u');
    await c.call('subscribe', { channel: 'news:slow' });
    fn.hub.broadcastPublication('news:slow', pub('fits'));
    await waitUntil(() => c.transport.pubs('news:slow').length === 1, 1000, 'first publication');
    c.transport.bufferedAmount = 1000; // the socket has not written 1000 bytes yet
    fn.hub.broadcastPublication('news:slow', pub('x'.repeat(30)));
    const closed = await c.transport.waitClose();
    assert.equal(closed.code, DisconnectCode.Slow);
    assert.equal(c.transport.pubs('news:slow').length, 1, 'the frame over the limit was dropped, not sent');
    assert.equal(await fn.counter('slowDisconnects'), 1);
    assert.equal(await fn.counter('disconnects', { code: '3008' }), 1);
    await waitUntil(() => fn.hub.numSubs === 0 && fn.hub.numClients === 0, 1000, 'session cleaned up');
  });

  it('pushes queued before a flush leave as one transport frame, in order', async (t) => {
    const fn = await node(t);
    const c = await fn.connected('u');
    await c.call('subscribe', { channel: 'news:c' });
    const before = c.transport.frames.length;
    for (let i = 0; i < 3; i++) fn.hub.broadcastPublication('news:c', pub(i));
    await waitUntil(() => c.transport.pubs('news:c').length === 3, 1000, '3 publications');
    assert.equal(c.transport.frames.length, before + 1, 'one frame for three pushes');
    const lines = c.transport.frames[before]?.text.split('\n') ?? [];
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as ServerMessage).push?.pub?.data),
      [0, 1, 2],
    );
  });

  it('with client.write_delay, pushes of separate turns share a frame; replies are not delayed', async (t) => {
    // A delay no test waits for: a reply that waited for it would time out.
    const fn = await node(t, { config: { client: { write_delay: '10s' } } });
    const c = await fn.connected('u');
    await c.call('subscribe', { channel: 'news:d' });
    const before = c.transport.frames.length;
    fn.hub.broadcastPublication('news:d', pub(1));
    await new Promise((r) => setImmediate(r));
    fn.hub.broadcastPublication('news:d', pub(2));
    await sleep(10);
    assert.equal(c.transport.frames.length, before, 'pushes held by write_delay');
    // A reply leaves at once, and takes the queued pushes with it in the same frame.
    const replied = await c.call('rpc', { method: 'none' });
    assert.equal(replied.error?.code, ErrorCode.MethodNotFound);
    assert.equal(c.transport.frames.length, before + 1);
    assert.deepEqual(dataOf(c.transport.pubs('news:d')), [1, 2]);
    fn.hub.broadcastPublication('news:d', pub(3));
    await sleep(10);
    assert.equal(c.transport.pubs('news:d').length, 2, 'a push alone waits for write_delay again');
  });
});

describe('ClientSession: deadlines', () => {
  it('a session that never connects is closed with 3502 (stale) after client.stale_close_delay', async (t) => {
    const fn = await node(t, { config: { client: { stale_close_delay: '50ms' } } });
    const opened = Date.now();
    const c = fn.client();
    assert.deepEqual([...fn.hub.connecting()], [c.session]);
    const closed = await c.transport.waitClose();
    assert.equal(closed.code, DisconnectCode.Stale);
    assert.ok(closed.at - opened >= 50, `closed after ${closed.at - opened} ms`);
    assert.deepEqual([...fn.hub.connecting()], []);
    assert.equal(fn.ctx.wheel.size, 0, 'nothing left on the wheel');
  });

  it('a connected session is not closed as stale', async (t) => {
    const fn = await node(t, { config: { client: { stale_close_delay: '30ms' } } });
    const c = await fn.connected('u');
    await sleep(60);
    assert.equal(c.transport.closes.length, 0);
  });

  it('pings after client.ping_interval; no pong within pong_timeout closes with 3012', async (t) => {
    const fn = await node(t, { config: { client: { ping_interval: '60ms', pong_timeout: '30ms' } } });
    const connectedAt = Date.now();
    const c = await fn.connected('u');
    const closed = await c.transport.waitClose();
    assert.equal(closed.code, DisconnectCode.NoPong);
    assert.equal(c.transport.pings, 1);
    const pingAt = c.transport.pingTimes[0] as number;
    assert.ok(pingAt - connectedAt >= 60, `pinged after ${pingAt - connectedAt} ms`);
    // The pong deadline starts when the ping is queued, a moment before it is written.
    assert.ok(closed.at - pingAt >= 25, `closed ${closed.at - pingAt} ms after the ping`);
  });

  it('a client that answers pings stays connected', async (t) => {
    const fn = await node(t, { config: { client: { ping_interval: '40ms', pong_timeout: '20ms' } } });
    const c = await fn.connected('u');
    c.transport.onPing = () => c.pong();
    await waitUntil(() => c.transport.pings >= 3, 1000, '3 pings');
    assert.equal(c.transport.closes.length, 0);
    const gaps = c.transport.pingTimes.slice(1).map((at, i) => at - (c.transport.pingTimes[i] as number));
    for (const gap of gaps) assert.ok(gap >= 25 && gap < 200, `ping gap ${gap} ms`);
  });

  it('an expired connection is closed with 3005 after client.expired_close_delay, not before', async (t) => {
    let expireAt = 0;
    const fn: FakeNode = await node(t, {
      // Pings wake the session every 20 ms: it must keep the grace, not close at the first wake-up.
      config: { client: { expired_close_delay: '80ms', ping_interval: '20ms', pong_timeout: '10ms' } },
      parts: {
        // JWT expiries are whole seconds: this one expires 30 ms after it is verified.
        verifyConnectToken: async (token) => {
          const claims = await fn.verifier.verifyConnectToken(token);
          expireAt = Date.now() + 30;
          return { ...claims, expireAt: expireAt / 1000 };
        },
      },
    });
    const c = fn.client();
    c.transport.onPing = () => c.pong();
    const reply = await c.connect(await fn.token('u'));
    assert.equal(reply.connect?.expires, true, JSON.stringify(reply));
    assert.equal(reply.connect?.ttl, 1, 'ttl rounds up to whole seconds');
    const closed = await c.transport.waitClose();
    assert.equal(closed.code, DisconnectCode.Expired);
    assert.ok(closed.at >= expireAt + 80, `closed ${closed.at - expireAt} ms after expiry (grace 80 ms)`);
    assert.ok(c.transport.pings >= 3, `${c.transport.pings} pings during the grace`);
  });
});

// ---------------------------------------------------------------- WriteQueue on its own

class FakeOwner implements WriteQueueOwner {
  slow = 0;
  errors: unknown[] = [];
  onSlow(): void {
    this.slow++;
  }
  onWriteError(err: unknown): void {
    this.errors.push(err);
  }
}

/** A FlushRequester that records requests; the test flushes by hand. */
function recordingFlusher() {
  const requests: boolean[] = [];
  return { requests, scheduleFlush: (_q: unknown, urgent: boolean) => void requests.push(urgent) };
}

describe('WriteQueue', () => {
  it('coalesces queued frames into one newline-separated send, asking for one flush', () => {
    const tr = new FakeTransport();
    const flusher = recordingFlusher();
    const q = new WriteQueue(tr, new FakeOwner(), 1024, flusher);
    q.push(Buffer.from('{"a":1}'), false);
    q.push(Buffer.from('{"b":2}'), false);
    assert.deepEqual(flusher.requests, [false], 'one delayed flush for both');
    q.push(Buffer.from('{"c":3}'), true);
    assert.deepEqual(flusher.requests, [false, true], 'an urgent frame upgrades the pending flush');
    q.push(Buffer.from('{"d":4}'), true);
    assert.equal(flusher.requests.length, 2);
    assert.equal(q.queuedBytes, 28);
    q.flush();
    assert.deepEqual(
      tr.frames.map((f) => f.text),
      ['{"a":1}\n{"b":2}\n{"c":3}\n{"d":4}'],
    );
    assert.equal(q.queuedBytes, 0);
    q.flush();
    assert.equal(tr.frames.length, 1, 'an empty flush sends nothing');
    q.push(Buffer.from('{"e":5}'), false);
    assert.equal(flusher.requests.length, 3, 'after a flush, the next push asks again');
  });

  it('sends a single frame as it is, without copying', () => {
    const sent: Buffer[] = [];
    const tr = new FakeTransport();
    tr.send = (b) => void sent.push(b);
    const q = new WriteQueue(tr, new FakeOwner(), 1024, recordingFlusher());
    const frame = Buffer.from('{"x":1}');
    q.push(frame, true);
    q.flush();
    assert.equal(sent[0], frame);
  });

  it('over its limit (queued plus the socket buffer) empties itself and tells the owner once', () => {
    const tr = new FakeTransport();
    const owner = new FakeOwner();
    const q = new WriteQueue(tr, owner, 100, recordingFlusher());
    q.push(Buffer.alloc(60, 'a'), false);
    assert.equal(owner.slow, 0);
    tr.bufferedAmount = 30;
    q.push(Buffer.alloc(11, 'b'), false);
    assert.equal(owner.slow, 1);
    assert.equal(q.queuedBytes, 0);
    q.flush();
    assert.equal(tr.frames.length, 0, 'nothing of the dropped queue is sent');
  });

  it('replies are no backlog: over the limit they are sent, and pushes behind them still get the whole limit', () => {
    /** A JSON message of exactly `n` bytes (the fake transport parses what it is sent). */
    const jsonOf = (n: number) => Buffer.from(`{"p":"${'a'.repeat(n - 8)}"}`);
    const tr = new FakeTransport();
    const owner = new FakeOwner();
    const q = new WriteQueue(tr, owner, 100, recordingFlusher());
    q.reply(jsonOf(250));
    assert.equal(owner.slow, 0, 'a reply over the limit is queued');
    assert.equal(q.overLimit, true, 'and holds the next command back');
    tr.bufferedAmount = 250; // the socket does not write the reply at once
    q.flush();
    q.push(jsonOf(90), false);
    assert.equal(owner.slow, 0, 'pushes behind an unwritten reply are not a backlog yet');
    tr.bufferedAmount = 340; // the client stopped reading
    q.flush();
    q.push(jsonOf(11), false);
    assert.equal(owner.slow, 1, 'pushes over the limit are: a client that stopped reading is caught');
    tr.bufferedAmount = 0;
    assert.equal(q.overLimit, false);
  });

  it('a write failure goes to the owner, not to the flush pass', () => {
    const tr = new FakeTransport();
    tr.failWith = new Error('EPIPE');
    const owner = new FakeOwner();
    const q = new WriteQueue(tr, owner, 1024, recordingFlusher());
    q.push(Buffer.from('{}'), true);
    assert.doesNotThrow(() => q.flush());
    assert.deepEqual(owner.errors, [tr.failWith]);
  });
});

// ---------------------------------------------------------------- Deadlines on their own

/** subState is a subscription state with an expiry (and optionally a sub_refresh proxy). */
function subState(expireAt: number, proxied = false, refreshing = false): SubState {
  return {
    channel: 'c',
    joinLeave: false,
    positioned: false,
    recoverable: false,
    presence: false,
    joinLeaveEnabled: false,
    buffer: undefined,
    offset: 0,
    epoch: '',
    expireAt,
    chanInfo: undefined,
    subRefreshProxy: proxied ? ({ name: 'p' } as ProxyTarget) : undefined,
    refreshing,
    filter: undefined,
    serverFilter: undefined,
  };
}

describe('Deadlines', () => {
  // A 1 ms wheel: the slot a target is scheduled in is its deadline, read from wheelSlot.
  // Deadlines far in the future: nothing fires during the test.
  const T = Date.now() + 3_600_000;
  function deadlines(t: TestContext): { d: Deadlines; fired: number[] } {
    const wheel = new TimerWheel(1);
    t.after(() => wheel.close());
    const fired: number[] = [];
    const owner: DeadlineOwner = { onDeadline: (now) => void fired.push(now) };
    return { d: new Deadlines(wheel, owner), fired };
  }

  it('schedules the earliest of ping, pong, connection expiry (+grace) and subscription expiries', (t) => {
    const { d } = deadlines(t);
    d.nextPingAt = T + 500;
    d.schedule(0, false, false, 100);
    assert.equal(d.wheelSlot, T + 500, 'ping');
    d.schedule(T + 300, false, false, 100);
    assert.equal(d.wheelSlot, T + 400, 'expiry plus grace when the client refreshes');
    d.schedule(T + 300, true, false, 100);
    assert.equal(d.wheelSlot, T + 300, 'expiry itself when the refresh proxy prolongs');
    d.schedule(T + 300, true, true, 100);
    assert.equal(d.wheelSlot, T + 500, 'not while a refresh proxy call is in flight');
    d.awaitingPong = true;
    d.pongDeadline = T + 50;
    d.schedule(T + 300, false, false, 100);
    assert.equal(d.wheelSlot, T + 50, 'pong deadline');
    d.awaitingPong = false;
    d.nextSubExpiry = T + 10;
    d.schedule(0, false, false, 100);
    assert.equal(d.wheelSlot, T + 110, 'subscription expiry plus grace');
    d.nextSubRefresh = T + 20;
    d.schedule(0, false, false, 100);
    assert.equal(d.wheelSlot, T + 20, 'sub_refresh proxy: at the expiry');
    d.nextPingAt = 0;
    d.nextSubExpiry = 0;
    d.nextSubRefresh = 0;
    d.schedule(0, false, false, 100);
    assert.equal(d.wheelSlot, undefined, 'nothing due: off the wheel');
  });

  it('takePing: due at nextPingAt, starts the pong deadline, next ping anchored to the due time', (t) => {
    const { d } = deadlines(t);
    d.nextPingAt = T;
    assert.equal(d.takePing(T - 1, 1000, 300), false);
    assert.equal(d.awaitingPong, false);
    assert.equal(d.takePing(T + 7, 1000, 300), true, 'a wheel step late');
    assert.equal(d.awaitingPong, true);
    assert.equal(d.pongDeadline, T + 307);
    assert.equal(d.nextPingAt, T + 1000, 'lateness does not accumulate');
    assert.equal(d.pongMissed(T + 306), false);
    assert.equal(d.pongMissed(T + 307), true);
    d.awaitingPong = false;
    assert.equal(d.pongMissed(T + 10_000), false, 'a pong came');
    // Very late (a stalled loop): the next ping is not in the past.
    assert.equal(d.takePing(T + 5000, 1000, 300), true);
    assert.equal(d.nextPingAt, T + 5001);
  });

  it('updateSubExpiries: earliest token expiry and earliest proxy refresh (none in flight), apart', (t) => {
    const { d } = deadlines(t);
    d.updateSubExpiries([subState(0), subState(T + 30), subState(T + 10), subState(T + 5, true, true)]);
    assert.equal(d.nextSubExpiry, T + 10);
    assert.equal(d.nextSubRefresh, 0, 'the proxied one is being refreshed');
    d.updateSubExpiries([subState(T + 7, true), subState(T + 3, true)]);
    assert.equal(d.nextSubExpiry, 0);
    assert.equal(d.nextSubRefresh, T + 3);
  });

  it('scheduleConnecting puts the stale deadline on the wheel, which tells the owner when due', async (t) => {
    const { d, fired } = deadlines(t);
    d.staleAt = Date.now() + 15;
    d.scheduleConnecting();
    assert.equal(d.wheelSlot, d.staleAt);
    await waitUntil(() => fired.length === 1, 1000, 'stale deadline');
    assert.ok((fired[0] as number) >= d.staleAt);
    d.staleAt = 0;
    d.scheduleConnecting();
    assert.equal(d.wheelSlot, undefined);
  });
});
