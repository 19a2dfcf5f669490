/**
 * The unidirectional WebSocket transport over real sockets, with a plain `ws` client and no
 * SDK: the connect request as the first message or in `cf_connect`, the `connect` push, bare
 * publication pushes (API publish to token `channels` and to channels asked in `subs`), `{}`
 * pings with no pong expected, disconnects as a `disconnect` push plus the close code (bad
 * token 3500, expired token 3005, malformed request 3501), messages after connect ignored,
 * and a 404 while the endpoint is disabled.
 *
 * @module
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rawClient, sleep, startTestServer, type RawClient, type TestServer } from './helpers/server.js';

/** uniUrl is the unidirectional WebSocket endpoint of `srv`, with an optional query. */
function uniUrl(srv: TestServer, query = ''): string {
  return `ws://127.0.0.1:${srv.port}/connection/uni_websocket${query}`;
}

async function uniClient(srv: TestServer, query = ''): Promise<RawClient> {
  return rawClient(uniUrl(srv, query), { autoPong: false });
}

describe('uni_websocket', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({
      uni_websocket: { enabled: true },
      client: { ping_interval: '1s', pong_timeout: '300ms' },
    });
  });
  after(() => srv.close());

  it('connects with a token in the first message and receives bare pushes', async () => {
    const c = await uniClient(srv);
    const token = await srv.token('u1', { channels: ['news:granted'] });
    c.send({ token, subs: { 'news:asked': {}, 'locked:refused': {} } });
    const first = await c.next();
    const connect = first['connect'] as { client: string; subs?: Record<string, unknown>; pong?: boolean };
    assert.ok(connect, `expected the connect push first, got ${JSON.stringify(first)}`);
    assert.equal(typeof connect.client, 'string');
    assert.equal(connect.pong, undefined, 'no pong is expected from a unidirectional client');
    assert.deepEqual(Object.keys(connect.subs ?? {}).sort(), ['news:asked', 'news:granted']);

    // Later messages are ignored: neither an answer nor a disconnect.
    c.send({ id: 1, publish: { channel: 'news:asked', data: {} } });
    for (const channel of ['news:granted', 'news:asked']) {
      const res = await srv.api('publish', { channel, data: { n: channel } });
      assert.equal(res.status, 200);
      const push = await c.waitFor((m) => m['channel'] === channel);
      assert.deepEqual((push['pub'] as { data: unknown }).data, { n: channel });
      assert.equal(push.push, undefined);
    }
    // One push per WebSocket message (uni_websocket.join_push_messages is off).
    assert.ok(c.frames.every((f) => !f.includes('\n')));
    c.close();
  });

  it('takes the connect request from cf_connect and sends {} pings without awaiting pongs', async () => {
    const token = await srv.token('u2', { channels: ['news:url'] });
    const c = await uniClient(srv, `?cf_connect=${encodeURIComponent(JSON.stringify({ token }))}`);
    const first = await c.next();
    assert.ok(first['connect'], JSON.stringify(first));
    // ping_interval 1s, pong_timeout 300ms: a bidirectional client that never pongs would be gone.
    await sleep(1600);
    assert.ok(c.pings >= 1, `expected a {} ping, got ${c.pings}`);
    assert.equal(c.open, true);
    await srv.api('publish', { channel: 'news:url', data: 1 });
    await c.waitFor((m) => m['channel'] === 'news:url');
    c.close();
  });

  it('disconnects a bad token with 3500: a disconnect push, then the close frame', async () => {
    const c = await uniClient(srv);
    c.send({ token: 'not-a-jwt' });
    const closed = await c.waitClose();
    assert.equal(closed.code, 3500);
    const push = c.messages.find((m) => m['disconnect'] !== undefined);
    assert.deepEqual(push?.['disconnect'], { code: 3500, reason: 'invalid token', reconnect: false });
  });

  it('disconnects an expired token with 3005', async () => {
    const c = await uniClient(srv);
    c.send({ token: await srv.token('u3', { ttlSeconds: -10 }) });
    assert.equal((await c.waitClose()).code, 3005);
  });

  it('closes a malformed connect request with 3501', async () => {
    for (const bad of ['not json', '[1,2]', '{"token":5}', '{"subs":{"a":1}}']) {
      const c = await uniClient(srv);
      c.send(bad);
      assert.equal((await c.waitClose()).code, 3501, bad);
    }
    const c = await uniClient(srv, '?cf_connect=%7Bbroken');
    assert.equal((await c.waitClose()).code, 3501);
  });
});

describe('uni_websocket disabled', () => {
  it('answers the upgrade 404 (the default)', async () => {
    const srv = await startTestServer();
    try {
      await assert.rejects(rawClient(uniUrl(srv)), /HTTP 404/);
    } finally {
      await srv.close();
    }
  });
});
