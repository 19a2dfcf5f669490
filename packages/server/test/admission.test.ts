/**
 * Connection admission over real sockets (incident 5): client.connection_limit and
 * client.connection_rate_limit refuse upgrades with HTTP 503 and a jittered Retry-After
 * before any WebSocket work, draining refuses everything, every refusal is counted in
 * bulwark_rejections_total{reason} and logged once per burst, and accepted clients are not
 * affected.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import WebSocket from 'ws';
import type { ConfigInput } from '../src/config/schema.js';
import { Node } from '../src/node.js';
import { Admission, rejectionResponse, retryAfterRange, writeRawResponse } from '../src/protection/admission.js';
import { rawClient, sleep, startTestServer, waitUntil, type RawClient } from './helpers/server.js';
import {
  assertAllReceive,
  assertRetryAfterIn,
  connectClient,
  rejectionsMetric,
  upgradeAttempt,
} from './helpers/protection.js';

describe('admission: client.connection_limit', () => {
  it('the 6th upgrade of a 5-connection node gets 503 + Retry-After; the 5 keep working; a freed slot is reused', async (t) => {
    const srv = await startTestServer({
      client: { connection_limit: 5 },
      protection: { retry_after_min: '2s', retry_after_max: '4s' },
    });
    t.after(() => srv.close());
    assert.equal(srv.node.admission.connectionLimit, 5);
    const clients = await Promise.all(Array.from({ length: 5 }, (_, i) => connectClient(srv, `u${i}`, 'chat:room')));
    t.after(() => clients.forEach((c) => c.close()));
    assert.equal(srv.node.admission.open, 5);

    const refused = await upgradeAttempt(srv.url);
    assertRetryAfterIn(refused, 2, 4);
    assert.equal(refused.headers.connection, 'close');
    assert.equal(refused.headers['content-length'], '0');
    assert.equal(refused.body, '');
    assert.equal(await rejectionsMetric(srv.httpUrl, 'connection_limit'), 1);
    assert.equal(srv.node.admission.open, 5, 'a refusal is never counted as open');

    await assertAllReceive(clients, clients[0] as RawClient, 'chat:room', 'still here');

    // One leaves: once the server saw the close, a new connection is accepted.
    (clients[4] as RawClient).close();
    await waitUntil(() => srv.node.admission.open === 4, 3000, 'the server to count the close');
    const newcomer = await connectClient(srv, 'newcomer', 'chat:room');
    t.after(() => newcomer.close());
    const five = [...clients.slice(0, 4), newcomer];
    await assertAllReceive(five, newcomer, 'chat:room', 'welcome');
    assert.equal((await upgradeAttempt(srv.url)).status, 503, 'full again');
    assert.equal(await rejectionsMetric(srv.httpUrl, 'connection_limit'), 2);
  });

  it('counts accepted WebSockets that have not sent connect yet', async (t) => {
    const srv = await startTestServer({ client: { connection_limit: 2 } });
    t.after(() => srv.close());
    const idle = await Promise.all([rawClient(srv.url), rawClient(srv.url)]);
    t.after(() => idle.forEach((c) => c.close()));
    assert.equal(srv.node.hub.numClients, 0, 'no session connected');
    assert.equal((await upgradeAttempt(srv.url)).status, 503);
    // Operators see the same count and limit in /metrics, to alert before the node is full.
    const metrics = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    assert.match(metrics, /^bulwark_admission_connections(\{[^}]*\})? 2$/m);
    assert.match(metrics, /^bulwark_admission_connection_limit(\{[^}]*\})? 2$/m);
  });

  it('refuses before the origin check (a full node answers 503, not 403)', async (t) => {
    const srv = await startTestServer({ client: { connection_limit: 1 } });
    t.after(() => srv.close());
    const held = await rawClient(srv.url);
    t.after(() => held.close());
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(srv.url, { headers: { origin: 'https://evil.example' } });
      ws.on('error', () => undefined);
      ws.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
    });
    assert.equal(status, 503);
  });
});

describe('admission: client.connection_rate_limit', () => {
  it('100 upgrades at once at 20/s: about 20 accepted, the rest 503; accepted clients unaffected; refills', async (t) => {
    const srv = await startTestServer({ client: { connection_rate_limit: 20 } });
    t.after(() => srv.close());
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => rawClient(srv.url)));
    const accepted = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    t.after(() => accepted.forEach((c) => c.close()));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    t.diagnostic(`${accepted.length} accepted, ${refused.length} refused`);
    // The bucket starts full (20, one second's worth) and refills 1 per 50 ms during the burst.
    assert.ok(accepted.length >= 20 && accepted.length <= 30, `${accepted.length} accepted`);
    for (const r of refused) assert.match(r, /upgrade refused: HTTP 503/);
    assert.equal(await rejectionsMetric(srv.httpUrl, 'connection_rate'), refused.length);

    // Every accepted client authenticates, subscribes and gets a publication.
    await Promise.all(
      accepted.map(async (c, i) => {
        const reply = await c.connect(await srv.token(`rate${i}`));
        assert.ok(reply.connect, JSON.stringify(reply));
        const sub = await c.call('subscribe', { channel: 'chat:rate' });
        assert.ok(sub.subscribe, JSON.stringify(sub));
      }),
    );
    await assertAllReceive(accepted, accepted[0] as RawClient, 'chat:rate', 'burst survived');
    assert.ok(
      accepted.every((c) => c.open),
      'no accepted client closed',
    );

    // A second later the bucket has refilled.
    await sleep(1100);
    const later = await rawClient(srv.url);
    later.close();
  });
});

describe('admission: draining', () => {
  it('refuses upgrades with 503 + Retry-After and counts reason="draining"', async (t) => {
    const srv = await startTestServer({
      drain: { window: '1s' },
      protection: { retry_after_min: '3s', retry_after_max: '5s' },
    });
    t.after(() => srv.close());
    // Ten clients keep the drain going for its 1 s window (one would leave at once).
    const held = await Promise.all(Array.from({ length: 10 }, (_, i) => connectClient(srv, `stays${i}`, 'chat:drain')));
    t.after(() => held.forEach((c) => c.close()));
    const shutdown = srv.node.shutdown();
    const refused = await upgradeAttempt(srv.url);
    assertRetryAfterIn(refused, 3, 5);
    assert.equal(await rejectionsMetric(srv.httpUrl, 'draining'), 1);
    await shutdown;
  });
});

describe('admission: Retry-After jitter', () => {
  it('spreads Retry-After over [retry_after_min, retry_after_max] across many refusals', async (t) => {
    const srv = await startTestServer({
      client: { connection_limit: 1 },
      protection: { retry_after_min: '1s', retry_after_max: '10s' },
    });
    t.after(() => srv.close());
    const held = await rawClient(srv.url);
    t.after(() => held.close());
    const attempts = await Promise.all(Array.from({ length: 100 }, () => upgradeAttempt(srv.url)));
    const values = attempts.map((a) => assertRetryAfterIn(a, 1, 10));
    const counts = new Map<number, number>();
    for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
    t.diagnostic(
      `Retry-After histogram: ${[...counts.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([s, n]) => `${s}s×${n}`)
        .join(' ')}`,
    );
    // Uniform over 10 values: each is expected ~10 times. These bounds fail with probability < 1e-9.
    assert.ok(counts.size >= 6, `only ${counts.size} distinct values`);
    assert.ok(Math.max(...counts.values()) <= 35, 'no value dominates');
  });

  it('retryAfterRange turns milliseconds into whole seconds, never below the minimum', () => {
    assert.deepEqual(retryAfterRange(1000, 10_000), [1, 10]);
    assert.deepEqual(retryAfterRange(1500, 2500), [2, 2]);
    assert.deepEqual(retryAfterRange(3000, 3000), [3, 3]);
    assert.deepEqual(retryAfterRange(0, 900), [0, 0]);
  });

  it('draws uniformly: the lowest and highest seconds are both reachable', () => {
    let r = 0;
    const fake = {
      config: {
        client: { connection_limit: 0, connection_rate_limit: 0 },
        protection: { retry_after_min: 1000, retry_after_max: 10_000 },
      },
      draining: false,
    } as unknown as ConstructorParameters<typeof Admission>[0];
    const admission = new Admission(fake, { random: () => r });
    assert.equal(admission.retryAfterSeconds(), 1);
    r = 0.999_999;
    assert.equal(admission.retryAfterSeconds(), 10);
    r = 0.5;
    assert.equal(admission.retryAfterSeconds(), 6);
  });

  it('rejectionResponse is a complete, bodiless HTTP 503', () => {
    assert.equal(
      rejectionResponse(7),
      'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\nRetry-After: 7\r\n\r\n',
    );
  });
});

describe('admission: logging', () => {
  it('100 refusals write one burst-log line; the next line carries the count in between', async (t) => {
    const lines: Array<Record<string, unknown>> = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
        done();
      },
    });
    const config: ConfigInput = {
      http_server: { address: '127.0.0.1', port: 0 },
      client: { token: { hmac_secret_key: 'admission-log-test-secret-0123456789' }, connection_limit: 1 },
      http_api: { key: 'admission-log-test-key' },
      drain: { window: '0s' },
      protection: { log_interval: '1s' },
    };
    const node = new Node(config, { logger: pino({ level: 'info' }, stream) });
    const { port } = await node.start();
    const url = `ws://127.0.0.1:${port}/connection/websocket`;
    const held = await rawClient(url);
    // Client first: shutdown does not disconnect a session that never sent connect (it is not
    // in the hub yet), so it would wait for client.stale_close_delay.
    t.after(async () => {
      held.close();
      await node.shutdown();
    });

    const attempts = await Promise.all(Array.from({ length: 100 }, () => upgradeAttempt(url)));
    assert.ok(attempts.every((a) => a.status === 503));
    const admissionLines = () => lines.filter((l) => l['kind'] === 'admission.connection_limit');
    const first = admissionLines();
    t.diagnostic(`${first.length} log line(s) for 100 refusals: ${JSON.stringify(first[0])}`);
    assert.ok(first.length >= 1 && first.length <= 2, `${first.length} lines`);
    assert.equal(first[0]?.['level'], 40, 'a warning');
    assert.equal(first[0]?.['connectionLimit'], 1);

    // After the interval, the next refusal logs again with the number suppressed meanwhile.
    await sleep(1100);
    assert.equal((await upgradeAttempt(url)).status, 503);
    const all = admissionLines();
    const suppressed = all.reduce((sum, l) => sum + Number(l['suppressed']), 0);
    assert.equal(all.length + suppressed, 101, 'every refusal is either a line or counted in one');
  });
});

describe('admission: raw refusals', () => {
  it('a socket error after the refusal (client reset) does not crash the server', async (t) => {
    // Node's HTTP server removes its socket error handler before 'upgrade': without the one
    // writeRawResponse adds, an ECONNRESET on a refused socket is an uncaught exception.
    let handled = 0;
    const server = createServer();
    server.on('upgrade', (_req, socket: net.Socket) => {
      writeRawResponse(socket, rejectionResponse(1));
      // Deterministically what a reset arriving before 'finish' does: an 'error' on the socket.
      socket.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
      handled++;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => server.close());
    const { port } = server.address() as AddressInfo;
    for (let i = 0; i < 20; i++) {
      const c = net.connect(port, '127.0.0.1', () => {
        c.write(
          'GET /connection/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
        );
        setTimeout(() => c.resetAndDestroy(), 5);
      });
      c.on('error', () => undefined);
    }
    await waitUntil(() => handled === 20, 3000, 'every refusal written');
    await sleep(100); // an unhandled ECONNRESET would surface as an uncaught exception here
  });
});
