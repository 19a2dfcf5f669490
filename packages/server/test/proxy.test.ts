/**
 * The proxy to the game backend over HTTP (Centrifugo v6's proxy protocol): connect, refresh,
 * subscribe, publish, sub_refresh and RPC proxies against a small real backend on loopback,
 * with the real `centrifuge` SDK and a raw protocol client. Checks the request bodies the
 * backend receives, the passthrough of its errors and disconnects, and that every failure
 * (backend down, timeout, 5xx, malformed answer, a refusing guard) reaches the client as
 * error 100 with `temporary: true` without closing its connection.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/load.js';
import type { ConfigInput } from '../src/config/schema.js';
import type { ProxyGuard } from '../src/proxy/http-proxy-client.js';
import {
  connected,
  newCentrifuge,
  nextEvent,
  rawClient,
  sleep,
  startTestServer,
  waitUntil,
  type TestServer,
} from './helpers/server.js';

// ---------------------------------------------------------------- a tiny game backend

/** Seen is one request the backend received. */
interface Seen {
  path: string;
  body: Record<string, unknown>;
  headers: IncomingHttpHeaders;
}

/** RawReply answers with this status and body text instead of JSON. */
class RawReply {
  constructor(
    readonly status: number,
    readonly text: string,
  ) {}
}

type Handler = (body: Record<string, unknown>) => unknown;

/** Backend is an HTTP server on loopback answering proxy requests by path, recording them. */
interface Backend {
  url: string;
  seen: Seen[];
  /** seenOn returns the requests received on `path`. */
  seenOn(path: string): Seen[];
  close(): Promise<void>;
}

async function startBackend(routes: Record<string, Handler>): Promise<Backend> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const path = req.url ?? '/';
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        } catch {
          // recorded as {}: a test asserting the body will say so
        }
        seen.push({ path, body, headers: req.headers });
        const handler = routes[path];
        const answer = handler === undefined ? new RawReply(404, 'no route') : await handler(body);
        if (answer instanceof RawReply) {
          res.writeHead(answer.status, { 'content-type': 'text/plain' }).end(answer.text);
        } else {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    seenOn: (path) => seen.filter((s) => s.path === path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** closedPortUrl returns an http URL on loopback where nothing listens (a backend that is down). */
async function closedPortUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

const now = () => Math.floor(Date.now() / 1000);
const documentedBase = { transport: 'websocket', protocol: 'json', encoding: 'json' };

/** headerSocket is a `ws` WebSocket class that sends extra headers with the upgrade request. */
function headerSocket(headers: Record<string, string>): typeof WebSocket {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { headers });
    }
  } as unknown as typeof WebSocket;
}

// ---------------------------------------------------------------- config

describe('proxy config', () => {
  const base = { http_api: { insecure: true }, client: { insecure: true } };
  const problems = (object: ConfigInput): string => {
    try {
      loadConfig({ object });
      return '';
    } catch (err) {
      return (err as Error).message;
    }
  };

  it('an enabled proxy without endpoint is an error naming the key', () => {
    const msg = problems({ ...base, client: { insecure: true, proxy: { connect: { enabled: true } } } });
    assert.match(msg, /client\.proxy\.connect\.endpoint: required when client\.proxy\.connect\.enabled is true/);
    const ns = problems({ ...base, channel: { namespaces: [{ name: 'game', subscribe_proxy_enabled: true }] } });
    assert.match(ns, /channel\.namespaces\[0\]\.subscribe_proxy_enabled: needs channel\.proxy\.subscribe\.endpoint/);
    const rpc = problems({ ...base, rpc: { without_namespace: { proxy_enabled: true } } });
    assert.match(rpc, /rpc\.without_namespace\.proxy_enabled: needs rpc\.proxy\.endpoint/);
  });

  it('refuses dangling proxy names, gRPC endpoints and unknown keys', () => {
    const msg = problems({
      ...base,
      proxies: [{ name: 'p1', endpoint: 'grpc://backend:9000' }],
      channel: { namespaces: [{ name: 'game', publish_proxy_enabled: true, publish_proxy_name: 'nope' }] },
    });
    assert.match(msg, /proxies\[0\]\.endpoint: gRPC proxies are not supported/);
    assert.match(msg, /channel\.namespaces\[0\]\.publish_proxy_name: no proxy named "nope" in proxies\[\]/);
    assert.match(
      problems({ ...base, channel: { proxy: { publish: { binary_encoding: true } } } } as ConfigInput),
      /binary_encoding: unknown key/,
    );
  });

  it('the connect proxy makes connection token keys optional', () => {
    const cfg = loadConfig({
      object: {
        http_api: { insecure: true },
        client: { proxy: { connect: { enabled: true, endpoint: 'http://b/c' } } },
      },
    });
    assert.equal(cfg.client.proxy.connect.timeout, 1000);
    assert.match(problems({ http_api: { insecure: true } }), /client\.token\.hmac_secret_key: missing secret/);
  });

  it('static headers are settable from the environment as JSON', () => {
    const cfg = loadConfig({
      object: base,
      env: { BULWARK_RPC_PROXY_HTTP_STATIC_HEADERS: '{"X-Backend-Key":"s3cret"}' },
    });
    assert.deepEqual(cfg.rpc.proxy.http.static_headers, { 'X-Backend-Key': 's3cret' });
  });
});

// ---------------------------------------------------------------- events

describe('proxy to the backend', () => {
  let backend: Backend;
  let srv: TestServer;
  const connectAnswers: Array<Record<string, unknown>> = [];
  const guardCalls: string[] = [];
  let refuseRpc = false;
  const guard: ProxyGuard = (target, fn) => {
    guardCalls.push(target.name);
    if (refuseRpc && target.name === 'rpc.proxy') return Promise.reject(new Error('circuit open'));
    return fn(new AbortController().signal);
  };

  before(async () => {
    backend = await startBackend({
      '/connect': () => connectAnswers.shift() ?? { result: { user: 'anon-default' } },
      '/refresh': () => ({ result: { expire_at: now() + 3600, info: { refreshed: true } } }),
      '/subscribe': (b) => {
        if (b['channel'] === 'px:deny') return { error: { code: 1403, message: 'not your room' } };
        if (b['channel'] === 'px:kick') return { disconnect: { code: 4501, reason: 'cheater' } };
        if (b['channel'] === 'px:short') return { result: { expire_at: now() + 1 } };
        return { result: { info: { role: 'captain' }, data: { welcome: 'aboard' } } };
      },
      '/publish': (b) => {
        const data = b['data'] as { text?: string };
        if (data.text === 'forbidden') return { error: { code: 1409, message: 'bad words', temporary: false } };
        return { result: { data: { text: String(data.text).toUpperCase(), checked: true } } };
      },
      '/sub_refresh': () => ({ result: { expired: true } }),
      '/rpc': async (b) => {
        switch (b['method']) {
          case 'getAnswer':
            return { result: { data: { answer: 42, echo: b['data'] } } };
          case 'fail':
            return { error: { code: 1500, message: 'try later', temporary: true } };
          case 'slow':
            await sleep(1000);
            return { result: { data: 'late' } };
          case 'garbage':
            return new RawReply(200, 'this is not json');
          case 'badshape':
            return { disconnect: { code: 99, reason: 'x' } };
          case 'b64':
            return { result: { b64data: 'AAEC' } };
          case 'boom':
            return new RawReply(503, 'down for maintenance');
          default:
            return { result: {} };
        }
      },
    });
    const down = await closedPortUrl();
    srv = await startTestServer(
      {
        client: {
          proxy: {
            connect: {
              enabled: true,
              endpoint: `${backend.url}/connect`,
              http_headers: ['Cookie', 'X-Real-Ip'],
              http: { static_headers: { 'X-Backend-Key': 's3cret' } },
            },
            refresh: { enabled: true, endpoint: `${backend.url}/refresh` },
          },
        },
        channel: {
          proxy: {
            subscribe: { endpoint: `${backend.url}/subscribe` },
            publish: { endpoint: `${backend.url}/publish`, include_connection_meta: true },
            sub_refresh: { endpoint: `${backend.url}/sub_refresh` },
          },
          namespaces: [
            {
              name: 'px',
              subscribe_proxy_enabled: true,
              publish_proxy_enabled: true,
              sub_refresh_proxy_enabled: true,
              history_size: 10,
              history_ttl: '60s',
            },
            { name: 'dead', subscribe_proxy_enabled: true, subscribe_proxy_name: 'down' },
          ],
        },
        rpc: {
          proxy: { endpoint: `${backend.url}/rpc`, timeout: '200ms', include_connection_meta: true },
          without_namespace: { proxy_enabled: true },
          namespaces: [{ name: 'offline', proxy_enabled: true, proxy_name: 'down' }],
        },
        proxies: [{ name: 'down', endpoint: `${down}/anything`, timeout: '300ms' }],
      },
      { proxyGuard: guard },
    );
    srv.node.rpc('local', () => ({ from: 'node' }));
  });

  after(async () => {
    await srv.close();
    await backend.close();
  });

  it('connect proxy: the backend sets user, info, data, server-side subs and meta', async () => {
    connectAnswers.push({
      result: {
        user: '42',
        info: { name: 'Ann' },
        data: { welcome: true },
        channels: ['news:lobby'],
        subs: { 'open:team': { data: { team: 'red' }, info: { seat: 3 } } },
        meta: { tier: 'gold' },
      },
    });
    const c = newCentrifuge(srv.url, {
      data: { hello: 'world' },
      name: 'game-client',
      version: '1.2.3',
      websocket: headerSocket({ Cookie: 'session=abc', 'X-Real-Ip': '10.0.0.7', 'X-Not-Forwarded': 'no' }),
    });
    const subscribed: string[] = [];
    c.on('subscribed', (ctx) => subscribed.push(ctx.channel));
    const ready = nextEvent(c, 'connected');
    c.connect();
    const ctx = await ready;
    assert.deepEqual(ctx.data, { welcome: true });
    await waitUntil(() => subscribed.length === 2, 3000, 'server-side subscriptions');
    assert.deepEqual(subscribed.sort(), ['news:lobby', 'open:team']);

    const req = backend.seenOn('/connect').at(-1) as Seen;
    assert.deepEqual(req.body, {
      client: ctx.client,
      ...documentedBase,
      name: 'game-client',
      version: '1.2.3',
      data: { hello: 'world' },
    });
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers['cookie'], 'session=abc');
    assert.equal(req.headers['x-real-ip'], '10.0.0.7');
    assert.equal(req.headers['x-not-forwarded'], undefined, 'only http_headers are forwarded');
    assert.equal(req.headers['x-backend-key'], 's3cret', 'static header');

    // The connection is user 42 with the backend's info; its meta goes to proxies that include it.
    const presence = await srv.api('presence', { channel: 'open:team' });
    const entry = Object.values(presence.body.result.presence as Record<string, { user: string; conn_info: unknown }>);
    assert.deepEqual(
      entry.map((e) => [e.user, e.conn_info]),
      [['42', { name: 'Ann' }]],
    );
    const rpc = await c.rpc('getAnswer', { q: 1 });
    assert.deepEqual(rpc.data, { answer: 42, echo: { q: 1 } });
    const rpcReq = backend.seenOn('/rpc').at(-1) as Seen;
    assert.deepEqual(rpcReq.body, {
      client: ctx.client,
      ...documentedBase,
      user: '42',
      meta: { tier: 'gold' },
      method: 'getAnswer',
      data: { q: 1 },
    });
    c.disconnect();
  });

  it('connect proxy: error and disconnect of the backend pass through', async () => {
    connectAnswers.push({ error: { code: 1001, message: 'banned', temporary: false } });
    const a = await rawClient(srv.url);
    const reply = await a.connect();
    assert.deepEqual(reply.error, { code: 1001, message: 'banned' });
    a.close();

    connectAnswers.push({ error: { code: 1002, message: 'busy', temporary: true } });
    const b = await rawClient(srv.url);
    assert.deepEqual((await b.connect()).error, { code: 1002, message: 'busy', temporary: true });
    b.close();

    connectAnswers.push({ disconnect: { code: 4501, reason: 'unauthorized' } });
    const d = await rawClient(srv.url);
    d.send({ id: 1, connect: {} });
    assert.deepEqual(await d.waitClose(), { code: 4501, reason: 'unauthorized' });
  });

  it('connect proxy: a token connection does not call the backend', async () => {
    const before = backend.seenOn('/connect').length;
    const c = await connected(srv.url, { token: await srv.token('tokenuser') });
    assert.equal(backend.seenOn('/connect').length, before);
    c.disconnect();
  });

  it('subscribe proxy: allows with info and data, refuses with the backend error, disconnects', async () => {
    connectAnswers.push({ result: { user: 'sub-user' } });
    const c = await rawClient(srv.url);
    const conn = await c.connect();
    const ok = await c.call('subscribe', { channel: 'px:room1', data: { seat: 5 } });
    assert.deepEqual(ok.subscribe?.data, { welcome: 'aboard' });
    const req = backend.seenOn('/subscribe').at(-1) as Seen;
    assert.deepEqual(req.body, {
      client: conn.connect?.client,
      ...documentedBase,
      user: 'sub-user',
      channel: 'px:room1',
      data: { seat: 5 },
    });

    const denied = await c.call('subscribe', { channel: 'px:deny' });
    assert.deepEqual(denied.error, { code: 1403, message: 'not your room' });
    // A namespace without the subscribe proxy keeps its allow_* rules.
    assert.equal((await c.call('subscribe', { channel: 'locked:x' })).error?.code, 103);

    c.send({ id: 99, subscribe: { channel: 'px:kick' } });
    assert.deepEqual(await c.waitClose(), { code: 4501, reason: 'cheater' });
  });

  it('subscribe proxy with the real SDK: subscribed with the backend data', async () => {
    connectAnswers.push({ result: { user: 'sdk-user' } });
    const c = await connected(srv.url);
    const sub = c.newSubscription('px:sdk');
    const subscribed = nextEvent(sub, 'subscribed');
    sub.subscribe();
    assert.deepEqual((await subscribed).data, { welcome: 'aboard' });
    c.disconnect();
  });

  it('publish proxy: the backend changes the data or refuses; subscribers see its version', async () => {
    connectAnswers.push({ result: { user: 'writer', meta: { clan: 'owls' }, info: { nick: 'W' } } });
    const c = await rawClient(srv.url);
    const conn = await c.connect();
    await c.call('subscribe', { channel: 'px:chat' });
    const pub = await c.call('publish', { channel: 'px:chat', data: { text: 'hello' } });
    assert.equal(pub.error, undefined);
    const push = await c.waitFor((m) => m.push?.pub !== undefined, 3000, 'publication');
    assert.deepEqual(push.push?.pub?.data, { text: 'HELLO', checked: true });
    assert.deepEqual(push.push?.pub?.info?.chan_info, { role: 'captain' }, 'channel info from the subscribe proxy');
    const req = backend.seenOn('/publish').at(-1) as Seen;
    assert.deepEqual(req.body, {
      client: conn.connect?.client,
      ...documentedBase,
      user: 'writer',
      meta: { clan: 'owls' },
      channel: 'px:chat',
      data: { text: 'hello' },
    });

    const refused = await c.call('publish', { channel: 'px:chat', data: { text: 'forbidden' } });
    assert.deepEqual(refused.error, { code: 1409, message: 'bad words' });
    const history = await srv.api('history', { channel: 'px:chat', limit: -1 });
    assert.deepEqual(
      (history.body.result.publications as Array<{ data: unknown }>).map((p) => p.data),
      [{ text: 'HELLO', checked: true }],
    );
    c.close();
  });

  it('rpc proxy: result and error pass through; node.rpc handlers win; unknown namespaces are 104', async () => {
    connectAnswers.push({ result: { user: 'rpc-user' } });
    const c = await rawClient(srv.url);
    await c.connect();
    const before = backend.seenOn('/rpc').length;
    assert.deepEqual((await c.call('rpc', { method: 'local' })).rpc, { data: { from: 'node' } });
    assert.equal(backend.seenOn('/rpc').length, before, 'registered handler: no backend call');
    assert.deepEqual((await c.call('rpc', { method: 'fail' })).error, {
      code: 1500,
      message: 'try later',
      temporary: true,
    });
    assert.deepEqual((await c.call('rpc', { method: 'noop' })).rpc, {});
    assert.equal((await c.call('rpc', { method: 'nons:x' })).error?.code, 104);
    c.close();
  });

  it('backend down, timeout, 5xx and malformed answers are error 100 temporary; the client stays', async () => {
    connectAnswers.push({ result: { user: 'unlucky' } });
    const c = await rawClient(srv.url);
    await c.connect();
    const temporary = { code: 100, message: 'internal server error', temporary: true };
    const started = Date.now();
    assert.deepEqual((await c.call('rpc', { method: 'slow' })).error, temporary, 'timeout');
    assert.ok(Date.now() - started < 900, 'answered at the proxy timeout (200ms), not after the backend');
    assert.deepEqual((await c.call('rpc', { method: 'offline:x' })).error, temporary, 'backend down');
    assert.deepEqual((await c.call('rpc', { method: 'boom' })).error, temporary, 'HTTP 503');
    assert.deepEqual((await c.call('rpc', { method: 'garbage' })).error, temporary, 'not JSON');
    assert.deepEqual((await c.call('rpc', { method: 'badshape' })).error, temporary, 'invalid disconnect code');
    assert.deepEqual((await c.call('rpc', { method: 'b64' })).error, temporary, 'base64 fields');
    assert.deepEqual((await c.call('subscribe', { channel: 'dead:x' })).error, temporary, 'subscribe, backend down');
    assert.equal(c.open, true);
    assert.deepEqual((await c.call('rpc', { method: 'getAnswer' })).rpc?.data, { answer: 42 });
    c.close();

    connectAnswers.push({ result: { info: 'no user field' } });
    const m = await rawClient(srv.url);
    assert.deepEqual((await m.connect()).error, temporary, 'connect result without user');
    m.close();

    const metrics = await srv.node.metrics.registry.getSingleMetricAsString('bulwark_proxy_calls_total');
    for (const result of ['timeout', 'unavailable', 'http_error', 'malformed', 'ok', 'error', 'disconnect']) {
      assert.match(metrics, new RegExp(`result="${result}"`), result);
    }
    assert.match(metrics, /proxy="rpc",target="down",result="unavailable"/);
  });

  it('the guard sees every call by target name; its refusal is error 100 temporary', async () => {
    connectAnswers.push({ result: { user: 'guarded' } });
    const c = await rawClient(srv.url);
    await c.connect();
    assert.ok(guardCalls.includes('client.proxy.connect'));
    refuseRpc = true;
    try {
      const reply = await c.call('rpc', { method: 'getAnswer' });
      assert.deepEqual(reply.error, { code: 100, message: 'internal server error', temporary: true });
    } finally {
      refuseRpc = false;
    }
    assert.ok(guardCalls.includes('rpc.proxy'));
    const metrics = await srv.node.metrics.registry.getSingleMetricAsString('bulwark_proxy_calls_total');
    assert.match(metrics, /proxy="rpc",target="rpc.proxy",result="rejected"/);
    c.close();
  });

  it('refresh proxy: the backend prolongs an expiring connection; the client is not asked to', async () => {
    connectAnswers.push({ result: { user: 'short-lived', expire_at: now() + 1 } });
    const c = await rawClient(srv.url);
    const conn = await c.connect();
    assert.equal(conn.connect?.expires, undefined, 'server-side refresh: no expires/ttl for the client');
    await waitUntil(
      () => backend.seenOn('/refresh').some((s) => s.body['client'] === conn.connect?.client),
      4000,
      'refresh request',
    );
    const req = backend.seenOn('/refresh').find((s) => s.body['client'] === conn.connect?.client) as Seen;
    assert.deepEqual(req.body, { client: conn.connect?.client, ...documentedBase, user: 'short-lived' });
    await sleep(300);
    assert.equal(c.open, true);
    assert.equal((await c.call('rpc', { method: 'noop' })).error, undefined);
    c.close();
  });

  it('sub_refresh proxy: an expired answer unsubscribes with 2501', async () => {
    connectAnswers.push({ result: { user: 'sub-refresher' } });
    const c = await rawClient(srv.url);
    const conn = await c.connect();
    const sub = await c.call('subscribe', { channel: 'px:short' });
    assert.equal(sub.subscribe?.expires, undefined, 'server-side sub refresh: no expires/ttl for the client');
    const push = await c.waitFor((m) => m.push?.unsubscribe !== undefined, 4000, 'unsubscribe push');
    assert.equal(push.push?.channel, 'px:short');
    assert.equal(push.push?.unsubscribe?.code, 2501);
    const req = backend.seenOn('/sub_refresh').at(-1) as Seen;
    assert.deepEqual(req.body, {
      client: conn.connect?.client,
      ...documentedBase,
      user: 'sub-refresher',
      channel: 'px:short',
    });
    assert.equal(c.open, true);
    c.close();
  });
});

describe('refresh proxy: expired and failing backends', () => {
  it('expired disconnects with 3005; a failing backend keeps the connection and retries', async () => {
    let answer: unknown = { result: { expired: true } };
    const backend = await startBackend({
      '/connect': () => ({ result: { user: 'u', expire_at: now() + 1 } }),
      '/refresh': () => answer,
    });
    const srv = await startTestServer({
      client: {
        proxy: {
          connect: { enabled: true, endpoint: `${backend.url}/connect` },
          refresh: { enabled: true, endpoint: `${backend.url}/refresh` },
        },
      },
      proxy: { refresh_retry_interval: '300ms' },
    });
    try {
      const a = await rawClient(srv.url);
      await a.connect();
      assert.equal((await a.waitClose(4000)).code, 3005);

      answer = new RawReply(500, 'oops');
      const b = await rawClient(srv.url);
      await b.connect();
      const calls = () => backend.seenOn('/refresh').length;
      const first = calls();
      await waitUntil(() => calls() >= first + 2, 4000, 'a retried refresh');
      assert.equal(b.open, true, 'a failing refresh proxy does not disconnect');
      b.close();
    } finally {
      await srv.close();
      await backend.close();
    }
  });
});
