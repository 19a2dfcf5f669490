/**
 * The protections around real proxy calls (incidents 2 and 4): a slow backend gets at most
 * proxy.max_concurrent calls at once and overflow is answered at once with 111 (temporary); a
 * failing backend opens the breaker, after which calls fail fast without reaching it, and it
 * closes again once a probe succeeds; a `proxy` kill switch stops calls to one target with
 * its reason. Everything over real sockets against the origin test server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OriginServer } from './helpers/origin.js';
import { rejectionsMetric } from './helpers/protection.js';
import { describeRedis, removeKeys, uniquePrefix } from './helpers/redis.js';
import { rawClient, startTestServer, waitUntil, type RawClient, type TestServer } from './helpers/server.js';

/** rpcProxyServer starts a node whose RPC proxy is the origin's /rpc, with tight protections. */
async function rpcProxyServer(origin: OriginServer, proxy: Record<string, unknown>): Promise<TestServer> {
  return startTestServer({
    rpc: { proxy: { endpoint: `${origin.url}/rpc`, timeout: '1s' }, without_namespace: { proxy_enabled: true } },
    proxy,
    protection: { rate_limit: { connection: { rpc: { rate: 0 } }, user: { rpc: { rate: 0 } } } },
  });
}

async function client(srv: TestServer): Promise<RawClient> {
  const c = await rawClient(srv.url);
  const reply = await c.connect(await srv.token('player'));
  assert.ok(reply.connect, JSON.stringify(reply));
  return c;
}

async function breakerOpen(srv: TestServer): Promise<string | undefined> {
  const text = await (await fetch(`${srv.httpUrl}/metrics`)).text();
  return /^bulwark_proxy_breaker_open\{[^}]*target="rpc\.proxy"[^}]*\} (\d)$/m.exec(text)?.[1];
}

describe('proxy protections', () => {
  let origin: OriginServer;
  before(async () => {
    origin = await OriginServer.start();
    origin.route('/rpc', { body: { result: { data: { ok: true } } } });
  });
  after(() => origin.close());

  it('a slow backend gets at most max_concurrent calls; overflow is answered at once with 111', async (t) => {
    origin.resetCounters();
    origin.delayMs = 400;
    t.after(() => (origin.delayMs = 0));
    const srv = await rpcProxyServer(origin, { max_concurrent: 2, max_queue: 1 });
    t.after(() => srv.close());
    // Ten players at once (a session handles its own commands one after another).
    const clients = await Promise.all(Array.from({ length: 10 }, () => client(srv)));
    const started = Date.now();
    const replies = await Promise.all(
      clients.map((c, i) =>
        c.call('rpc', { method: 'slow', data: { i } }, 5000).then((r) => ({ r, ms: Date.now() - started })),
      ),
    );
    const ok = replies.filter((x) => x.r.rpc !== undefined);
    const busy = replies.filter((x) => x.r.error?.code === 111);
    assert.equal(ok.length, 3, '2 in flight + 1 queued are served');
    assert.equal(busy.length, 7);
    for (const b of busy) {
      assert.equal(b.r.error?.temporary, true);
      assert.ok(b.ms < 300, `overflow answered after ${b.ms} ms, before the backend answered anything`);
    }
    assert.equal(origin.maxInFlight, 2, 'the backend never saw more than max_concurrent');
    assert.equal(origin.calls, 3);
  });

  it('a failing backend opens the breaker: calls fail fast without reaching it, then a probe closes it', async (t) => {
    origin.resetCounters();
    origin.failure = { status: 500 };
    t.after(() => (origin.failure = undefined));
    const srv = await rpcProxyServer(origin, { breaker: { min_requests: 4, open_time: '300ms' } });
    t.after(() => srv.close());
    const c = await client(srv);
    for (let i = 0; i < 4; i++) {
      const r = await c.call('rpc', { method: 'm', data: {} });
      assert.deepEqual([r.error?.code, r.error?.temporary], [100, true]);
    }
    assert.equal(origin.calls, 4);
    assert.equal(await breakerOpen(srv), '1');
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) {
      const r = await c.call('rpc', { method: 'm', data: {} });
      assert.deepEqual(r.error, { code: 100, message: 'internal server error: backend unavailable', temporary: true });
    }
    assert.ok(Date.now() - t0 < 200, 'open breaker answers at once');
    assert.equal(origin.calls, 4, 'an open breaker sends nothing to the backend');

    origin.failure = undefined;
    await new Promise((r) => setTimeout(r, 350));
    const probe = await c.call('rpc', { method: 'm', data: {} });
    assert.deepEqual(probe.rpc, { data: { ok: true } }, 'the probe goes through and succeeds');
    assert.equal(await breakerOpen(srv), '0', 'closed again');
    assert.deepEqual((await c.call('rpc', { method: 'm', data: {} })).rpc, { data: { ok: true } });
  });

  it('a proxy kill switch stops calls to that target with its reason; other targets are untouched', async (t) => {
    origin.resetCounters();
    const srv = await rpcProxyServer(origin, {});
    t.after(() => srv.close());
    const c = await client(srv);
    const set = await srv.api('kill_switch_set', { kind: 'proxy', target: 'rpc.proxy', reason: 'backend migration' });
    assert.equal(set.body.error, undefined, JSON.stringify(set.body));
    const r = await c.call('rpc', { method: 'm', data: {} });
    assert.deepEqual(r.error, { code: 108, message: 'disabled: backend migration' });
    assert.equal(origin.calls, 0);
    await srv.api('kill_switch_remove', { kind: 'proxy', target: 'rpc.proxy' });
    assert.deepEqual((await c.call('rpc', { method: 'm', data: {} })).rpc, { data: { ok: true } });
    assert.equal(await rejectionsMetric(srv.httpUrl, 'kill_switch_proxy'), 0, 'counted as a proxy outcome instead');
    const text = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    assert.match(text, /bulwark_proxy_protected_calls_total\{[^}]*target="rpc\.proxy"[^}]*outcome="killed"[^}]*\} 1/);
  });
});

await describeRedis('proxy kill switch across nodes', () => {
  it('set through node A, it stops calls to the backend target on node B within a second', async (t) => {
    const origin = await OriginServer.start();
    t.after(() => origin.close());
    origin.route('/rpc', { body: { result: { data: { ok: true } } } });
    const prefix = uniquePrefix();
    t.after(() => removeKeys(prefix).then(() => undefined));
    const config = {
      engine: { type: 'redis' as const, redis: { prefix } },
      rpc: { proxy: { endpoint: `${origin.url}/rpc`, timeout: '1s' }, without_namespace: { proxy_enabled: true } },
    };
    const a = await startTestServer(config);
    t.after(() => a.close());
    const b = await startTestServer(config);
    t.after(() => b.close());
    const c = await client(b);
    assert.deepEqual((await c.call('rpc', { method: 'm', data: {} })).rpc, { data: { ok: true } });
    const started = Date.now();
    await a.api('kill_switch_set', { kind: 'proxy', target: 'rpc.proxy', reason: 'backend on fire' });
    await waitUntil(() => b.node.killSwitches.find('proxy', 'rpc.proxy') !== undefined, 1000, 'switch on B');
    const tookMs = Date.now() - started;
    const before = origin.calls;
    const r = await c.call('rpc', { method: 'm', data: {} });
    assert.deepEqual(r.error, { code: 108, message: 'disabled: backend on fire' });
    assert.equal(origin.calls, before, 'B sent nothing to the backend');
    t.diagnostic(`kill switch reached node B in ${tookMs} ms`);
    assert.ok(tookMs < 1000);
  });
});
