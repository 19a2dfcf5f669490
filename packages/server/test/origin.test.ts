/**
 * The Origin check of the WebSocket upgrade over real upgrades (issue 12, item 7): origins are
 * parsed as (scheme, host, port) and matched on those, so the raw-string tricks that passed a
 * wildcard (`#`, `?`, user info) are refused with 403, the same-origin rule compares the scheme
 * too, default ports are filled in, and patterns that are not origins are refused by config
 * validation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/load.js';
import { BulwarkError } from '../src/errors.js';
import { parseOrigin, parseOriginPattern } from '../src/util/origin.js';
import { rejectionsMetric } from './helpers/protection.js';
import { startTestServer, withTimeout, type TestServer } from './helpers/server.js';

/** upgradeStatus tries one upgrade with these request headers: 101 when accepted, else the HTTP status. */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return withTimeout(
    new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      ws.on('error', reject);
      ws.once('open', () => {
        ws.terminate();
        resolve(101);
      });
      ws.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
    }),
    5000,
    'upgrade',
  );
}

describe('origin: client.allowed_origins over real upgrades', () => {
  let srv: TestServer;
  const status = (origin: string, more: Record<string, string> = {}) => upgradeStatus(srv.url, { origin, ...more });

  before(async () => {
    srv = await startTestServer({
      client: {
        allowed_origins: ['https://*.games.example.com', 'https://play.example.com', 'http://localhost:3000'],
      },
    });
  });
  after(() => srv.close());

  it('refuses the raw-string tricks that passed the wildcard (403, counted)', async () => {
    const attacks = [
      'https://evil.io#.games.example.com',
      'https://evil.io?.games.example.com',
      'https://evil.io:1@x.games.example.com',
      'https://evil.io/.games.example.com',
      'https://evil.io\\.games.example.com',
      'https://evil.io%23.games.example.com',
      'https://games.example.com',
      'https://.games.example.com',
      'https://x.games.example.com.evil.io',
      'https://xgames.example.com',
      'https://play.example.com.evil.io',
      'https://play.example.com@evil.io',
      'null',
    ];
    const before = await rejectionsMetric(srv.httpUrl, 'origin');
    for (const origin of attacks) assert.equal(await status(origin), 403, origin);
    assert.equal(await rejectionsMetric(srv.httpUrl, 'origin'), before + attacks.length);
  });

  it('accepts subdomains of a wildcard, any depth, case-insensitively, with the default port or none', async () => {
    for (const origin of [
      'https://a.games.example.com',
      'https://eu.a.games.example.com',
      'HTTPS://A.Games.Example.COM',
      'https://a.games.example.com:443',
    ]) {
      assert.equal(await status(origin), 101, origin);
    }
  });

  it('matches scheme and port exactly: another scheme or port is another origin', async () => {
    assert.equal(await status('https://play.example.com'), 101);
    assert.equal(await status('https://play.example.com:443'), 101, 'the default port is the same origin');
    assert.equal(await status('http://play.example.com'), 403, 'scheme mismatch');
    assert.equal(await status('https://play.example.com:8443'), 403, 'port mismatch');
    assert.equal(await status('http://a.games.example.com'), 403, 'wildcard keeps the scheme');
    assert.equal(await status('https://a.games.example.com:8443'), 403, 'wildcard keeps the port');
    assert.equal(await status('http://localhost:3000'), 101);
    assert.equal(await status('http://localhost'), 403, 'no port means 80, not any');
    assert.equal(await status('http://localhost:3001'), 403);
  });

  it('same origin compares scheme, host and port with the request (X-Forwarded-Proto behind TLS)', async () => {
    const host = { host: 'chat.example.net' };
    assert.equal(await status('http://chat.example.net', host), 101, 'same origin over plain HTTP');
    assert.equal(await status('http://chat.example.net:80', host), 101, 'default port');
    assert.equal(await status('https://chat.example.net', host), 403, 'https page, but the request came over http');
    assert.equal(await status('http://chat.example.net:8080', host), 403, 'another port');
    const tls = { host: 'chat.example.net', 'x-forwarded-proto': 'https' };
    assert.equal(await status('https://chat.example.net', tls), 101, 'TLS terminated in front');
    assert.equal(await status('http://chat.example.net', tls), 403, 'an http page against a TLS endpoint');
    assert.equal(await status('https://chat.example.net#x', tls), 403, 'not an origin');
  });

  it('requests without Origin (SDKs outside a browser) pass', async () => {
    assert.equal(await upgradeStatus(srv.url, {}), 101);
  });
});

describe('origin: "*" allows every origin', () => {
  it('any origin, even one that does not parse', async (t) => {
    const srv = await startTestServer({ client: { allowed_origins: ['*'] } });
    t.after(() => srv.close());
    for (const origin of ['https://evil.io', 'null', 'https://evil.io#.games.example.com']) {
      assert.equal(await upgradeStatus(srv.url, { origin }), 101, origin);
    }
  });

  it('with no patterns, only the same origin', async (t) => {
    const srv = await startTestServer();
    t.after(() => srv.close());
    assert.equal(await upgradeStatus(srv.url, { origin: `http://127.0.0.1:${srv.port}` }), 101);
    assert.equal(await upgradeStatus(srv.url, { origin: `https://127.0.0.1:${srv.port}` }), 403);
    assert.equal(await upgradeStatus(srv.url, { origin: 'http://127.0.0.1' }), 403);
  });
});

describe('origin: parsing', () => {
  it('an Origin is scheme://host[:port] only', () => {
    assert.deepEqual(parseOrigin('https://A.example.com'), { scheme: 'https', host: 'a.example.com', port: '443' });
    assert.deepEqual(parseOrigin('http://[::1]:8080'), { scheme: 'http', host: '[::1]', port: '8080' });
    for (const bad of ['https://a.example.com/', 'https://u@a.example.com', 'https://a.example.com?', 'null', '']) {
      assert.equal(parseOrigin(bad), undefined, bad);
    }
  });

  it('config validation refuses patterns that are not origins', () => {
    for (const bad of [
      'https://foo*.example.com',
      'https://*example.com',
      'https://a.*.example.com',
      'https://*.example.com/path',
      'example.com',
      'https://*.example.com:*',
    ]) {
      assert.equal(typeof parseOriginPattern(bad), 'string', bad);
      assert.throws(
        () =>
          loadConfig({ object: { client: { allowed_origins: [bad], insecure: true }, http_api: { insecure: true } } }),
        (err: unknown) => err instanceof BulwarkError && err.message.includes('allowed_origins'),
        bad,
      );
    }
  });
});
