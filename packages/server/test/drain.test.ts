/**
 * Graceful drain: `node.shutdown()` turns readiness off, refuses new upgrades with 503 and
 * Retry-After, and disconnects connected clients with 3001 spread across `drain.window`, so
 * their reconnects reach the other nodes as a trickle, not a storm.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rawClient, startTestServer, waitUntil, type CloseInfo, type RawClient } from './helpers/server.js';
import { upgradeAttempt } from './helpers/protection.js';

/** connectMany opens `n` raw clients and connects each as its own user. */
async function connectMany(srv: Awaited<ReturnType<typeof startTestServer>>, n: number): Promise<RawClient[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const c = await rawClient(srv.url);
      const reply = await c.connect(await srv.token(`drained${i}`));
      assert.ok(reply.connect, JSON.stringify(reply));
      return c;
    }),
  );
}

describe('drain on shutdown', () => {
  it('50 clients get 3001 spread across a 1 s window; /ready is 503 and upgrades are refused meanwhile', async (t) => {
    const windowMs = 1000;
    const srv = await startTestServer({ drain: { window: '1s' } });
    t.after(() => srv.close());
    const clients = await connectMany(srv, 50);
    t.after(() => clients.forEach((c) => c.close()));
    assert.equal(srv.node.hub.numClients, 50);
    const readyBefore = await fetch(`${srv.httpUrl}/ready`);
    assert.equal(readyBefore.status, 200);
    await readyBefore.text();

    const closes: Array<CloseInfo & { at: number }> = [];
    for (const c of clients) void c.closed.then((info) => closes.push({ ...info, at: Date.now() }));
    const started = Date.now();
    const shutdown = srv.node.shutdown();

    // Right after shutdown starts: not ready, new WebSocket upgrades refused with a retry hint.
    const ready = await fetch(`${srv.httpUrl}/ready`);
    assert.equal(ready.status, 503);
    assert.deepEqual(await ready.json(), { ready: false, draining: true });
    const health = await fetch(`${srv.httpUrl}/health`);
    assert.equal(health.status, 200, 'alive while draining');
    await health.text();
    const refused = await upgradeAttempt(srv.url);
    assert.equal(refused.status, 503);
    assert.match(refused.retryAfter ?? '', /^\d+$/, 'Retry-After in seconds');
    assert.ok(Number(refused.retryAfter) >= 1);
    assert.ok(Date.now() - started < windowMs / 2, 'the checks ran early in the window');

    await shutdown;
    const shutdownMs = Date.now() - started;
    await waitUntil(() => closes.length === 50, 2000, 'every client closed');
    for (const c of closes) assert.deepEqual({ code: c.code, reason: c.reason }, { code: 3001, reason: 'shutdown' });
    assert.ok(shutdownMs >= windowMs * 0.9 && shutdownMs < windowMs + 2000, `shutdown took ${shutdownMs} ms`);

    // Spread: first to last covers at least half the window, and no 20% slice of the
    // window (sliding) holds more than 30% of the clients.
    const times = closes.map((c) => c.at).sort((a, b) => a - b);
    const spread = (times.at(-1) as number) - (times[0] as number);
    assert.ok(spread >= windowMs * 0.5, `closes spread over ${spread} ms`);
    const slice = windowMs * 0.2;
    let densest = 0;
    for (const t0 of times) densest = Math.max(densest, times.filter((x) => x >= t0 && x < t0 + slice).length);
    assert.ok(densest <= 15, `${densest} of 50 closes within one ${slice} ms slice`);
    t.diagnostic(`spread ${spread} ms, densest 200 ms slice ${densest}, shutdown ${shutdownMs} ms`);

    // After shutdown the port is closed.
    await assert.rejects(fetch(`${srv.httpUrl}/health`));
  });

  it('a second shutdown() waits for the first to finish', async (t) => {
    const srv = await startTestServer({ drain: { window: '400ms' } });
    t.after(() => srv.close());
    const clients = await connectMany(srv, 4);
    t.after(() => clients.forEach((c) => c.close()));
    const first = srv.node.shutdown();
    const started = Date.now();
    await srv.node.shutdown();
    const secondMs = Date.now() - started;
    await first;
    assert.ok(secondMs >= 250, `the second call resolved after ${secondMs} ms, before the drain ended`);
  });

  it('shutdown.timeout bounds the drain: every client is closed when shutdown() resolves', async (t) => {
    const srv = await startTestServer({ drain: { window: '3s' }, shutdown: { timeout: '300ms' } });
    t.after(() => srv.close());
    const clients = await connectMany(srv, 10);
    t.after(() => clients.forEach((c) => c.close()));
    const started = Date.now();
    await srv.node.shutdown();
    const tookMs = Date.now() - started;
    assert.ok(tookMs < 1500, `shutdown took ${tookMs} ms with a 300 ms timeout`);
    await Promise.all(clients.map((c) => c.waitClose(1000)));
    for (const c of clients) assert.equal((await c.closed).code, 3001);
    await assert.rejects(fetch(`${srv.httpUrl}/health`), 'listener closed');
  });
});

describe('drain through the server API', () => {
  it('drain spreads 3001 over window_ms, refuses upgrades, and the API keeps answering', async (t) => {
    const srv = await startTestServer();
    t.after(() => srv.close());
    const clients = await connectMany(srv, 20);
    t.after(() => clients.forEach((c) => c.close()));
    const closes: number[] = [];
    for (const c of clients) void c.closed.then(() => closes.push(Date.now()));
    const started = Date.now();
    const res = await srv.api('drain', { window_ms: 600 });
    assert.deepEqual(res.body.result, { clients: 20, window_ms: 600 });
    assert.equal((await upgradeAttempt(srv.url)).status, 503);
    assert.equal((await fetch(`${srv.httpUrl}/ready`)).status, 503);
    await waitUntil(() => closes.length === 20, 3000, 'every client drained');
    for (const c of clients) assert.equal((await c.closed).code, 3001);
    const spread = Math.max(...closes) - Math.min(...closes);
    assert.ok(spread >= 300, `closes spread over ${spread} ms of a 600 ms window`);
    assert.ok(Math.max(...closes) - started < 2000);
    // Not stopped: the API and metrics still answer, and a second drain is a no-op.
    const info = await srv.api('info', {});
    assert.equal(info.body.result.nodes[0].num_clients, 0);
    assert.deepEqual((await srv.api('drain', {})).body.result, { clients: 0, window_ms: 0 });
    // A later shutdown finds the drain done and stops at once.
    const t0 = Date.now();
    await srv.node.shutdown();
    assert.ok(Date.now() - t0 < 1000);
  });
});
