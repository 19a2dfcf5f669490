import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { loadConfig } from '../src/config/load.js';
import { CommandRateLimiter, TokenBuckets, methodClass } from '../src/protection/rate-limit.js';
import { rawClient, startTestServer, type RawClient, type TestServer } from './helpers/server.js';

const base = { client: { insecure: true }, http_api: { insecure: true } };

describe('command rate limits (unit)', () => {
  it('maps commands to classes; connect and ping are never limited', () => {
    assert.equal(methodClass('publish'), 'publish');
    assert.equal(methodClass('send'), 'rpc');
    assert.equal(methodClass('presence_stats'), 'read');
    assert.equal(methodClass('sub_refresh'), 'subscribe');
    assert.equal(methodClass('connect'), undefined);
    assert.equal(methodClass('ping'), undefined);
  });

  it('starts full, refuses when empty and refills at the rate', () => {
    const limits = loadConfig({ object: base }).protection.rate_limit.connection;
    const b = new TokenBuckets(limits, 0);
    let ok = 0;
    for (let i = 0; i < 10; i++) if (b.take(0, 2, 3, 0)) ok++;
    assert.equal(ok, 3, 'burst');
    assert.equal(b.take(0, 2, 3, 400), false, '0.8 tokens after 400 ms');
    assert.equal(b.take(0, 2, 3, 500), true, '1 token after 500 ms at 2/s');
    assert.equal(b.take(0, 2, 3, 500), false);
  });

  it('shares a user bucket across connections and forgets it with the last connection', () => {
    const cfg = loadConfig({
      object: {
        ...base,
        protection: { rate_limit: { connection: { publish: { rate: 0 } }, user: { publish: { rate: 1, burst: 2 } } } },
      },
    }).protection.rate_limit;
    const limiter = new CommandRateLimiter(cfg);
    const a = { buckets: undefined, limitedCommands: 0 };
    const b = { buckets: undefined, limitedCommands: 0 };
    assert.equal(limiter.check('publish', 'u', a, 2, 0), undefined);
    assert.equal(limiter.check('publish', 'u', b, 2, 0), undefined);
    assert.deepEqual(limiter.check('publish', 'u', a, 2, 0), { scope: 'user', cls: 'publish' });
    assert.equal(limiter.check('publish', '', a, 1, 0), undefined, 'anonymous: per connection only');
    assert.equal(limiter.trackedUsers, 1);
    limiter.forgetUser('u');
    assert.equal(limiter.trackedUsers, 0);
  });

  it('gives a connection no buckets while it is under its smallest burst (idle connections stay small)', () => {
    const cfg = loadConfig({ object: base }).protection.rate_limit;
    const limiter = new CommandRateLimiter(cfg);
    const conn = { buckets: undefined, limitedCommands: 0 };
    for (let i = 0; i < 10; i++) assert.equal(limiter.check('subscribe', 'idle', conn, 1, 0), undefined);
    assert.equal(conn.buckets, undefined);
    assert.equal(limiter.trackedUsers, 0, 'a single-connection user needs no shared bucket');
  });

  it('is never more lenient than eager buckets: the free commands count as spent', () => {
    // read: burst 50 (the smallest), so the first 50 limited commands are free; then buckets.
    const cfg = loadConfig({ object: base }).protection.rate_limit;
    const limiter = new CommandRateLimiter(cfg);
    const conn = { buckets: undefined, limitedCommands: 0 };
    let ok = 0;
    for (let i = 0; i < 200; i++) if (limiter.check('history', 'reader', conn, 1, 0) === undefined) ok++;
    assert.equal(ok, 50, 'exactly the read burst, as a full bucket would allow');
    assert.ok(conn.buckets);
  });
});

describe('command rate limits (over sockets)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({
      protection: {
        rate_limit: {
          connection: { publish: { rate: 5, burst: 5 } },
          user: { publish: { rate: 8, burst: 8 } },
          disconnect_after: 25,
        },
      },
    });
  });
  after(() => srv.close());

  async function connectedRaw(t: TestContext, user: string): Promise<RawClient> {
    const c = await rawClient(srv.url);
    t.after(() => c.close());
    const reply = await c.connect(await srv.token(user));
    assert.ok(reply.connect, JSON.stringify(reply));
    return c;
  }

  async function publishBurst(c: RawClient, n: number, channel: string): Promise<{ ok: number; refused: number }> {
    const replies = await Promise.all(Array.from({ length: n }, (_, i) => c.call('publish', { channel, data: { i } })));
    let ok = 0;
    let refused = 0;
    for (const r of replies) {
      if (r.publish) ok++;
      else if (r.error?.code === 111) {
        assert.equal(r.error.temporary, true, '111 is temporary: SDKs retry later');
        refused++;
      }
    }
    return { ok, refused };
  }

  it('answers a client over its publish rate with 111 while others keep working', async (t) => {
    const noisy = await connectedRaw(t, 'noisy');
    const calm = await connectedRaw(t, 'calm');
    await calm.call('subscribe', { channel: 'open:room' });
    // 10x the burst at once: the burst passes, the rest is refused, cheaply.
    const { ok, refused } = await publishBurst(noisy, 20, 'open:room');
    assert.equal(ok, 5);
    assert.equal(refused, 15);
    const pub = await calm.call('publish', { channel: 'open:room', data: { calm: true } });
    assert.deepEqual(pub.publish, {}, 'another client is not affected');
    const metrics = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    assert.match(metrics, /bulwark_rejections_total\{reason="rate_limit_connection_publish"[^}]*\} 15/);
  });

  it('limits a user across connections', async (t) => {
    const a = await connectedRaw(t, 'twin');
    const b = await connectedRaw(t, 'twin');
    const ra = await publishBurst(a, 5, 'open:twins');
    const rb = await publishBurst(b, 5, 'open:twins');
    assert.equal(ra.ok + rb.ok, 8, 'the user bucket (8) caps both connections together');
  });

  it('disconnects a client that retries refused commands in a loop with 3013, reconnect allowed', async (t) => {
    const stuck = await connectedRaw(t, 'stuck');
    // A buggy client: every failure is retried 3 times at once (incident 4).
    for (let i = 0; i < 40 && stuck.open; i++) {
      stuck.send({ id: 1000 + i, publish: { channel: 'open:storm', data: { i } } });
      for (let r = 0; r < 3; r++)
        stuck.send({ id: 5000 + i * 3 + r, publish: { channel: 'open:storm', data: { i, r } } });
    }
    assert.deepEqual(await stuck.waitClose(3000), { code: 3013, reason: 'too many requests' });
  });
});

describe('commands admitted on arrival (a pipelined retry storm on one connection)', () => {
  let srv: TestServer;
  let started = 0;
  before(async () => {
    srv = await startTestServer({
      protection: {
        rate_limit: {
          connection: { rpc: { rate: 1, burst: 4 } },
          user: { rpc: { rate: 0 } },
          disconnect_after: 0,
          max_pending_commands: 6,
        },
      },
    });
    // A slow backend: commands of one connection run one at a time, so a pipelined burst queues.
    srv.node.rpc('slow', async () => {
      started++;
      await new Promise((r) => setTimeout(r, 150));
      return { ok: true };
    });
  });
  after(() => srv.close());

  it('judges commands on arrival: refused ones never run, and every reply keeps command order', async (t) => {
    started = 0;
    const c = await rawClient(srv.url);
    t.after(() => c.close());
    assert.ok((await c.connect(await srv.token('piper'))).connect);
    const order: number[] = [];
    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        c.call('rpc', { method: 'slow', data: {} }).then((r) => {
          order.push(i);
          return r;
        }),
      ),
    );
    const refused = replies.filter((r) => r.error?.code === 111);
    assert.equal(refused.length, 6, 'the burst of 4 runs, the other 6 are refused');
    assert.equal(started, 4, 'only admitted commands reach the handler');
    // A refusal never overtakes the reply to an earlier command (PROTOCOL.md).
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
    );
  });

  it('refuses commands beyond max_pending_commands waiting on one connection', async (t) => {
    started = 0;
    const metricsBefore = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    const before = Number(
      /bulwark_rejections_total\{reason="pending_commands"[^}]*\} (\d+)/.exec(metricsBefore)?.[1] ?? 0,
    );
    const c = await rawClient(srv.url);
    t.after(() => c.close());
    assert.ok((await c.connect(await srv.token('queuer'))).connect);
    // Presence stats are limited by the read class (burst 50), not rpc: only the pending cap bites.
    const replies = await Promise.all([
      ...Array.from({ length: 4 }, () => c.call('rpc', { method: 'slow', data: {} })),
      ...Array.from({ length: 5 }, () => c.call('presence_stats', { channel: 'open:x' })),
    ]);
    const pendingRefused = replies.filter((r) => r.error?.code === 111).length;
    assert.equal(pendingRefused, 3, '4 rpc + 2 reads fill the 6 places; 3 reads are refused');
    assert.equal(started, 4);
    const metrics = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    const now = Number(/bulwark_rejections_total\{reason="pending_commands"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0);
    assert.equal(now - before, 3);
  });
});
