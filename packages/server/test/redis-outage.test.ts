/**
 * Redis outages seen from outside a node: started without Redis it stays up but not ready
 * (503 on /ready and on upgrades) and becomes ready once Redis appears; losing Redis while
 * running turns publishes into prompt temporary errors (code 100) without disconnecting
 * anyone; and publications a node missed while its pub/sub connection was down are recovered
 * by its subscribers, once each and in order (map changes too). Runs private `redis-server`s on free ports
 * (`--save "" --appendonly no`), never touching the shared Redis; skipped without
 * `redis-server`, unless BULWARK_REQUIRE_SERVICES=1.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, it, type TestContext } from 'node:test';
import type { Centrifuge } from 'centrifuge';
import { Redis } from 'ioredis';
import type { ConfigInput } from '../src/config/schema.js';
import { upgradeAttempt } from './helpers/protection.js';
import { describeIf, freePort, RedisServer, redisServerMissing, uniquePrefix } from './helpers/redis.js';
import { connectedAs, startTestServer, waitUntil, type TestServer } from './helpers/server.js';
import { track } from './helpers/tracked.js';

/** Fast reconnects and timeouts, so that outages and recoveries take well under a second. */
function redisEngine(url: string, prefix = uniquePrefix()): ConfigInput {
  return {
    engine: {
      type: 'redis',
      redis: { address: [url], prefix, connect_timeout: '300ms', io_timeout: '500ms', reconnect_max_delay: '300ms' },
    },
  };
}

/** readyOf GETs /ready: status and body. */
async function readyOf(srv: TestServer): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${srv.httpUrl}/ready`);
  return { status: res.status, body: await res.json() };
}

/** waitReady polls /ready until it answers `status`; returns how long that took. */
async function waitReady(srv: TestServer, status: number, ms: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const r = await readyOf(srv);
    if (r.status === status) return performance.now() - t0;
    if (performance.now() - t0 > ms) assert.fail(`/ready still ${r.status} ${JSON.stringify(r.body)} after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** engineUp reads bulwark_engine_up from /metrics. */
async function engineUp(srv: TestServer): Promise<number> {
  const text = await (await fetch(`${srv.httpUrl}/metrics`)).text();
  const m = /^bulwark_engine_up(?:\{[^}]*\})? (\d+)$/m.exec(text);
  assert.ok(m, 'bulwark_engine_up is exported');
  return Number(m[1]);
}

/** watchConnection records every connection-level event of a client that is not 'connected'. */
function watchConnection(client: Centrifuge): string[] {
  const events: string[] = [];
  client.on('disconnected', (ctx) => events.push(`disconnected ${ctx.code}`));
  client.on('connecting', (ctx) => events.push(`connecting ${ctx.code}`));
  return events;
}

/** start starts a node and shuts it down when the test ends. */
async function start(t: TestContext, over: ConfigInput): Promise<TestServer> {
  const srv = await startTestServer(over);
  t.after(() => srv.close());
  return srv;
}

describeIf('Redis outages', redisServerMissing(), () => {
  const servers: RedisServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.destroy()));
  });
  /** redis runs a private redis-server (on `port` when given), destroyed after the suite. */
  async function redis(port?: number): Promise<RedisServer> {
    const server = await RedisServer.start(port === undefined ? {} : { port });
    servers.push(server);
    return server;
  }

  it('a node started without Redis is up but not ready, and becomes ready once Redis appears', async (t) => {
    const port = await freePort();
    const t0 = performance.now();
    const srv = await start(t, redisEngine(`redis://127.0.0.1:${port}`));
    t.diagnostic(`start() resolved after ${(performance.now() - t0).toFixed(0)} ms without Redis`);
    assert.equal(srv.node.engineStarted, false);

    assert.deepEqual(await readyOf(srv), {
      status: 503,
      body: { ready: false, draining: false, engine: 'unavailable' },
    });
    assert.equal((await fetch(`${srv.httpUrl}/health`)).status, 200, 'alive');
    const refused = await upgradeAttempt(srv.url);
    assert.equal(refused.status, 503);
    assert.match(refused.retryAfter ?? '', /^\d+$/, 'Retry-After in whole seconds');
    assert.equal(await engineUp(srv), 0);

    await redis(port);
    const tookMs = await waitReady(srv, 200, 5000);
    t.diagnostic(`ready ${tookMs.toFixed(0)} ms after redis-server answered`);
    assert.deepEqual((await readyOf(srv)).body, { ready: true, draining: false });
    assert.equal(await engineUp(srv), 1);

    const client = await connectedAs(srv, t, 'alice');
    const tr = await track(client, 'chat:late');
    const res = await srv.api('publish', { channel: 'chat:late', data: { n: 1 } });
    assert.deepEqual(res.body, { result: { offset: 1, epoch: tr.subscribed[0]?.streamPosition?.epoch } });
    await waitUntil(() => tr.received.length === 1, 3000, 'the publication');
    assert.deepEqual(tr.received, [1]);
  });

  it('Redis lost while running: not ready, temporary errors within 3 s, clients stay connected; then back', async (t) => {
    const server = await redis();
    const srv = await start(t, redisEngine(server.url));
    const client = await connectedAs(srv, t, 'alice');
    const events = watchConnection(client);
    const tr = await track(client, 'chat:outage');
    await srv.api('publish', { channel: 'chat:outage', data: { n: 1 } });
    await waitUntil(() => tr.received.length === 1, 3000, 'the first publication');

    await server.kill();
    await waitReady(srv, 503, 3000);
    assert.deepEqual((await readyOf(srv)).body, { ready: false, draining: false, engine: 'unavailable' });
    assert.equal(await engineUp(srv), 0);

    const t0 = performance.now();
    const res = await srv.api('publish', { channel: 'chat:outage', data: { n: 2 } });
    const apiMs = performance.now() - t0;
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { error: { code: 100, message: 'engine unavailable, retry later', temporary: true } });
    assert.ok(apiMs < 3000, `the API answered after ${apiMs} ms`);

    const t1 = performance.now();
    await assert.rejects(tr.sub.publish({ n: 3 }), (err: { code: number; temporary?: boolean }) => {
      assert.equal(err.code, 100);
      assert.equal(err.temporary, true);
      return true;
    });
    assert.ok(performance.now() - t1 < 3000);
    assert.equal(client.state, 'connected');
    assert.equal(tr.sub.state, 'subscribed');

    await server.resume();
    await waitReady(srv, 200, 5000);
    assert.equal(await engineUp(srv), 1);
    // Redis came back empty (no persistence): the stream has a new epoch, so the node tells
    // the subscriber its position is gone (2500) and the SDK subscribes again.
    await waitUntil(() => tr.subscribed.length === 2, 3000, 'resubscribed after the epoch changed');
    assert.equal(tr.subscribing[0]?.code, 2500);
    assert.equal(tr.subscribed[1]?.wasRecovering, true);
    assert.equal(tr.subscribed[1]?.recovered, false, 'nothing to recover from an emptied Redis');

    const back = await srv.api('publish', { channel: 'chat:outage', data: { n: 4 } });
    assert.equal(back.body.error, undefined, JSON.stringify(back.body));
    await waitUntil(() => tr.received.length === 2, 3000, 'the publication after Redis came back');
    assert.deepEqual(tr.received, [1, 4]);
    assert.equal(client.state, 'connected');
    assert.deepEqual(events, [], 'the client never lost its connection');
  });

  it('publications missed while a node’s pub/sub connection was down are recovered, once each, in order', async (t) => {
    // CLIENT KILL TYPE pubsub drops every pub/sub connection of the server it runs on: a
    // private server, so that nothing else sharing Redis loses its subscriptions.
    const server = await redis();
    const prefix = uniquePrefix();
    const a = await start(t, redisEngine(server.url, prefix));
    const b = await start(t, redisEngine(server.url, prefix));
    const client = await connectedAs(b, t, 'bob');
    const events = watchConnection(client);
    const tr = await track(client, 'chat:gap');
    assert.equal(tr.subscribed[0]?.positioned, true);
    await a.api('publish', { channel: 'chat:gap', data: { n: 1 } });
    await waitUntil(() => tr.received.length === 1, 3000, 'the first publication');

    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    const killed = await admin.client('KILL', 'TYPE', 'pubsub');
    assert.equal(killed, 2, "A's and B's subscriber connections");
    // B's subscription is gone from Redis now; its connection comes back after ≥ 100 ms.
    for (let n = 2; n <= 4; n++) {
      const res = await a.api('publish', { channel: 'chat:gap', data: { n } });
      assert.deepEqual(res.body.result?.offset, n, JSON.stringify(res.body));
    }

    await waitUntil(() => tr.received.length >= 4, 5000, 'the 3 missed publications');
    await a.api('publish', { channel: 'chat:gap', data: { n: 5 } });
    await waitUntil(() => tr.received.length >= 5, 3000, 'a live publication after them');
    assert.deepEqual(tr.received, [1, 2, 3, 4, 5], 'all of them, once each, in order');
    assert.deepEqual(tr.offsets, [1, 2, 3, 4, 5]);
    // The way they came: B found its subscriber behind (2500) and the SDK recovered.
    assert.deepEqual(
      tr.subscribing.map((s) => s.code),
      [2500],
    );
    assert.equal(tr.subscribed.length, 2);
    assert.equal(tr.subscribed[1]?.recovered, true);
    assert.equal(tr.subscribed[1]?.hasRecoveredPublications, true);
    assert.deepEqual(events, [], 'the client stayed connected');
  });

  it('a kill switch set while a node’s pub/sub connection was down holds on that node once it is back', async (t) => {
    const server = await redis();
    const prefix = uniquePrefix();
    const a = await start(t, redisEngine(server.url, prefix));
    const b = await start(t, redisEngine(server.url, prefix));
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    assert.equal(await admin.client('KILL', 'TYPE', 'pubsub'), 2);
    // Set through A while B cannot hear it: the API answers success, A has the switch.
    const set = await a.api('kill_switch_set', { kind: 'publish', target: 'open', reason: 'frozen' });
    assert.equal(set.body.error, undefined, JSON.stringify(set.body));
    await waitUntil(() => a.node.ready && b.node.ready, 3000, 'both nodes ready again');
    await waitUntil(() => b.node.killSwitches.size === 1, 2000, 'the switch on B');
    assert.equal(b.node.killSwitches.find('publish', 'open')?.reason, 'frozen');
  });
  it('map changes a node missed while its pub/sub connections were down reach its subscribers (2500, recovered)', async (t) => {
    const server = await redis();
    const board = { name: 'board', subscription_type: 'map' as const, allow_subscribe_for_client: true };
    const cfg: ConfigInput = {
      ...redisEngine(server.url, uniquePrefix()),
      channel: { namespaces: [{ ...board, map: { mode: 'durable' } }] },
    };
    const a = await start(t, cfg);
    const b = await start(t, cfg);
    const client = await connectedAs(b, t, 'bob');
    const events = watchConnection(client);
    const sub = client.newMapSubscription('board:gap');
    const seen = new Map<string, unknown>();
    const resubscribes: number[] = [];
    const recovered: boolean[] = [];
    sub.on('sync', (ctx) => {
      seen.clear();
      for (const e of ctx.entries) seen.set(e.key, e.data);
    });
    sub.on('update', (ctx) => (ctx.removed ? seen.delete(ctx.key) : seen.set(ctx.key, ctx.data)));
    sub.on('subscribing', (ctx) => resubscribes.push(ctx.code));
    sub.on('subscribed', (ctx) => recovered.push(ctx.recovered));
    sub.subscribe();
    await waitUntil(() => recovered.length === 1, 3000, 'subscribed');
    await a.api('map_publish', { channel: 'board:gap', key: 'k1', data: 1 });
    await waitUntil(() => seen.size === 1, 3000, 'the first change');

    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    // A's and B's broker subscribers, and B's map broker subscriber (A's subscribes no map channel).
    assert.equal(await admin.client('KILL', 'TYPE', 'pubsub'), 3);
    for (let n = 2; n <= 4; n++) {
      const res = await a.api('map_publish', { channel: 'board:gap', key: `k${n}`, data: n });
      assert.equal(res.body.error, undefined, JSON.stringify(res.body));
    }
    await waitUntil(() => seen.size === 4, 5000, 'the 3 missed changes');
    assert.deepEqual(Object.fromEntries(seen), { k1: 1, k2: 2, k3: 3, k4: 4 });
    assert.deepEqual(resubscribes.slice(1), [2500], 'B found its subscriber behind');
    assert.deepEqual(recovered, [false, true]);
    assert.deepEqual(events, [], 'the client stayed connected');
  });
});
