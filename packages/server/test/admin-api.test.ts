/**
 * The operator console's door (no browser): off by default; a short or missing password or
 * secret refuses to start; the page is served under a strict Content-Security-Policy; login
 * attempts are limited per address and logged; every console call needs a valid session token
 * in a header (a connection token signed with the client secret is not one); a console action
 * runs the server API method and is logged with the session that made it; on the internal
 * port when one is set.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import { pino } from 'pino';
import { signConnectionToken } from '../src/auth/token-signer.js';
import { loadConfig } from '../src/config/load.js';
import type { ConfigInput } from '../src/config/schema.js';
import type { BulwarkError } from '../src/errors.js';
import { Node } from '../src/node.js';
import { freePort } from './helpers/redis.js';

const password = 'correct horse battery';
const adminSecret = randomBytes(32).toString('hex');
const clientSecret = randomBytes(24).toString('hex');

/** consoleNode starts a node with the console on, logging into `lines`. */
async function consoleNode(
  t: TestContext,
  over: Record<string, unknown> = {},
): Promise<{ node: Node; base: string; publicBase: string; lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const node = new Node(
    {
      http_server: { port: 0, address: '127.0.0.1', ...((over['http_server'] as object) ?? {}) },
      client: { token: { hmac_secret_key: clientSecret } },
      http_api: { key: randomBytes(16).toString('hex') },
      admin: {
        enabled: true,
        password,
        secret: adminSecret,
        login_attempts_per_minute: 3,
        ...((over['admin'] as object) ?? {}),
      },
      channel: { namespaces: [{ name: 'chat', history_size: 10, history_ttl: '60s' }] },
    } as ConfigInput,
    { logger: pino({ level: 'info' }, sink) },
  );
  const { port } = await node.start();
  t.after(() => node.shutdown());
  const internal = node.internalAddress?.port;
  return { node, base: `http://127.0.0.1:${internal ?? port}`, publicBase: `http://127.0.0.1:${port}`, lines };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- console replies are free-form JSON
async function post(base: string, path: string, body: unknown, token?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}/admin/api/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

describe('admin console: configuration', () => {
  it('is off by default and refuses a missing, short or reused password or secret', async (t) => {
    const node = new Node({ http_server: { port: 0 }, client: { insecure: true }, http_api: { insecure: true } });
    const { port } = await node.start();
    t.after(() => node.shutdown());
    assert.equal((await fetch(`http://127.0.0.1:${port}/admin`)).status, 404);

    const base = { client: { insecure: true }, http_api: { insecure: true } };
    const cases: [object, RegExp][] = [
      [{ enabled: true }, /admin\.password: missing secret[\s\S]*admin\.secret: missing secret/],
      [{ enabled: true, password: 'short', secret: adminSecret }, /admin\.password: must have at least 12 characters/],
      [{ enabled: true, password, secret: 'too-short' }, /admin\.secret: must have at least 32 characters/],
      [
        { enabled: true, password: 'x'.repeat(40), secret: 'x'.repeat(40) },
        /admin\.secret: must differ from admin\.password/,
      ],
    ];
    for (const [admin, message] of cases) {
      assert.throws(
        () => loadConfig({ object: { ...base, admin } }),
        (err: BulwarkError) => err.code === 'BW_ERR_CONFIG_INVALID' && message.test(err.message),
        message.source,
      );
    }
  });
});

describe('admin console: door', () => {
  it('serves the page under a strict CSP and answers nothing without a session', async (t) => {
    const { base } = await consoleNode(t);
    const page = await fetch(`${base}/admin`);
    assert.equal(page.status, 200);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/, 'no inline script, no eval');
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(await page.text(), /<script>|onclick=|javascript:/i, 'no inline script in the page');
    for (const path of ['overview', 'call', 'user']) {
      assert.equal((await post(base, path, { method: 'info' })).status, 401, path);
      assert.equal((await post(base, path, { method: 'info' }, 'not-a-token')).status, 401, path);
    }
    // A connection token signed with the client secret is no console session.
    const clientToken = await signConnectionToken({ secret: clientSecret, user: 'admin' });
    assert.equal((await post(base, 'overview', {}, clientToken)).status, 401);
  });

  it('limits and logs login attempts per address, and logs each action with its session', async (t) => {
    const { base, lines } = await consoleNode(t);
    assert.equal((await post(base, 'login', { password: 'wrong' })).status, 401);
    const ok = await post(base, 'login', { password });
    assert.equal(ok.status, 200);
    assert.equal(typeof ok.body.token, 'string');
    assert.equal(ok.body.expires_in, 900);
    assert.equal((await post(base, 'login', { password: 'wrong again' })).status, 401);
    // The fourth attempt within a minute is refused, even with the right password.
    assert.equal((await post(base, 'login', { password })).status, 429);
    const msgs = lines.map((l) => l['msg']);
    assert.equal(msgs.filter((m) => m === 'admin login failed: wrong password').length, 2);
    assert.equal(msgs.filter((m) => m === 'admin login refused: too many attempts').length, 1);

    const token = ok.body.token as string;
    const published = await post(
      base,
      'call',
      { method: 'publish', params: { channel: 'chat:x', data: { n: 1 } } },
      token,
    );
    assert.deepEqual(published.body, { result: { offset: 1, epoch: published.body.result.epoch } });
    const action = lines.find((l) => l['msg'] === 'admin action');
    assert.ok(action, 'the action is logged');
    assert.equal(action['method'], 'publish');
    assert.equal(typeof action['session'], 'string');
    assert.equal(action['session'], lines.find((l) => l['msg'] === 'admin login')?.['session']);

    const bad = await post(base, 'call', { method: 'publish', params: { channel: 'nope:x', data: 1 } }, token);
    assert.equal(bad.body.error.code, 102, 'API errors as the API answers them');
    assert.equal((await post(base, 'call', { method: 'no_such' }, token)).status, 404);
    const ov = await post(base, 'overview', {}, token);
    assert.equal(ov.status, 200);
    assert.equal(ov.body.nodes.length, 1);
    assert.equal(typeof ov.body.loopLagP99, 'number');
    assert.ok(Array.isArray(ov.body.metrics.connections));
  });

  it('lives on the internal port when one is set', async (t) => {
    const internalPort = await freePort();
    const { base, publicBase } = await consoleNode(t, { http_server: { internal_port: internalPort } });
    assert.equal(base, `http://127.0.0.1:${internalPort}`);
    assert.equal((await fetch(`${base}/admin`)).status, 200);
    assert.equal((await fetch(`${publicBase}/admin`)).status, 404, 'not on the public port');
    assert.equal((await fetch(`${publicBase}/admin/api/login`, { method: 'POST', body: '{}' })).status, 404);
  });
});
