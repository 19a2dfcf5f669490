/**
 * HTTP-streaming and SSE sockets taken over from Node's HTTP server after the head
 * (http/takeover.ts, transport/socket-sink.ts), over real sockets: what the takeover frees and
 * when it refuses (a plain node:http server); Bulwark's bytes on the wire (head, chunks, the
 * end, HTTP/1.0), read with a raw TCP client; the real `centrifuge` SDK on taken-over streams
 * (JSON and Protobuf HTTP-streaming, SSE) through publications, drain and shutdown; and a
 * client that goes away, or sends bytes after its request.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it, type TestContext } from 'node:test';
import { Centrifuge } from 'centrifuge';
import { Centrifuge as ProtobufCentrifuge } from 'centrifuge/build/protobuf';
import { EventSource } from 'eventsource';
import { takeOver, type TakenSocket } from '../src/http/takeover.js';
import { SocketSink } from '../src/transport/socket-sink.js';
import { ResponseSink } from '../src/transport/stream-sink.js';
import { HttpStreamTransport } from '../src/transport/transport-http-stream.js';
import { nextEvent, sleep, startTestServer, waitUntil, withTimeout, type TestServer } from './helpers/server.js';

/** RawConn is a TCP connection that collects what the server sends and sees it close. */
interface RawConn {
  socket: Socket;
  text(): string;
  ended: Promise<void>;
}

function raw(port: number, request: string): RawConn {
  const socket = tcpConnect(port, '127.0.0.1');
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  socket.on('error', () => undefined);
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(request);
  return { socket, text: () => got, ended };
}

/** listen starts a plain node:http server on a loopback port. */
async function listen(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  const srv = createServer(handler);
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    srv.closeAllConnections();
    srv.close();
  });
  return srv;
}

const portOf = (srv: Server) => (srv.address() as AddressInfo).port;
const get = (path: string, version = '1.1') => `GET ${path} HTTP/${version}\r\nHost: x\r\n\r\n`;

describe('takeOver on a node:http server', () => {
  it('frees the HTTP machinery; the socket outlives closeAllConnections and server.close()', async (t) => {
    let taken: TakenSocket | undefined;
    const srv = await listen(t, async (req, res) => {
      await null; // a route awaits before it streams: the request is parsed
      res.writeHead(200, { 'content-type': 'text/plain' });
      taken = takeOver(req, res);
      taken?.socket.on('error', () => undefined);
      taken?.socket.write('3\r\nabc\r\n');
    });
    const conn = raw(portOf(srv), get('/'));
    await waitUntil(() => conn.text().endsWith('3\r\nabc\r\n'), 3000, 'head and chunk');
    assert.ok(taken, 'taken over');
    assert.equal(taken.chunked, true);
    assert.match(
      conn.text(),
      /^HTTP\/1\.1 200 OK\r\ncontent-type: text\/plain\r\n.*Transfer-Encoding: chunked\r\n\r\n/s,
    );
    const socket = taken.socket as Socket & { parser?: unknown; _httpMessage?: unknown };
    assert.equal(socket.parser, null, 'the parser went back to the pool');
    assert.equal(socket._httpMessage, null, 'no response on the socket');
    const serverListeners = /socketOn|onSocket|onServerResponse/;
    for (const event of ['data', 'end', 'close', 'drain', 'error', 'timeout', 'pause', 'resume']) {
      const names = socket.listeners(event).map((fn) => fn.name);
      assert.ok(!names.some((n) => serverListeners.test(n)), `no server listener left on '${event}': ${names.join()}`);
    }
    assert.equal(socket.listenerCount('data'), 0, 'nobody reads the socket but its new owner');
    assert.equal(Object.hasOwn(socket, 'on'), false, 'the listener wrappers are gone');
    srv.closeAllConnections();
    // A parser left on the server's connection list without its socket makes close() throw.
    await new Promise<void>((resolve, reject) => {
      try {
        srv.close(() => resolve());
      } catch (err) {
        reject(err as Error);
      }
      socket.end('0\r\n\r\n');
    });
    assert.equal(socket.destroyed, true);
    assert.match(conn.text(), /3\r\nabc\r\n0\r\n\r\n$/);
  });

  it('refuses an incomplete request and one with another pipelined behind it; the response serves on', async (t) => {
    const outcomes: Array<boolean> = [];
    const srv = await listen(t, async (req, res) => {
      if (req.url === '/sync') {
        // Still inside the parse: the request is not complete yet.
        res.writeHead(200, { 'content-length': '4' });
        outcomes.push(takeOver(req, res) !== undefined);
        res.end('sync');
        return;
      }
      // Both are parsed meanwhile: the first is answered while the second waits behind it.
      await new Promise((r) => setTimeout(r, req.url === '/first' ? 50 : 100));
      res.writeHead(200, { 'content-length': '2' });
      const taken = takeOver(req, res);
      outcomes.push(taken !== undefined);
      if (taken) taken.socket.end('s!');
      else res.end('f!');
    });
    const sync = raw(portOf(srv), get('/sync'));
    await waitUntil(() => sync.text().endsWith('sync'), 3000, 'sync response');
    const piped = raw(portOf(srv), get('/first') + get('/second'));
    await waitUntil(() => piped.text().endsWith('s!'), 3000, 'both pipelined responses');
    assert.match(piped.text(), /f!HTTP\/1\.1 200 OK/);
    // The second, once it has the socket (the first finished) and nothing is behind it, is.
    assert.deepEqual(outcomes, [false, false, true], 'the first of two pipelined requests is not taken over');
  });

  it('an HTTP/1.0 request is taken over without chunked framing', async (t) => {
    let taken: TakenSocket | undefined;
    const srv = await listen(t, async (req, res) => {
      await null;
      res.writeHead(200, {});
      taken = takeOver(req, res);
      taken?.socket.end('bytes as they are');
    });
    const conn = raw(portOf(srv), get('/', '1.0'));
    await withTimeout(conn.ended, 3000, 'closed');
    assert.equal(taken?.chunked, false);
    assert.match(conn.text(), /\r\n\r\nbytes as they are$/);
    assert.doesNotMatch(conn.text(), /Transfer-Encoding/i);
  });
});

/** The head every stream response has, before its Date and framing headers. */
const streamHead = (contentType: string) =>
  `HTTP/1.1 200 OK\r\ncontent-type: ${contentType}\r\n` +
  'cache-control: private, no-cache, no-store, must-revalidate, max-age=0\r\npragma: no-cache\r\nexpires: 0\r\n' +
  'x-accel-buffering: no\r\nconnection: keep-alive\r\nDate: [^\r]+\r\n';

const badFrame = '{"push":{"disconnect":{"code":3501,"reason":"bad request","reconnect":false}}}';

describe('Bulwark streams on taken-over sockets', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({
      http_stream: { enabled: true },
      sse: { enabled: true },
      uni_http_stream: { enabled: true },
      client: { ping_interval: '1s', pong_timeout: '500ms' },
    });
  });
  after(() => srv.close());

  it("writes Node's head and chunked framing, ends with the last chunk and closes the connection", async () => {
    const body = '{not json';
    const post = `POST /connection/http_stream HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const hs = raw(srv.port, post);
    const sse = raw(srv.port, get('/connection/sse?cf_connect=%7Bnot'));
    const old = raw(srv.port, post.replace('HTTP/1.1', 'HTTP/1.0'));
    await withTimeout(Promise.all([hs.ended, sse.ended, old.ended]), 3000, 'the server closes each connection');
    const hex = (s: string) => Buffer.byteLength(s).toString(16);
    const chunked = 'Transfer-Encoding: chunked\r\n\r\n';
    assert.match(
      hs.text(),
      new RegExp(
        `^${streamHead('application/json')}${chunked}${hex(badFrame + '\n')}\r\n${esc(badFrame)}\n\r\n0\r\n\r\n$`,
      ),
    );
    const event = `data: ${badFrame}\n\n`;
    assert.match(
      sse.text(),
      new RegExp(
        `^${streamHead('text/event-stream; charset=utf-8')}${chunked}2\r\n\r\n\r\n${hex(event)}\r\n${esc(event)}\r\n0\r\n\r\n$`,
      ),
    );
    assert.match(old.text(), new RegExp(`^${streamHead('application/json')}\r\n${esc(badFrame)}\n$`));
  });

  it('a stream with a request pipelined behind it is served through its response, then the next request', async () => {
    const body = JSON.stringify({ token: await srv.token('piped') });
    const conn = raw(
      srv.port,
      `POST /connection/uni_http_stream HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
        get('/health'),
    );
    await waitUntil(() => conn.text().includes('"connect"'), 3000, 'connect push');
    const [session] = [...srv.node.hub.sessions()];
    assert.ok(session?.transport instanceof HttpStreamTransport && session.transport.sink instanceof ResponseSink);
    await srv.api('disconnect', { user: 'piped', disconnect: { code: 4500, reason: 'done' } });
    await waitUntil(
      () => /"code":4500.*\r\n0\r\n\r\nHTTP\/1\.1 200 OK\r\n/s.test(conn.text()),
      3000,
      'the health answer',
    );
    conn.socket.destroy();
    await waitUntil(() => srv.node.admission.open === 0, 3000, 'stream closed');
  });

  it('a client that closes its side, or sends bytes after its request, ends its stream', async () => {
    const open = async () => {
      const body = JSON.stringify({ token: await srv.token('raw') });
      const c = raw(
        srv.port,
        `POST /connection/uni_http_stream HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
      await waitUntil(() => c.text().includes('"connect"'), 3000, 'connect push');
      return c;
    };
    const quits = await open();
    const chatty = await open();
    assert.equal(srv.node.hub.numClients, 2);
    quits.socket.end();
    chatty.socket.write('GET / HTTP/1.1\r\n\r\n');
    await withTimeout(Promise.all([quits.ended, chatty.ended]), 3000, 'both connections closed');
    await waitUntil(() => srv.node.hub.numClients === 0 && srv.node.admission.open === 0, 3000, 'sessions gone');
  });
});

describe('the centrifuge SDK on taken-over streams', () => {
  it('JSON, Protobuf and SSE: publications, pings, then shutdown disconnects with 3001', async (t) => {
    const srv = await startTestServer({
      http_stream: { enabled: true },
      sse: { enabled: true },
      drain: { window: '200ms' },
      client: { ping_interval: '1s', pong_timeout: '500ms' },
    });
    t.after(() => srv.close());
    const clients = [
      sdk(t, srv, 'http_stream', await srv.token('hs')),
      sdk(t, srv, 'http_stream', await srv.token('pb'), true),
      sdk(t, srv, 'sse', await srv.token('sse')),
    ];
    await Promise.all(clients.map(connected));
    const transports = [...srv.node.hub.sessions()].map((s) => s.transport);
    assert.equal(transports.length, 3);
    for (const tr of transports) {
      assert.ok(tr instanceof HttpStreamTransport && tr.sink instanceof SocketSink, `${tr.name} is taken over`);
    }
    assert.equal(srv.node.admission.pending.size, 0, 'a stream is not a socket waiting for a request');
    assert.equal(srv.node.admission.open, 3);
    const got: unknown[][] = clients.map(() => []);
    for (const [i, c] of clients.entries()) {
      const sub = c.newSubscription(`news:takeover-${i}`);
      sub.on('publication', (p) => got[i]?.push(i === 1 ? JSON.parse(new TextDecoder().decode(p.data)) : p.data));
      sub.subscribe();
      await sub.ready(3000);
      // Larger than a socket write: many TCP segments, one chunk.
      await srv.api('publish', { channel: `news:takeover-${i}`, data: { n: i, blob: 'x'.repeat(60_000) } });
      await srv.api('publish', { channel: `news:takeover-${i}`, data: { n: i } });
    }
    await waitUntil(() => got.every((g) => g.length === 2), 3000, 'every client got its publications');
    assert.deepEqual(
      got.map((g) => g.map((d) => JSON.stringify(d).length)),
      [0, 1, 2].map((n) => [JSON.stringify({ n, blob: 'x'.repeat(60_000) }).length, JSON.stringify({ n }).length]),
    );
    // Server pings every second, answered through /emulation: the streams outlive pong_timeout.
    await sleep(1300);
    assert.ok(clients.every((c) => c.state === 'connected'));
    const codes = clients.map((c) => nextEvent(c, 'connecting', 5000).then((ctx) => ctx.code));
    await withTimeout(srv.node.shutdown(), 3000, 'shutdown');
    assert.deepEqual(await Promise.all(codes), [3001, 3001, 3001]);
    // The sockets' 'close' events follow the server's (a handle closes on the next turn).
    await waitUntil(() => srv.node.admission.open === 0, 1000, 'every stream closed');
  });
});

/** esc escapes a literal for a RegExp. */
function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** sdk makes a centrifuge client on one HTTP transport of `srv`, disconnected when the test ends. */
function sdk(t: TestContext, srv: TestServer, transport: 'http_stream' | 'sse', token: string, protobuf = false) {
  const Ctor = protobuf ? (ProtobufCentrifuge as unknown as typeof Centrifuge) : Centrifuge;
  const c = new Ctor([{ transport, endpoint: `${srv.httpUrl}/connection/${transport}` }], {
    token,
    emulationEndpoint: `${srv.httpUrl}/emulation`,
    fetch,
    readableStream: ReadableStream,
    eventsource: EventSource,
    minReconnectDelay: 50,
    maxReconnectDelay: 300,
    timeout: 3000,
  });
  t.after(() => c.disconnect());
  return c;
}

function connected(c: Centrifuge): Promise<unknown> {
  const ready = nextEvent(c, 'connected', 3000);
  c.connect();
  return ready;
}
