/**
 * The HTTP transports with real clients over real sockets: the `centrifuge` SDK over
 * HTTP-streaming (JSON and its Protobuf build) and SSE (JSON, with the `eventsource` package
 * as Node's EventSource), with commands through /emulation; unidirectional HTTP-streaming read
 * with plain fetch and unidirectional SSE with an EventSource; and the bad input: emulation
 * requests for unknown sessions and nodes, malformed and oversize bodies, disabled transports,
 * a stream whose client stops reading, and streams nobody ends.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { Centrifuge, type Options } from 'centrifuge';
import { Centrifuge as ProtobufCentrifuge } from 'centrifuge/build/protobuf';
import { EventSource } from 'eventsource';
import {
  newCentrifuge,
  nextEvent,
  sleep,
  startTestServer,
  waitUntil,
  withTimeout,
  type TestServer,
} from './helpers/server.js';

type SdkTransport = 'http_stream' | 'sse';

/** sdk makes an SDK client on one HTTP transport of `srv`, disconnected when the test ends. */
function sdk(
  t: TestContext,
  srv: TestServer,
  transport: SdkTransport,
  opts: Partial<Options> & { protobuf?: boolean; emulationBase?: string } = {},
): Centrifuge {
  const { protobuf, emulationBase, ...rest } = opts;
  const Ctor = protobuf === true ? (ProtobufCentrifuge as unknown as typeof Centrifuge) : Centrifuge;
  const c = new Ctor([{ transport, endpoint: `${srv.httpUrl}/connection/${transport}` }], {
    emulationEndpoint: `${emulationBase ?? srv.httpUrl}/emulation`,
    fetch,
    readableStream: ReadableStream,
    eventsource: EventSource,
    minReconnectDelay: 50,
    maxReconnectDelay: 300,
    timeout: 3000,
    ...rest,
  });
  t.after(() => c.disconnect());
  return c;
}

async function connect(c: Centrifuge): Promise<{ client: string; transport: string }> {
  const ready = nextEvent(c, 'connected', 3000);
  c.connect();
  return ready;
}

/** lines reads newline-delimited JSON messages from a streaming response. */
function lineReader(res: Response): { next(ms?: number): Promise<unknown>; cancel(): Promise<void> } {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buf = '';
  const queue: unknown[] = [];
  return {
    async next(ms = 3000) {
      const deadline = Date.now() + ms;
      while (queue.length === 0) {
        const nl = buf.indexOf('\n');
        if (nl !== -1) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim() !== '') queue.push(JSON.parse(line));
          continue;
        }
        const r = await withTimeout(reader.read(), Math.max(1, deadline - Date.now()), 'stream line');
        if (r.done) throw new Error('stream ended');
        buf += decoder.decode(r.value, { stream: true });
      }
      return queue.shift();
    },
    cancel: () => reader.cancel().catch(() => undefined),
  };
}

const allTransports = {
  http_stream: { enabled: true },
  sse: { enabled: true },
  uni_http_stream: { enabled: true },
  uni_sse: { enabled: true },
};

describe('HTTP transports with the centrifuge SDK', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ ...allTransports, client: { ping_interval: '1s', pong_timeout: '500ms' } });
    srv.node.rpc('echo', (data) => ({ echoed: data }));
  });
  after(() => srv.close());

  const cases: Array<[SdkTransport, boolean]> = [
    ['http_stream', false],
    ['sse', false],
    ['http_stream', true],
  ];
  for (const [transport, protobuf] of cases) {
    it(`${transport} ${protobuf ? 'Protobuf' : 'JSON'}: token, subscribe, publish, presence, history, RPC, server disconnect`, async (t) => {
      // Protobuf payloads are bytes: JSON text as UTF-8.
      const enc = (v: unknown) => (protobuf ? new TextEncoder().encode(JSON.stringify(v)) : v);
      const dec = (d: unknown) => (protobuf ? (JSON.parse(new TextDecoder().decode(d as Uint8Array)) as unknown) : d);
      const c = sdk(t, srv, transport, { token: await srv.token(`u-${transport}`), protobuf });
      const ctx = await connect(c);
      assert.equal(ctx.transport, transport);
      const ch = `chat:${transport}-${protobuf}`;
      const sub = c.newSubscription(ch);
      const pubs: unknown[] = [];
      sub.on('publication', (p) => pubs.push(dec(p.data)));
      sub.subscribe();
      await sub.ready(3000);
      await sub.publish(enc({ from: 'client' }));
      assert.equal((await srv.api('publish', { channel: ch, data: { from: 'api' } })).status, 200);
      await waitUntil(() => pubs.length === 2, 3000, 'both publications');
      assert.deepEqual(pubs, [{ from: 'client' }, { from: 'api' }]);
      const presence = await sub.presence();
      assert.deepEqual(Object.keys(presence.clients), [ctx.client]);
      const history = await sub.history({ limit: 10 });
      assert.equal(history.publications.length, 2);
      const rpc = await c.rpc('echo', enc({ n: 1 }));
      assert.deepEqual(dec(rpc.data), { echoed: { n: 1 } });
      // Pings every second are answered through /emulation: the connection outlives pong_timeout.
      await sleep(1300);
      assert.equal(c.state, 'connected');
      // The server's disconnect (terminal code) reaches the SDK as a disconnect push.
      const gone = nextEvent(c, 'disconnected', 3000);
      await srv.api('disconnect', { user: `u-${transport}`, disconnect: { code: 4501, reason: 'bye' } });
      const d = await gone;
      assert.equal(d.code, 4501);
      assert.equal(d.reason, 'bye');
    });
  }

  it('http_stream: recovers what was published while a forced reconnect kept it away', async (t) => {
    const c = sdk(t, srv, 'http_stream', { token: await srv.token('rec') });
    await connect(c);
    const sub = c.newSubscription('chat:recover');
    const pubs: unknown[] = [];
    sub.on('publication', (p) => pubs.push(p.data));
    sub.subscribe();
    await sub.ready(3000);
    await srv.api('publish', { channel: 'chat:recover', data: { n: 0 } });
    await waitUntil(() => pubs.length === 1);
    const reconnecting = nextEvent(c, 'connecting', 3000);
    // 3011 force reconnect; publications in between are recovered on the next subscribe.
    await srv.api('disconnect', { user: 'rec', disconnect: { code: 3011, reason: 'force reconnect' } });
    await reconnecting;
    for (let n = 1; n <= 3; n++) await srv.api('publish', { channel: 'chat:recover', data: { n } });
    const resubscribed = await nextEvent(sub, 'subscribed', 3000);
    assert.equal(resubscribed.wasRecovering, true);
    assert.equal(resubscribed.recovered, true);
    await waitUntil(() => pubs.length === 4, 3000, 'recovered publications');
    assert.deepEqual(pubs, [{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }], 'none lost, none duplicated');
  });

  it('the connect result carries an emulation session that is not the client id', async () => {
    const res = await fetch(`${srv.httpUrl}/connection/http_stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 1, connect: { token: await srv.token('raw') } }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'private, no-cache, no-store, must-revalidate, max-age=0');
    const lines = lineReader(res);
    const reply = (await lines.next()) as { id: number; connect: { client: string; session: string; node: string } };
    assert.equal(reply.id, 1);
    assert.match(reply.connect.session, /^[A-Za-z0-9_-]{22}$/);
    assert.notEqual(reply.connect.session, reply.connect.client);
    assert.equal(reply.connect.node, srv.node.nodeId);
    // A command through /emulation: its reply arrives on the stream.
    const emu = await fetch(`${srv.httpUrl}/emulation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ node: reply.connect.node, session: reply.connect.session, data: '{"id":2,"ping":{}}' }),
    });
    assert.equal(emu.status, 204);
    assert.deepEqual(await lines.next(), { id: 2, error: { code: 108, message: 'not available' } });
    await lines.cancel();
  });
});

describe('unidirectional HTTP transports', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ ...allTransports, client: { ping_interval: '1s', pong_timeout: '500ms' } });
  });
  after(() => srv.close());

  it('uni_http_stream with fetch: the connect push first, then publications; pings need no pong', async () => {
    const res = await fetch(`${srv.httpUrl}/connection/uni_http_stream`, {
      method: 'POST',
      body: JSON.stringify({ token: await srv.token('uni-h', { channels: ['news:uni-h'] }) }),
    });
    assert.equal(res.status, 200);
    const lines = lineReader(res);
    const first = (await lines.next()) as {
      connect: { client: string; subs: Record<string, unknown>; pong?: boolean };
    };
    assert.ok(first.connect.client);
    assert.ok('news:uni-h' in first.connect.subs);
    assert.equal(first.connect.pong, undefined, 'a unidirectional client is not asked for pongs');
    await srv.api('publish', { channel: 'news:uni-h', data: { text: 'hi' } });
    assert.deepEqual(await lines.next(), { channel: 'news:uni-h', pub: { data: { text: 'hi' } } });
    // Two pings (`{}`) later the stream is still open: no pong was awaited.
    assert.deepEqual(await lines.next(2500), {});
    assert.deepEqual(await lines.next(2500), {});
    await srv.api('publish', { channel: 'news:uni-h', data: { text: 'still' } });
    assert.deepEqual(await lines.next(), { channel: 'news:uni-h', pub: { data: { text: 'still' } } });
    await lines.cancel();
  });

  it('uni_sse with EventSource: the connect push first, then publications', async (t) => {
    const url = new URL(`${srv.httpUrl}/connection/uni_sse`);
    url.searchParams.set(
      'cf_connect',
      JSON.stringify({ token: await srv.token('uni-s', { channels: ['news:uni-s'] }) }),
    );
    const es = new EventSource(url.toString());
    t.after(() => es.close());
    const events: Array<Record<string, unknown>> = [];
    es.onmessage = (e: { data: string }) => events.push(JSON.parse(e.data) as Record<string, unknown>);
    await waitUntil(() => events.length >= 1, 3000, 'connect push');
    assert.ok('connect' in (events[0] as object));
    await srv.api('publish', { channel: 'news:uni-s', data: { text: 'sse' } });
    await waitUntil(() => events.some((e) => 'pub' in e), 3000, 'publication');
    assert.deepEqual(
      events.find((e) => 'pub' in e),
      { channel: 'news:uni-s', pub: { data: { text: 'sse' } } },
    );
  });

  it('a refused unidirectional connect ends the stream with a disconnect push', async () => {
    const res = await fetch(`${srv.httpUrl}/connection/uni_http_stream`, { method: 'POST', body: '{"token":"bad"}' });
    assert.equal(res.status, 200);
    const lines = lineReader(res);
    const msg = (await lines.next()) as { disconnect: { code: number; reconnect: boolean } };
    assert.equal(msg.disconnect.code, 3500);
    assert.equal(msg.disconnect.reconnect, false);
    await assert.rejects(lines.next(1000), /stream ended/);
  });
});

describe('HTTP transports: bad input', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({
      ...allTransports,
      emulation: { max_request_body_size: 1024 },
      http_stream: { enabled: true, max_request_body_size: 1024 },
      client: { queue_max_size: 65_536, stale_close_delay: '500ms' },
      websocket: { close_timeout: '300ms' },
    });
  });
  after(() => srv.close());

  const emulate = (body: string | Buffer, type = 'application/json') =>
    fetch(`${srv.httpUrl}/emulation`, { method: 'POST', headers: { 'content-type': type }, body });

  it('/emulation: unknown session 204 (dropped), unknown node 404, malformed 400, oversize 413, GET 405', async () => {
    const session = 'AAAAAAAAAAAAAAAAAAAAAA';
    assert.equal((await emulate(JSON.stringify({ node: srv.node.nodeId, session, data: '{}' }))).status, 204);
    assert.equal((await emulate(JSON.stringify({ node: 'gone-node', session, data: '{}' }))).status, 404);
    assert.equal((await emulate('{not json')).status, 400);
    assert.equal((await emulate(JSON.stringify({ node: '', session: 1, data: '{}' }))).status, 400);
    assert.equal((await emulate(Buffer.from([0x0a, 0xff, 0x01]), 'application/octet-stream')).status, 400);
    assert.equal((await emulate(JSON.stringify({ session, data: 'x'.repeat(2000) }))).status, 413);
    assert.equal((await fetch(`${srv.httpUrl}/emulation`)).status, 405);
    const metrics = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    assert.match(metrics, /bulwark_emulation_requests_total\{result="unknown_session"[^}]*\} 1/);
    assert.match(metrics, /bulwark_emulation_requests_total\{result="bad_request"[^}]*\} 3/);
  });

  it('streams: oversize 413, no connect 400, wrong method 405, malformed frame closes 3501', async () => {
    const post = (path: string, body: string) => fetch(`${srv.httpUrl}${path}`, { method: 'POST', body });
    assert.equal((await post('/connection/http_stream', 'x'.repeat(2000))).status, 413);
    assert.equal((await post('/connection/http_stream', '')).status, 400);
    assert.equal((await fetch(`${srv.httpUrl}/connection/sse`)).status, 400);
    assert.equal((await fetch(`${srv.httpUrl}/connection/http_stream`)).status, 405);
    assert.equal((await post('/connection/uni_http_stream', '[1,2')).status, 400);
    const res = await post('/connection/http_stream', '{not json');
    assert.equal(res.status, 200);
    const lines = lineReader(res);
    assert.equal(((await lines.next()) as { push: { disconnect: { code: number } } }).push.disconnect.code, 3501);
  });

  it('a disabled transport is 404', async (t) => {
    const off = await startTestServer();
    t.after(() => off.close());
    for (const path of ['http_stream', 'sse', 'uni_http_stream', 'uni_sse']) {
      assert.equal((await fetch(`${off.httpUrl}/connection/${path}`, { method: 'POST', body: '{}' })).status, 404);
    }
    assert.equal((await fetch(`${off.httpUrl}/emulation`, { method: 'POST', body: '{}' })).status, 404);
  });

  it('a stream whose client stops reading is closed as slow (3008), and its socket released', async (t) => {
    const token = await srv.token('slow', { channels: ['news:slow'] });
    const { request } = await import('node:http');
    const req = request(`${srv.httpUrl}/connection/uni_http_stream`, { method: 'POST' }, (res) => {
      res.pause(); // never read: the socket's buffers fill up
      res.socket.pause();
    });
    req.on('error', () => undefined);
    req.end(JSON.stringify({ token }));
    t.after(() => req.destroy());
    await waitUntil(() => srv.node.hub.numClients === 1, 3000, 'connected');
    const data = { blob: 'x'.repeat(60_000) };
    for (let i = 0; i < 400 && srv.node.hub.numClients > 0; i++) await srv.node.publish('news:slow', data);
    await waitUntil(() => srv.node.hub.numClients === 0, 3000, 'slow client closed');
    const metrics = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    assert.match(metrics, /bulwark_disconnects_total\{code="3008"/);
    // Its disconnect push is never read: the socket is destroyed after websocket.close_timeout.
    await waitUntil(() => srv.node.admission.open === 0, 3000, 'stream ended');
  });

  it('a stream that never sends connect is closed as stale; open streams count against admission', async () => {
    // A bidirectional stream whose body is only a pong: never connected, closed after stale_close_delay.
    const res = await fetch(`${srv.httpUrl}/connection/http_stream`, { method: 'POST', body: '{}' });
    assert.equal(res.status, 200);
    const lines = lineReader(res);
    const msg = (await lines.next()) as { push: { disconnect: { code: number } } };
    assert.equal(msg.push.disconnect.code, 3502, 'stale');
    const body = JSON.stringify({ token: await srv.token('counted') });
    const open = await fetch(`${srv.httpUrl}/connection/uni_http_stream`, { method: 'POST', body });
    const l2 = lineReader(open);
    await l2.next();
    assert.equal(srv.node.admission.open, 1, 'the stream is counted as an open connection');
    await l2.cancel();
    await waitUntil(() => srv.node.admission.open === 0, 3000, 'uncounted when it closes');
  });
});

describe('drain reaches every transport', () => {
  it('shutdown disconnects Protobuf WebSocket, HTTP-streaming and SSE clients with 3001 (reconnect)', async (t) => {
    const srv = await startTestServer({
      drain: { window: '300ms' },
      http_stream: { enabled: true },
      sse: { enabled: true },
    });
    t.after(() => srv.close());
    const clients = [
      newCentrifuge(srv.url, { token: await srv.token('pb') }, 'protobuf'),
      sdk(t, srv, 'http_stream', { token: await srv.token('hs') }),
      sdk(t, srv, 'sse', { token: await srv.token('sse') }),
      sdk(t, srv, 'http_stream', { token: await srv.token('hspb'), protobuf: true }),
    ];
    t.after(() => clients.forEach((c) => c.disconnect()));
    await Promise.all(clients.map(connect));
    const codes = clients.map((c) => nextEvent(c, 'connecting', 5000).then((ctx) => ctx.code));
    await srv.node.shutdown();
    assert.deepEqual(await Promise.all(codes), [3001, 3001, 3001, 3001]);
  });
});
