/**
 * Several nodes in this process acting as one through a real Redis: publications, recovery,
 * user commands (disconnect, unsubscribe, subscribe, refresh, send), info, channels, kill
 * switches and presence reach across nodes. Real sockets and the real `centrifuge` SDK; each
 * test runs its own nodes on a key prefix of its own, removed afterwards. Needs Redis at
 * BULWARK_TEST_REDIS_URL (skipped without it, unless BULWARK_REQUIRE_SERVICES=1).
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { it, type TestContext } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import type { SubscribedContext } from 'centrifuge';
import type { ConfigInput } from '../src/config/schema.js';
import type { NodeInfo } from '../src/cluster/control.js';
import { describeRedis, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';
import { connectedAs, nextEvent, rawClient, startTestServer, waitUntil, type TestServer } from './helpers/server.js';
import { range, track } from './helpers/tracked.js';

/** TestCluster is a set of in-process nodes on one Redis key prefix, shut down when the test ends. */
class TestCluster {
  readonly prefix = uniquePrefix();
  readonly #nodes: TestServer[] = [];

  constructor(t: TestContext) {
    t.after(async () => {
      await Promise.all(this.#nodes.map((n) => n.close()));
      await removeKeys(this.prefix);
    });
  }

  /** add starts a node named `name` (info every 200 ms unless `over.node` says otherwise). */
  async add(name: string, over: ConfigInput = {}): Promise<TestServer> {
    const srv = await startTestServer({
      ...over,
      engine: { type: 'redis', redis: { address: [redisUrl], prefix: this.prefix } },
      node: { name, info_interval: '200ms', ...over.node },
    });
    this.#nodes.push(srv);
    return srv;
  }

  /** start starts one node per name, in order. */
  async start<N extends string[]>(...names: N): Promise<{ [K in keyof N]: TestServer }> {
    const out: TestServer[] = [];
    for (const name of names) out.push(await this.add(name));
    return out as { [K in keyof N]: TestServer };
  }

  /** waitMesh waits until every node lists every other one (their node_info arrived). */
  async waitMesh(nodes: TestServer[]): Promise<void> {
    await waitUntil(
      () => nodes.every((n) => n.node.nodes.size === nodes.length - 1),
      3000,
      'every node knows the others',
    );
  }
}

/** publish publishes {n} through `srv`'s API and returns the offset. */
async function publish(srv: TestServer, channel: string, n: number): Promise<number> {
  const res = await srv.api('publish', { channel, data: { n } });
  assert.equal(res.status, 200);
  assert.equal(res.body.error, undefined, JSON.stringify(res.body));
  return res.body.result.offset as number;
}

/** infoOf returns the `info` API result of `srv`, nodes by name. */
async function infoOf(srv: TestServer): Promise<Map<string, NodeInfo>> {
  const res = await srv.api('info', {});
  assert.equal(res.body.error, undefined, JSON.stringify(res.body));
  return new Map((res.body.result.nodes as NodeInfo[]).map((n) => [n.name, n]));
}

/** counts keeps the counts of a node's info (without uid, version and uptime). */
function counts(n: NodeInfo | undefined) {
  return n && { clients: n.num_clients, users: n.num_users, channels: n.num_channels, subs: n.num_subs };
}

/** waitForInfo polls `srv`'s info API until `pred` accepts it; fails with the last answer after `ms`. */
async function waitForInfo(
  srv: TestServer,
  pred: (nodes: Map<string, NodeInfo>) => boolean,
  ms = 3000,
): Promise<Map<string, NodeInfo>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const nodes = await infoOf(srv);
    if (pred(nodes)) return nodes;
    if (Date.now() > deadline) assert.fail(`info never matched: ${JSON.stringify([...nodes.values()])}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

await describeRedis('cluster of nodes on Redis', () => {
  it('API publications on A reach clients on B and C in publish order; client publications on B reach A', async (t) => {
    const cluster = new TestCluster(t);
    const [a, b, c] = await cluster.start('A', 'B', 'C');
    const ch = 'chat:order';
    const onA = await track(await connectedAs(a, t, 'alice'), ch);
    const onB = await track(await connectedAs(b, t, 'bob'), ch);
    const onC = await track(await connectedAs(c, t, 'carol'), ch);

    // 30 concurrent API calls, most through A and some through C: the offsets say the publish
    // order, and every node must deliver that one order.
    const offsets = await Promise.all(range(1, 30).map((n) => publish(n % 3 === 0 ? c : a, ch, n)));
    const byOffset = range(1, 30).map((o) => offsets.indexOf(o) + 1);
    for (const [name, tr] of [
      ['A', onA],
      ['B', onB],
      ['C', onC],
    ] as const) {
      await waitUntil(() => tr.received.length >= 30, 3000, `30 publications on ${name}`);
      assert.deepEqual(tr.offsets, range(1, 30), `${name} got the offsets in order`);
      assert.deepEqual(tr.received, byOffset, `${name} got each publication with its offset`);
    }

    // A client publication on B, as a subscriber: A's subscriber sees it with bob's info.
    const seen = nextEvent(onA.sub, 'publication', 3000, (ctx) => (ctx.data as { n: number }).n === 31);
    await onB.sub.publish({ n: 31 });
    const pub = await seen;
    assert.equal(pub.info?.user, 'bob');
    assert.equal(pub.offset, 31);
    await waitUntil(() => onC.received.length === 31, 3000, 'C got the client publication');
  });

  it('a client that left A recovers exactly what it missed when it reconnects to B', async (t) => {
    const cluster = new TestCluster(t);
    const [a, b, c] = await cluster.start('A', 'B', 'C');
    const ch = 'chat:recover';
    const first = await connectedAs(a, t, 'alice');
    const s1 = await track(first, ch);
    assert.equal(s1.subscribed[0]?.recoverable, true, 'chat forces recovery');
    for (let n = 1; n <= 3; n++) assert.equal(await publish(a, ch, n), n);
    await waitUntil(() => s1.received.length === 3, 3000, 'first 3 on A');
    const epoch = s1.subscribed[0]?.streamPosition?.epoch ?? '';
    assert.ok(epoch, 'the subscribe reply carried an epoch');
    first.disconnect();

    // Missed while away, published through A and C.
    for (let n = 4; n <= 8; n++) await publish(n % 2 === 0 ? a : c, ch, n);

    const second = await connectedAs(b, t, 'alice');
    const s2 = await track(second, ch, { since: { offset: s1.offsets.at(-1) ?? 0, epoch } });
    const ctx = s2.subscribed[0] as SubscribedContext;
    assert.equal(ctx.wasRecovering, true);
    assert.equal(ctx.recovered, true);
    assert.equal(ctx.streamPosition?.epoch, epoch, 'one stream for the whole cluster');
    await waitUntil(() => s2.received.length >= 5, 3000, 'the 5 missed');
    await publish(c, ch, 9);
    await waitUntil(() => s2.received.length >= 6, 3000, 'live publication after the recovered ones');
    assert.deepEqual(s2.received, range(4, 9), 'exactly the missed ones, once, in order, then live');
    assert.deepEqual(s2.offsets, range(4, 9));
  });

  it('disconnect, unsubscribe, subscribe, refresh and send through A act on a user connected only to B', async (t) => {
    const cluster = new TestCluster(t);
    const [a, b] = await cluster.start('A', 'B');
    const alice = await connectedAs(a, t, 'alice');
    const aliceMessages: unknown[] = [];
    alice.on('message', (ctx) => aliceMessages.push(ctx.data));
    const bob = await connectedAs(b, t, 'bob');
    const bobChat = await track(bob, 'chat:cmd');
    // A second connection of bob's, protocol-level, to see refresh pushes; refresh targets it by client id.
    const bobRaw = await rawClient(b.url);
    t.after(() => bobRaw.close());
    const rawId = (await bobRaw.connect(await b.token('bob'))).connect?.client;
    assert.ok(rawId);
    assert.equal(a.node.hub.userSessions('bob').size, 0, 'bob is not on A');

    // send: an asynchronous message to bob.
    const message = nextEvent(bob, 'message');
    assert.deepEqual((await a.api('send', { user: 'bob', data: { hello: 'bob' } })).body, { result: {} });
    assert.deepEqual((await message).data, { hello: 'bob' });

    // subscribe (server-side), then a publication on that channel reaches bob through it.
    const subscribed = nextEvent(bob, 'subscribed', 3000, (ctx) => ctx.channel === 'news:srv');
    assert.deepEqual((await a.api('subscribe', { user: 'bob', channel: 'news:srv' })).body, { result: {} });
    await subscribed;
    const serverPub = nextEvent(bob, 'publication', 3000, (ctx) => ctx.channel === 'news:srv');
    await a.api('publish', { channel: 'news:srv', data: { n: 1 } });
    assert.deepEqual((await serverPub).data, { n: 1 });

    // unsubscribe (server-side) of bob's own subscription: code 2000, terminal.
    const unsubscribed = nextEvent(bobChat.sub, 'unsubscribed');
    assert.deepEqual((await a.api('unsubscribe', { user: 'bob', channel: 'chat:cmd' })).body, { result: {} });
    assert.equal((await unsubscribed).code, 2000);
    assert.equal(bobChat.sub.state, 'unsubscribed');

    // refresh: a new expiry (refresh push), then expired (disconnect 3005).
    const expireAt = Math.floor(Date.now() / 1000) + 3600;
    const refreshBody = { user: 'bob', client: rawId, expire_at: expireAt };
    assert.deepEqual((await a.api('refresh', refreshBody)).body, { result: {} });
    const refresh = await bobRaw.waitFor((m) => m.push?.refresh !== undefined, 3000, 'refresh push');
    assert.equal(refresh.push?.refresh?.expires, true);
    assert.ok(Math.abs((refresh.push?.refresh?.ttl ?? 0) - 3600) <= 2, JSON.stringify(refresh));
    await a.api('refresh', { user: 'bob', client: rawId, expired: true });
    assert.equal((await bobRaw.waitClose()).code, 3005);
    assert.equal(bob.state, 'connected', "bob's other connection stays");

    // disconnect with a custom code that forbids reconnecting.
    const gone = nextEvent(bob, 'disconnected');
    const kick = { user: 'bob', disconnect: { code: 4501, reason: 'kicked from A' } };
    assert.deepEqual((await a.api('disconnect', kick)).body, { result: {} });
    assert.deepEqual(await gone, { code: 4501, reason: 'kicked from A' });
    await waitUntil(() => b.node.hub.userSessions('bob').size === 0, 2000, 'bob gone from B');

    assert.equal(alice.state, 'connected', 'alice was not touched');
    assert.deepEqual(aliceMessages, []);
  });

  it('info on A lists every node with its counts, and drops B as soon as B shuts down', async (t) => {
    const cluster = new TestCluster(t);
    // A forgets a silent node only after 3 of its own intervals (30 s here): dropping B at
    // once can only come from B's node_leave. B and C tell their counts every 200 ms.
    const [b, c] = await cluster.start('B', 'C');
    const a = await cluster.add('A', { node: { info_interval: '10s' } });
    const alice = await connectedAs(a, t, 'alice');
    await track(alice, 'chat:i1');
    for (const client of [await connectedAs(b, t, 'bob'), await connectedAs(b, t, 'bob')]) {
      await track(client, 'chat:i1');
      await track(client, 'chat:i2');
    }

    const expected = {
      A: { clients: 1, users: 1, channels: 1, subs: 1 },
      B: { clients: 2, users: 1, channels: 2, subs: 4 },
      C: { clients: 0, users: 0, channels: 0, subs: 0 },
    };
    const byName = (n: Map<string, NodeInfo>) => Object.fromEntries([...n].map(([name, i]) => [name, counts(i)]));
    // B's counts arrive with its next info (200 ms): wait for them, then check everything.
    const nodes = await waitForInfo(a, (n) => isDeepStrictEqual(byName(n), expected));
    assert.deepEqual(byName(nodes), expected);
    assert.deepEqual(
      [nodes.get('A')?.uid, nodes.get('B')?.uid, nodes.get('C')?.uid],
      [a.node.nodeId, b.node.nodeId, c.node.nodeId],
    );

    const stopped = Date.now();
    await b.close();
    const after = await waitForInfo(a, (n) => !n.has('B'), 1000);
    t.diagnostic(`B dropped from A's info ${Date.now() - stopped} ms after its shutdown began`);
    assert.deepEqual([...after.keys()].sort(), ['A', 'C']);
  });

  it('channels on A counts subscribers on every node, summed per channel', async (t) => {
    const cluster = new TestCluster(t);
    const [a, b, c] = await cluster.start('A', 'B', 'C');
    await cluster.waitMesh([a, b, c]);
    await track(await connectedAs(a, t, 'alice'), 'chat:both');
    await track(await connectedAs(a, t, 'amy'), 'chat:only-a');
    for (const user of ['bob', 'bert']) await track(await connectedAs(b, t, user), 'chat:both');
    await track(await connectedAs(b, t, 'bob'), 'chat:only-b');
    await track(await connectedAs(c, t, 'carol'), 'news:only-c');

    const expected = {
      'chat:both': { num_clients: 3 },
      'chat:only-a': { num_clients: 1 },
      'chat:only-b': { num_clients: 1 },
      'news:only-c': { num_clients: 1 },
    };
    for (const srv of [a, b]) {
      const res = await srv.api('channels', {});
      assert.deepEqual(res.body, { result: { channels: expected } }, srv.node.name);
    }
    const only = await a.api('channels', { pattern: 'chat:only-*' });
    assert.deepEqual(only.body.result.channels, {
      'chat:only-a': { num_clients: 1 },
      'chat:only-b': { num_clients: 1 },
    });
  });

  it('a kill switch set on A holds on B within 1 s, reaches a node started later, and removal on B reaches A', async (t) => {
    const cluster = new TestCluster(t);
    const [a, b] = await cluster.start('A', 'B');
    const onA = await rawClient(a.url);
    const onB = await rawClient(b.url);
    t.after(() => [onA, onB].forEach((c) => c.close()));
    assert.ok((await onA.connect(await a.token('alice'))).connect);
    assert.ok((await onB.connect(await b.token('bob'))).connect);
    const refusal = { code: 108, message: 'disabled: board frozen' };
    const tryPublish = async (c: typeof onA) => (await c.call('publish', { channel: 'open:ks', data: {} })).error;
    assert.equal(await tryPublish(onB), undefined, 'publishing works before the switch');

    const t0 = performance.now();
    const set = await a.api('kill_switch_set', { kind: 'publish', target: 'open', reason: 'board frozen' });
    assert.equal(set.body.error, undefined, JSON.stringify(set.body));
    let refused;
    while ((refused = await tryPublish(onB)) === undefined) {
      assert.ok(performance.now() - t0 < 3000, 'B never refused');
    }
    const tookMs = performance.now() - t0;
    t.diagnostic(`switch effective on B ${tookMs.toFixed(1)} ms after the API call on A`);
    assert.deepEqual(refused, refusal);
    assert.ok(tookMs < 1000, `took ${tookMs} ms`);

    // C starts after the switch was set: it asks the running nodes at start.
    const c = await cluster.add('C');
    await waitUntil(() => c.node.killSwitches.size === 1, 1000, 'C synced the switch');
    const onC = await rawClient(c.url);
    t.after(() => onC.close());
    assert.ok((await onC.connect(await c.token('carol'))).connect);
    assert.deepEqual(await tryPublish(onC), refusal);
    const listed = (await c.api('kill_switch_list', {})).body.result.switches;
    assert.deepEqual(
      listed.map((s: { kind: string; target: string; reason: string }) => [s.kind, s.target, s.reason]),
      [['publish', 'open', 'board frozen']],
    );

    // Removed on B: A and C publish again.
    const t1 = performance.now();
    assert.deepEqual((await b.api('kill_switch_remove', { kind: 'publish', target: 'open' })).body, {
      result: { removed: true },
    });
    while ((await tryPublish(onA)) !== undefined) assert.ok(performance.now() - t1 < 3000, 'A still refuses');
    t.diagnostic(`removal effective on A after ${(performance.now() - t1).toFixed(1)} ms`);
    assert.ok(performance.now() - t1 < 1000);
    await waitUntil(() => c.node.killSwitches.size === 0, 1000, 'removal reached C');
    assert.equal(await tryPublish(onC), undefined);
  });

  it('presence and presence_stats on either node show clients of both nodes', async (t) => {
    const cluster = new TestCluster(t);
    const [a, b] = await cluster.start('A', 'B');
    const ch = 'chat:lobby';
    const alice = await connectedAs(a, t, 'alice');
    const bob = await connectedAs(b, t, 'bob');
    const onA = await track(alice, ch, { joinLeave: true });
    const joined = nextEvent(onA.sub, 'join', 3000, (ctx) => ctx.info.user === 'bob');
    const onB = await track(bob, ch);
    assert.equal((await joined).info.user, 'bob', 'join from B reached A');

    const expected = new Map([
      [sessionId(a, 'alice'), 'alice'],
      [sessionId(b, 'bob'), 'bob'],
    ]);
    for (const [name, tr] of [
      ['A', onA],
      ['B', onB],
    ] as const) {
      const p = await tr.sub.presence();
      assert.deepEqual(
        new Map(Object.entries(p.clients).map(([id, info]) => [id, info.user])),
        expected,
        `presence through ${name}`,
      );
      assert.deepEqual(await tr.sub.presenceStats(), { numClients: 2, numUsers: 2 }, `presence_stats through ${name}`);
    }
    for (const srv of [a, b]) {
      const p = await srv.api('presence', { channel: ch });
      assert.deepEqual(
        new Map(Object.entries(p.body.result.presence).map(([id, info]) => [id, (info as { user: string }).user])),
        expected,
      );
      assert.deepEqual((await srv.api('presence_stats', { channel: ch })).body.result, {
        num_clients: 2,
        num_users: 2,
      });
    }

    // bob leaves on B: A's view drops him at once.
    const left = nextEvent(onA.sub, 'leave', 3000, (ctx) => ctx.info.user === 'bob');
    onB.sub.unsubscribe();
    await left;
    assert.deepEqual(await onA.sub.presenceStats(), { numClients: 1, numUsers: 1 });
  });
});

/** sessionId is the client id of `user`'s one connection on `srv`. */
function sessionId(srv: TestServer, user: string): string {
  const sessions = [...srv.node.hub.userSessions(user)];
  assert.equal(sessions.length, 1, `${user} has one connection on ${srv.node.name}`);
  return sessions[0]!.id;
}
