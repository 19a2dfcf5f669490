/**
 * The Protobuf format end to end, driven by the real `centrifuge` SDK's Protobuf build over
 * WebSocket: connect with a token, subscribe, publish from the client and the API, presence,
 * history, RPC, send, refresh, recovery after a forced disconnect, a server disconnect's code,
 * and a channel whose JSON and Protobuf subscribers get the same publications. Payloads are
 * bytes in Protobuf: the UTF-8 bytes of the JSON a JSON subscriber gets.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { Centrifuge, Options, PublicationContext, Subscription } from 'centrifuge';
import WebSocket from 'ws';
import { create, fromBinary } from '@bufbuild/protobuf';
import { sizeDelimitedEncode, sizeDelimitedPeek } from '@bufbuild/protobuf/wire';
import { CommandSchema, ReplySchema, type Reply } from '../src/protocol/gen/client_pb.js';
import { newCentrifuge, nextEvent, sleep, startTestServer, waitUntil, type TestServer } from './helpers/server.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
/** json reads a Protobuf payload: the UTF-8 bytes of a JSON value. */
const json = (data: unknown): unknown => JSON.parse(dec.decode(data as Uint8Array));
const bytes = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));

describe('Protobuf format with the centrifuge SDK (Protobuf build)', () => {
  let srv: TestServer;
  const messages: unknown[] = [];

  before(async () => {
    srv = await startTestServer({});
    srv.node.rpc('echo', (data, ctx) => ({ echo: data, user: ctx.user }));
    srv.node.onMessage((data) => {
      messages.push(data);
    });
  });
  after(() => srv.close());

  async function client(
    t: TestContext,
    user: string,
    opts: Partial<Options> = {},
    format: 'json' | 'protobuf' = 'protobuf',
  ): Promise<Centrifuge> {
    const c = newCentrifuge(srv.url, { token: await srv.token(user), ...opts }, format);
    t.after(() => c.disconnect());
    const ready = nextEvent(c, 'connected');
    c.connect();
    await ready;
    return c;
  }

  async function subscribed(
    c: Centrifuge,
    channel: string,
    opts: Parameters<Centrifuge['newSubscription']>[1] = {},
  ): Promise<{ sub: Subscription; pubs: PublicationContext[] }> {
    const sub = c.newSubscription(channel, opts);
    const pubs: PublicationContext[] = [];
    sub.on('publication', (p) => pubs.push(p));
    const ready = nextEvent(sub, 'subscribed');
    sub.subscribe();
    await ready;
    return { sub, pubs };
  }

  it('connects with a token', async (t) => {
    const c = newCentrifuge(srv.url, { token: await srv.token('alice') }, 'protobuf');
    t.after(() => c.disconnect());
    const ready = nextEvent(c, 'connected');
    c.connect();
    const ctx = await ready;
    assert.equal(ctx.transport, 'websocket');
    assert.match(ctx.client, /^[0-9a-f-]{36}$/);
    const session = srv.node.hub.session(ctx.client);
    assert.equal(session?.user, 'alice');
    assert.equal(session?.codec.format, 'protobuf');
  });

  it('a channel with JSON and Protobuf subscribers: both get every publication, from clients and the API', async (t) => {
    const ch = 'chat:mixed';
    const pb = await client(t, 'alice');
    const js = await client(t, 'bob', {}, 'json');
    const p = await subscribed(pb, ch);
    const j = await subscribed(js, ch);
    await pb.publish(ch, bytes({ from: 'protobuf', n: 1 }));
    await js.publish(ch, { from: 'json', n: 2 });
    const api = await srv.api('publish', { channel: ch, data: { from: 'api', n: 3 } });
    assert.equal(api.status, 200);
    const b64 = Buffer.from(JSON.stringify({ from: 'b64', n: 4 })).toString('base64');
    assert.equal((await srv.api('publish', { channel: ch, b64data: b64 })).status, 200);
    await waitUntil(() => p.pubs.length === 4 && j.pubs.length === 4, 3000, 'four publications each');
    const want = [
      { from: 'protobuf', n: 1 },
      { from: 'json', n: 2 },
      { from: 'api', n: 3 },
      { from: 'b64', n: 4 },
    ];
    assert.ok(
      p.pubs.every((x) => x.data instanceof Uint8Array),
      'Protobuf clients get bytes',
    );
    assert.deepEqual(
      p.pubs.map((x) => json(x.data)),
      want,
    );
    assert.deepEqual(
      j.pubs.map((x) => x.data),
      want,
    );
    assert.deepEqual(
      p.pubs.map((x) => x.offset),
      [1, 2, 3, 4],
    );
    assert.deepEqual(
      j.pubs.map((x) => x.offset),
      [1, 2, 3, 4],
    );
    // Publisher info travels in both formats (conn_info / chan_info are bytes in Protobuf).
    assert.equal(p.pubs[1]?.info?.user, 'bob');
    assert.equal(j.pubs[0]?.info?.user, 'alice');
  });

  it('presence, presence stats, history and join/leave', async (t) => {
    const ch = 'chat:presence-pb';
    const pb = await client(t, 'alice');
    const { sub } = await subscribed(pb, ch, { joinLeave: true });
    const joins: string[] = [];
    sub.on('join', (ctx) => joins.push(ctx.info.user));
    const other = await client(t, 'carol', {}, 'json');
    await subscribed(other, ch);
    await waitUntil(() => joins.includes('carol'), 2000, 'join of carol');
    const presence = await sub.presence();
    assert.deepEqual(
      Object.values(presence.clients)
        .map((c) => c.user)
        .sort(),
      ['alice', 'carol'],
    );
    const stats = await sub.presenceStats();
    assert.deepEqual(stats, { numClients: 2, numUsers: 2 });
    await srv.api('publish', { channel: ch, data: { n: 1 } });
    await srv.api('publish', { channel: ch, data: { n: 2 } });
    const h = await sub.history({ limit: 10 });
    assert.deepEqual(
      h.publications.map((x) => json(x.data)),
      [{ n: 1 }, { n: 2 }],
    );
    assert.equal(h.offset, 2);
    assert.ok(h.epoch.length > 0);
    const rev = await sub.history({ limit: 1, reverse: true });
    assert.deepEqual(
      rev.publications.map((x) => json(x.data)),
      [{ n: 2 }],
    );
  });

  it('RPC and send carry JSON as bytes; an unknown method is error 104', async (t) => {
    const pb = await client(t, 'alice');
    const res = await pb.rpc('echo', bytes({ hello: 'world' }));
    assert.deepEqual(json(res.data), { echo: { hello: 'world' }, user: 'alice' });
    await assert.rejects(pb.rpc('nope', bytes(1)), (err: { code: number }) => err.code === 104);
    await pb.send(bytes({ fire: 'and forget' }));
    await waitUntil(() => messages.length > 0, 2000, 'message handled');
    assert.deepEqual(messages.at(-1), { fire: 'and forget' });
  });

  it('a payload that is not JSON text is refused with 107; the connection stays', async (t) => {
    const pb = await client(t, 'alice');
    await subscribed(pb, 'chat:binary');
    await assert.rejects(
      pb.publish('chat:binary', new Uint8Array([0xff, 0x00, 0x01])),
      (err: { code: number }) => err.code === 107,
    );
    await pb.publish('chat:binary', bytes('still here'));
    assert.equal(pb.state, 'connected');
  });

  it('refreshes an expiring connection token with getToken', async (t) => {
    let calls = 0;
    const pb = await client(t, 'alice', {
      token: await srv.token('alice', { expireAt: Math.floor(Date.now() / 1000) + 1 }),
      getToken: async () => {
        calls++;
        return srv.token('alice', { expireAt: Math.floor(Date.now() / 1000) + 60 });
      },
    });
    let disconnected = false;
    pb.on('disconnected', () => (disconnected = true));
    await waitUntil(() => calls > 0, 3000, 'token refreshed');
    await sleep(300);
    assert.equal(disconnected, false);
    assert.equal(pb.state, 'connected');
  });

  it('recovers exactly the publications missed during a forced reconnect', async (t) => {
    const ch = 'chat:recover-pb';
    const pb = await client(t, 'dave');
    const { sub, pubs } = await subscribed(pb, ch);
    const resubscribed: Array<{ recovered: boolean; wasRecovering: boolean }> = [];
    sub.on('subscribed', (ctx) => resubscribed.push(ctx));
    for (let n = 1; n <= 5; n++) await srv.node.publish(ch, { n });
    await waitUntil(() => pubs.length === 5, 2000, 'first 5');
    const reconnecting = nextEvent(pb, 'connecting');
    pb.once('connecting', () => {
      for (let n = 6; n <= 25; n++) void srv.node.publish(ch, { n });
    });
    await srv.api('disconnect', { user: 'dave', disconnect: { code: 3011, reason: 'force reconnect' } });
    assert.equal((await reconnecting).code, 3011);
    await waitUntil(() => resubscribed.length === 1, 3000, 'resubscribed');
    assert.deepEqual(resubscribed[0] && [resubscribed[0].wasRecovering, resubscribed[0].recovered], [true, true]);
    await waitUntil(() => pubs.length >= 25, 3000, 'recovered 20');
    await sleep(20);
    assert.deepEqual(
      pubs.map((p) => (json(p.data) as { n: number }).n),
      Array.from({ length: 25 }, (_, i) => i + 1),
    );
  });

  it('a server disconnect reaches the SDK with its code and reason', async (t) => {
    const pb = await client(t, 'erin');
    const gone = nextEvent(pb, 'disconnected');
    await srv.api('disconnect', { user: 'erin', disconnect: { code: 4501, reason: 'banned' } });
    const ctx = await gone;
    assert.deepEqual([ctx.code, ctx.reason], [4501, 'banned']);
  });

  it('?format=protobuf selects Protobuf without a subprotocol (the Go, Swift, Java, Dart and C# SDKs)', async (t) => {
    const ws = new WebSocket(`${srv.url}?format=protobuf`);
    t.after(() => ws.terminate());
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const reply = new Promise<Reply>((resolve) =>
      ws.once('message', (data: Buffer, isBinary: boolean) => {
        assert.equal(isBinary, true, 'Protobuf replies are binary frames');
        const peek = sizeDelimitedPeek(data);
        assert.equal(peek.eof, false);
        resolve(
          fromBinary(
            ReplySchema,
            data.subarray(peek.offset as number, (peek.offset as number) + (peek.size as number)),
          ),
        );
      }),
    );
    const connect = create(CommandSchema, { id: 1, connect: { token: await srv.token('frank') } });
    ws.send(sizeDelimitedEncode(CommandSchema, connect));
    const r = await reply;
    assert.equal(r.id, 1);
    assert.ok((r.connect?.version ?? '') !== '');
    assert.match(r.connect?.client ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(r.error, undefined);
  });
});

describe('Protobuf pings', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ client: { ping_interval: '200ms', pong_timeout: '150ms' } });
  });
  after(() => srv.close());

  it('the SDK answers Protobuf pings with pongs: connected across many ping intervals', async (t) => {
    const c = newCentrifuge(srv.url, { token: await srv.token('alice') }, 'protobuf');
    t.after(() => c.disconnect());
    const ready = nextEvent(c, 'connected');
    c.connect();
    const { client } = await ready;
    let dropped = false;
    c.on('connecting', () => (dropped = true));
    await sleep(1200);
    assert.equal(dropped, false, 'a missed pong would close with 3012');
    assert.equal(srv.node.hub.session(client)?.state, 'connected');
  });
});
