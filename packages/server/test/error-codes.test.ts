/**
 * Error codes as Centrifugo answers them, for the situations where Bulwark used to answer
 * otherwise (client protocol over real sockets, JSON and Protobuf; server API over HTTP):
 * an RPC without a route (108 not available, 104 for an unknown RPC namespace or where only
 * other handlers exist), the `ping` command (108), `send` without a message handler (3508), a
 * connect without credentials (3501), a command without an id (3501), a channel command without
 * a channel (3501), a name
 * channel_regex rejects (107), a non-ASCII name without a channel_regex (107, clients only), `refresh` without a token or under the refresh proxy (3501),
 * `sub_refresh` without a token (107), a token whose `expire_at` is past (110), and the API's `history_remove` where the namespace keeps
 * no history (108) and `unsubscribe` of an unknown namespace (102); and the anonymous
 * permission options, which extend the client and subscriber ones instead of standing alone.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { ConfigInput } from '../src/config/schema.js';
import {
  newCentrifuge,
  nextEvent,
  rawClient,
  startTestServer,
  type RawClient,
  type TestServer,
} from './helpers/server.js';

async function start(t: TestContext, over: ConfigInput = {}): Promise<TestServer> {
  const srv = await startTestServer(over);
  t.after(() => srv.close());
  return srv;
}

async function connectedRaw(t: TestContext, srv: TestServer, user = 'ann'): Promise<RawClient> {
  const c = await rawClient(srv.url);
  t.after(() => c.close());
  const reply = await c.connect(await srv.token(user));
  assert.ok(reply.connect, JSON.stringify(reply));
  return c;
}

/** sdkRpcError is the error code the real SDK (JSON or Protobuf) gets for `rpc(method)`. */
async function sdkRpcError(srv: TestServer, format: 'json' | 'protobuf', method: string): Promise<number> {
  const c = newCentrifuge(srv.url, { token: await srv.token('sdk') }, format);
  const ready = nextEvent(c, 'connected', 3000);
  c.connect();
  await ready;
  try {
    await c.rpc(method, {});
    return 0;
  } catch (err) {
    return (err as { code: number }).code;
  } finally {
    c.disconnect();
  }
}

describe('client protocol error codes as Centrifugo answers them', () => {
  it('rpc with no handler and no RPC proxy on the node: 108 not available, in JSON and Protobuf', async (t) => {
    const srv = await start(t);
    assert.equal(await sdkRpcError(srv, 'json', 'match.join'), 108);
    assert.equal(await sdkRpcError(srv, 'protobuf', 'match.join'), 108);
    const c = await connectedRaw(t, srv);
    assert.deepEqual((await c.call('rpc', { method: 'x' })).error, { code: 108, message: 'not available' });
  });

  it('rpc where handlers exist but not this one: 104; where RPC proxying is on: 104 for an unknown RPC namespace, 108 where its proxy is off', async (t) => {
    const withHandler = await start(t);
    withHandler.node.rpc('known', () => ({ ok: true }));
    assert.equal(await sdkRpcError(withHandler, 'json', 'unknown'), 104);
    assert.equal(await sdkRpcError(withHandler, 'protobuf', 'unknown'), 104);

    const proxied = await start(t, {
      rpc: {
        // Never called here: every method below is refused before any backend call.
        proxy: { endpoint: 'http://127.0.0.1:9/rpc' },
        namespaces: [
          { name: 'game', proxy_enabled: true },
          { name: 'quiet', proxy_enabled: false },
        ],
      },
    });
    const c = await connectedRaw(t, proxied);
    assert.equal((await c.call('rpc', { method: 'nope:x' })).error?.code, 104, 'unknown RPC namespace');
    assert.equal((await c.call('rpc', { method: 'quiet:x' })).error?.code, 108, 'namespace proxy off');
    assert.equal((await c.call('rpc', { method: 'plain' })).error?.code, 108, 'rpc.without_namespace proxy off');
  });

  it('the ping command is answered 108; the connection stays', async (t) => {
    const srv = await start(t);
    const c = await connectedRaw(t, srv);
    assert.deepEqual((await c.call('ping')).error, { code: 108, message: 'not available' });
    assert.ok((await c.call('presence_stats', { channel: 'open:x' })).presence_stats);
  });

  it('send without a message handler closes with 3508; with one, the message is taken', async (t) => {
    const srv = await start(t);
    const c = await connectedRaw(t, srv);
    c.send({ send: { data: { hi: 1 } } });
    assert.equal((await c.waitClose()).code, 3508);

    const taken: unknown[] = [];
    srv.node.onMessage((data) => void taken.push(data));
    const d = await connectedRaw(t, srv);
    d.send({ send: { data: { hi: 2 } } });
    assert.ok((await d.call('presence_stats', { channel: 'open:x' })).presence_stats, 'still connected');
    assert.deepEqual(taken, [{ hi: 2 }]);
  });

  it('connect without a token where anonymous connections are not allowed closes with 3501', async (t) => {
    const srv = await start(t);
    const c = await rawClient(srv.url);
    t.after(() => c.close());
    c.send({ id: 1, connect: {} });
    assert.equal((await c.waitClose()).code, 3501);
  });

  it('a command without an id (other than send) closes with 3501', async (t) => {
    const srv = await start(t);
    const c = await connectedRaw(t, srv);
    c.send({ subscribe: { channel: 'open:noid' } });
    assert.equal((await c.waitClose()).code, 3501);
  });

  it('a channel command with an empty channel closes with 3501', async (t) => {
    const srv = await start(t);
    const commands: [string, object][] = [
      ['subscribe', { channel: '' }],
      ['unsubscribe', { channel: '' }],
      ['publish', { channel: '', data: { n: 1 } }],
      ['presence', { channel: '' }],
      ['presence_stats', { channel: '' }],
      ['history', { channel: '' }],
      ['sub_refresh', { channel: '', token: 'x' }],
    ];
    for (const [method, body] of commands) {
      const c = await connectedRaw(t, srv);
      c.send({ id: 9, [method]: body });
      assert.equal((await c.waitClose()).code, 3501, method);
    }
  });

  it('a name its namespace channel_regex rejects is 107 (client and API); an unknown namespace stays 102', async (t) => {
    const srv = await start(t, {
      channel: {
        namespaces: [{ name: 'room', channel_regex: '^[a-z0-9]+$', allow_subscribe_for_client: true }],
      },
    });
    const c = await connectedRaw(t, srv);
    assert.deepEqual((await c.call('subscribe', { channel: 'room:ABC' })).error, {
      code: 107,
      message: 'bad request: channel name does not match channel_regex',
    });
    assert.ok((await c.call('subscribe', { channel: 'room:abc' })).subscribe);
    assert.equal((await c.call('subscribe', { channel: 'nope:abc' })).error?.code, 102);
    assert.equal((await srv.api('publish', { channel: 'room:ABC', data: 1 })).body.error.code, 107);
  });

  it('a non-ASCII channel name is 107 for clients where no channel_regex allows it; the API takes it', async (t) => {
    const srv = await start(t, {
      channel: {
        namespaces: [{ name: 'intl', channel_regex: '^.+$', allow_subscribe_for_client: true }],
      },
    });
    const c = await connectedRaw(t, srv);
    const refused = { code: 107, message: 'bad request: a non-ASCII channel name needs a channel_regex' };
    assert.deepEqual((await c.call('subscribe', { channel: 'chat:żółw' })).error, refused);
    assert.deepEqual((await c.call('publish', { channel: 'chat:żółw', data: 1 })).error, refused);
    assert.deepEqual((await c.call('history', { channel: 'chat:żółw' })).error, refused);
    assert.ok((await c.call('subscribe', { channel: 'intl:żółw' })).subscribe, 'a channel_regex decides');
    assert.ok(
      (await srv.api('publish', { channel: 'chat:żółw', data: 1 })).body.result,
      'the server API is not limited',
    );
  });

  it('refresh without a token, or while the refresh proxy prolongs the connection, closes with 3501', async (t) => {
    const srv = await start(t);
    const c = await connectedRaw(t, srv);
    c.send({ id: 5, refresh: { token: '' } });
    assert.equal((await c.waitClose()).code, 3501);

    const proxied = await start(t, {
      client: { proxy: { refresh: { enabled: true, endpoint: 'http://127.0.0.1:9/refresh' } } },
    });
    const d = await connectedRaw(t, proxied);
    d.send({ id: 5, refresh: { token: await proxied.token('ann') } });
    assert.equal((await d.waitClose()).code, 3501);
  });

  it('a token whose expire_at is already past: connect and subscribe are answered 110 expired', async (t) => {
    const srv = await start(t);
    const past = Math.floor(Date.now() / 1000) - 10;
    const c = await rawClient(srv.url);
    t.after(() => c.close());
    assert.deepEqual((await c.connect(await srv.token('ann', { expireAt: past }))).error, {
      code: 110,
      message: 'expired',
    });
    const d = await connectedRaw(t, srv, 'bob');
    const sub = await d.call('subscribe', {
      channel: 'chat:e',
      token: await srv.subToken('bob', 'chat:e', { expireAt: past }),
    });
    assert.deepEqual(sub.error, { code: 110, message: 'expired' });
    const later = Math.floor(Date.now() / 1000) + 60;
    const ok = await d.call('subscribe', {
      channel: 'chat:e',
      token: await srv.subToken('bob', 'chat:e', { expireAt: later }),
    });
    assert.equal(ok.subscribe?.expires, true, JSON.stringify(ok));
  });

  it('sub_refresh without a token is 107; not subscribed stays 103', async (t) => {
    const srv = await start(t);
    const c = await connectedRaw(t, srv);
    assert.equal((await c.call('sub_refresh', { channel: 'chat:r', token: 'x' })).error?.code, 103);
    assert.ok((await c.call('subscribe', { channel: 'chat:r' })).subscribe);
    assert.deepEqual((await c.call('sub_refresh', { channel: 'chat:r', token: '' })).error, {
      code: 107,
      message: 'bad request: token required',
    });
  });
});

describe('anonymous permissions as Centrifugo decides them (103 otherwise)', () => {
  it('allow_*_for_anonymous extends the client and subscriber options; alone it allows nothing', async (t) => {
    const srv = await start(t, {
      client: { allow_anonymous_connect_without_token: true },
      channel: {
        namespaces: [
          {
            // Only the anonymous flags: Centrifugo refuses everything here.
            name: 'anononly',
            history_size: 10,
            history_ttl: '60s',
            presence: true,
            allow_subscribe_for_anonymous: true,
            allow_publish_for_anonymous: true,
            allow_presence_for_anonymous: true,
            allow_history_for_anonymous: true,
          },
          {
            // Client and subscriber options without the anonymous flags: users only.
            name: 'users',
            history_size: 10,
            history_ttl: '60s',
            presence: true,
            allow_subscribe_for_client: true,
            allow_publish_for_subscriber: true,
            allow_presence_for_subscriber: true,
            allow_history_for_subscriber: true,
          },
          {
            name: 'both',
            allow_subscribe_for_client: true,
            allow_subscribe_for_anonymous: true,
            allow_publish_for_subscriber: true,
            allow_publish_for_anonymous: true,
          },
        ],
      },
    });
    const anon = await rawClient(srv.url);
    t.after(() => anon.close());
    assert.ok((await anon.connect()).connect);
    const code = async (method: string, body: object): Promise<number | undefined> =>
      (await anon.call(method, body)).error?.code;
    assert.equal(await code('subscribe', { channel: 'anononly:a' }), 103);
    assert.equal(await code('publish', { channel: 'anononly:a', data: 1 }), 103);
    assert.equal(await code('presence', { channel: 'anononly:a' }), 103);
    assert.equal(await code('history', { channel: 'anononly:a' }), 103);
    assert.equal(await code('subscribe', { channel: 'users:a' }), 103);
    assert.equal(await code('subscribe', { channel: 'both:a' }), undefined);
    assert.equal(await code('publish', { channel: 'both:a', data: 1 }), undefined, 'anonymous subscriber may publish');

    const user = await connectedRaw(t, srv, 'ann');
    assert.ok((await user.call('subscribe', { channel: 'users:a' })).subscribe);
    assert.equal((await user.call('publish', { channel: 'users:a', data: 1 })).error, undefined);
    assert.equal((await user.call('history', { channel: 'users:a' })).error, undefined);
    assert.equal((await user.call('subscribe', { channel: 'anononly:a' })).error?.code, 103);
  });
});

describe('server API error codes as Centrifugo answers them', () => {
  it('history_remove where the namespace keeps no history is 108; where it keeps one, {}', async (t) => {
    const srv = await start(t);
    assert.deepEqual((await srv.api('history_remove', { channel: 'news:x' })).body, {
      error: { code: 108, message: 'not available' },
    });
    assert.deepEqual((await srv.api('history_remove', { channel: 'chat:x' })).body, { result: {} });
  });

  it('unsubscribe from a channel of an unknown namespace is 102', async (t) => {
    const srv = await start(t);
    assert.deepEqual((await srv.api('unsubscribe', { user: 'ann', channel: 'nope:x' })).body, {
      error: { code: 102, message: 'unknown channel' },
    });
  });
});
