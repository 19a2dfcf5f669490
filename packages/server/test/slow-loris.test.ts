/**
 * Slow-loris on the HTTP port (issue 12, item 3), over real sockets: a real `bulwark start`
 * under `ulimit -n 400` (so it holds 268 sockets) takes 450 connections that each send a
 * partial `GET /connection/websocket` and then a byte every 200 ms. Genuine WebSocket clients
 * and API calls must still get through while the attack runs (the longest-waiting partial
 * sockets are closed for them), every partial socket must be closed by
 * http_server.headers_timeout (408), both counted in bulwark_http_sockets_closed_total and
 * logged once per burst. Before the fix the partial sockets held every descriptor until Node's
 * ~95 s default: genuine connects were reset (ECONNRESET) and the API failed.
 *
 * In-process: request_timeout (a body that never completes) and keep_alive_timeout, and the
 * config rule between the timeouts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { describe, it } from 'node:test';
import { signConnectionToken } from '../src/auth/token-signer.js';
import { loadConfig } from '../src/config/load.js';
import { BulwarkError } from '../src/errors.js';
import { callApi, startBulwark, writeConfigFile } from './helpers/process.js';
import { baseNamespaces, rawClient, sleep, startTestServer, waitUntil, type RawClient } from './helpers/server.js';

/** The open-file limit of the attacked node: floor((400 − 64) / 1.25) = 268 sockets. */
const NOFILE = 400;
const CAPACITY = 268;
const ATTACKERS = 450;
const HEADERS_TIMEOUT_MS = 3000;

/** getText GETs `url` on a connection of its own, closed after the answer (no kept-alive socket left behind). */
function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/** metric reads one sample of `name` (with `label` in its labels, if given) from /metrics; 0 when absent. */
async function metric(httpUrl: string, name: string, label = ''): Promise<number> {
  const text = await getText(`${httpUrl}/metrics`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (label !== '' && !line.includes(label)) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/** A partial-request socket of the attack: when it closed, and whether it was answered (408). */
interface Loris {
  readonly openedAt: number;
  closedAt: number | undefined;
  answered: string;
}

/** slowLoris opens `n` sockets that send a partial upgrade request, then one byte every `dripMs`. */
async function slowLoris(port: number, n: number, dripMs: number): Promise<{ all: Loris[]; stop(): void }> {
  const partial =
    `GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
    'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n';
  const all: Loris[] = [];
  const sockets: net.Socket[] = [];
  const connected: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const l: Loris = { openedAt: performance.now(), closedAt: undefined, answered: '' };
    const s = net.connect(port, '127.0.0.1');
    all.push(l);
    sockets.push(s);
    s.on('error', () => undefined);
    s.setEncoding('latin1').on('data', (d: string) => (l.answered += d));
    // The drip starts once the partial request is written: on a busy machine a connect can take
    // longer than one drip, and a byte written before the request line would make it a bad
    // request (400, closed at once) instead of a slow one.
    let drip: NodeJS.Timeout | undefined;
    s.once('close', () => {
      clearInterval(drip);
      l.closedAt = performance.now();
    });
    connected.push(
      new Promise((resolve) => {
        s.once('connect', () =>
          s.write(partial, () => {
            if (!s.destroyed) drip = setInterval(() => s.write('X'), dripMs);
            resolve();
          }),
        );
        s.once('close', () => resolve());
      }),
    );
  }
  await Promise.all(connected);
  return { all, stop: () => sockets.forEach((s) => s.destroy()) };
}

describe('slow-loris: partial requests under a low open-file limit', () => {
  it('genuine clients and the API get through; partial sockets are closed oldest first, then by the header timeout', async (t) => {
    const secret = randomBytes(24).toString('hex');
    const apiKey = randomBytes(24).toString('hex');
    const cfg = writeConfigFile({
      http_server: {
        address: '127.0.0.1',
        headers_timeout: `${HEADERS_TIMEOUT_MS}ms`,
        request_timeout: '4s',
        keep_alive_timeout: '500ms',
      },
      log: { level: 'info' },
      client: { token: { hmac_secret_key: secret } },
      http_api: { key: apiKey },
      drain: { window: '0s' },
      protection: { log_interval: '1m' },
      channel: { namespaces: baseNamespaces.filter((ns) => ns.name === 'chat') },
    });
    t.after(() => cfg.remove());
    const proc = await startBulwark(cfg.path, { nofile: NOFILE }, t);
    assert.equal(await metric(proc.httpUrl, 'bulwark_admission_connection_limit'), CAPACITY);

    const attack = await slowLoris(proc.port, ATTACKERS, 200);
    t.after(() => attack.stop());
    const attackStarted = Math.min(...attack.all.map((l) => l.openedAt));

    // While the attack holds every socket the node can hold: genuine players connect,
    // subscribe and receive a publication from the API; the API answers every call.
    const clients: RawClient[] = [];
    t.after(() => clients.forEach((c) => c.close()));
    await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const c = await rawClient(proc.url);
        clients.push(c);
        assert.ok((await c.connect(await signConnectionToken({ secret, user: `p${i}` }))).connect);
        assert.ok((await c.call('subscribe', { channel: 'chat:loris' })).subscribe);
      }),
    );
    const infos = await Promise.all(Array.from({ length: 5 }, () => callApi(proc.httpUrl, apiKey, 'info')));
    assert.deepEqual(
      infos.map((r) => r.status),
      [200, 200, 200, 200, 200],
    );
    const pub = await callApi(proc.httpUrl, apiKey, 'publish', { channel: 'chat:loris', data: { n: 1 } });
    assert.equal(pub.status, 200, JSON.stringify(pub.body));
    await Promise.all(clients.map((c) => c.waitFor((m) => m.push?.channel === 'chat:loris')));
    const pending = await metric(proc.httpUrl, 'bulwark_http_pending_sockets');
    const genuineDone = performance.now();
    const stillHeld = attack.all.filter((l) => l.closedAt === undefined).length;
    t.diagnostic(`genuine checks done ${Math.round(genuineDone - attackStarted)} ms into the attack`);
    t.diagnostic(`${stillHeld} partial sockets held then; ${pending} pending at the node`);
    assert.ok(genuineDone - attackStarted < HEADERS_TIMEOUT_MS, 'the checks ran while the attack held its sockets');
    assert.ok(stillHeld >= CAPACITY - 20, `${stillHeld} partial sockets still held`);
    // Never more than the node holds: 268 sockets, the 10 WebSockets among them.
    assert.ok(pending <= CAPACITY - clients.length + 1, `${pending} pending`);
    assert.ok(pending >= CAPACITY - clients.length - 20, `${pending} pending`);

    // Every partial socket is closed: the oldest at once for the newer ones, the rest by the
    // header timeout (checked every headers_timeout / 4), answered 408.
    await waitUntil(() => attack.all.every((l) => l.closedAt !== undefined), HEADERS_TIMEOUT_MS + 3000, 'all closed');
    const evicted = attack.all.filter((l) => l.answered === '');
    const timedOut = attack.all.filter((l) => l.answered.startsWith('HTTP/1.1 408 '));
    assert.equal(evicted.length + timedOut.length, ATTACKERS, 'closed unanswered (evicted) or with 408');
    assert.ok(evicted.length >= ATTACKERS - CAPACITY, `${evicted.length} evicted`);
    for (const l of timedOut) {
      const lifetime = (l.closedAt as number) - l.openedAt;
      assert.ok(lifetime >= HEADERS_TIMEOUT_MS - 50, `closed by the timeout after ${Math.round(lifetime)} ms`);
      assert.ok(lifetime <= HEADERS_TIMEOUT_MS + HEADERS_TIMEOUT_MS / 4 + 1000, `held ${Math.round(lifetime)} ms`);
    }
    // The oldest went first: every evicted socket opened before every survivor of the burst.
    const lastEvicted = Math.max(...evicted.map((l) => l.openedAt));
    const firstKept = Math.min(...timedOut.map((l) => l.openedAt));
    assert.ok(
      evicted.filter((l) => l.openedAt > firstKept).length <= clients.length + 6,
      `oldest first (last evicted opened at ${lastEvicted}, first kept at ${firstKept})`,
    );

    const closedMetric = (reason: string) =>
      metric(proc.httpUrl, 'bulwark_http_sockets_closed_total', `reason="${reason}"`);
    assert.equal(await closedMetric('fd_pressure'), evicted.length);
    assert.equal(await closedMetric('headers_timeout'), timedOut.length);
    // The API calls' kept-alive connections wait for a next request until keep_alive_timeout.
    let left = -1;
    for (let i = 0; i < 20 && left !== 0; i++) {
      left = await metric(proc.httpUrl, 'bulwark_http_pending_sockets');
      if (left !== 0) await sleep(100);
    }
    assert.equal(left, 0, 'no socket left waiting for a request');
    assert.ok(
      clients.every((c) => c.open),
      'no genuine client was closed',
    );

    // One log line per burst and kind, not one per socket.
    const lines = proc.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const fdLines = lines.filter((l) => l['kind'] === 'http.fd_pressure');
    const timeoutLines = lines.filter((l) => l['kind'] === 'http.headers_timeout');
    assert.equal(fdLines.length, 1, 'one fd_pressure line');
    assert.equal(timeoutLines.length, 1, 'one headers_timeout line');
    assert.equal(fdLines[0]?.['socketCapacity'], CAPACITY);
    assert.equal(fdLines[0]?.['level'], 40, 'warn');
    await proc.stop();
  });
});

describe('slow-loris: request and keep-alive timeouts', () => {
  it('a request body that never completes is closed with 408 after http_server.request_timeout', async (t) => {
    const srv = await startTestServer({ http_server: { headers_timeout: '300ms', request_timeout: '600ms' } });
    t.after(() => srv.close());
    const s = net.connect(srv.port, '127.0.0.1');
    t.after(() => s.destroy());
    let answer = '';
    s.setEncoding('latin1').on('data', (d: string) => (answer += d));
    const closed = new Promise<number>((resolve) => s.once('close', () => resolve(performance.now())));
    const start = performance.now();
    s.write(
      `POST /api/info HTTP/1.1\r\nHost: x\r\nX-API-Key: ${srv.apiKey}\r\nContent-Type: application/json\r\n` +
        'Content-Length: 100\r\n\r\n{',
    );
    const at = await closed;
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.ok(at - start >= 550 && at - start < 2000, `closed after ${Math.round(at - start)} ms`);
    const m = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    assert.match(m, /^bulwark_http_sockets_closed_total\{reason="request_timeout"[^}]*\} 1$/m);
  });

  it('an idle kept-alive connection is closed after http_server.keep_alive_timeout; a used one is not', async (t) => {
    const srv = await startTestServer({ http_server: { keep_alive_timeout: '300ms' } });
    t.after(() => srv.close());
    const s = net.connect(srv.port, '127.0.0.1');
    t.after(() => s.destroy());
    let answer = '';
    s.setEncoding('latin1').on('data', (d: string) => (answer += d));
    const closed = new Promise<number>((resolve) => s.once('close', () => resolve(performance.now())));
    s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitUntil(() => answer.includes('\r\n\r\n'), 2000, 'the answer');
    const answeredAt = performance.now();
    assert.match(answer, /^HTTP\/1\.1 200 /);
    await sleep(150);
    assert.equal(s.destroyed, false, 'still open within the timeout');
    const at = await closed;
    assert.ok(at - answeredAt >= 250 && at - answeredAt < 1500, `closed ${Math.round(at - answeredAt)} ms after`);
  });

  it('config: request_timeout below headers_timeout, or a zero timeout, is refused', () => {
    for (const http_server of [
      { headers_timeout: '5s', request_timeout: '2s' },
      { headers_timeout: '0s' },
      { keep_alive_timeout: '0s' },
    ]) {
      assert.throws(
        () => loadConfig({ object: { http_server, client: { insecure: true }, http_api: { insecure: true } } }),
        (err: unknown) => err instanceof BulwarkError && err.message.includes('http_server.'),
        JSON.stringify(http_server),
      );
    }
  });
});
