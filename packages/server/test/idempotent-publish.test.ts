/**
 * Safe retries and ordered publishes through the server API: `idempotency_key` on `publish`
 * and `broadcast` (a repeat is not published again and gets the first result, also from
 * another process on the same Redis, and also when the first attempt was answered "outcome
 * unknown" during a Redis pause), `version` / `version_epoch` (an older board state cannot
 * overwrite a newer one), and the bad input of those fields. Subscribers are real `centrifuge`
 * SDK clients.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { signConnectionToken } from '../src/auth/token-signer.js';
import { callApi, startBulwark, writeConfigFile } from './helpers/process.js';
import {
  describeIf,
  describeRedis,
  RedisServer,
  redisServerMissing,
  redisUrl,
  removeKeys,
  uniquePrefix,
} from './helpers/redis.js';
import {
  baseNamespaces,
  connected,
  connectedAs,
  sleep,
  startTestServer,
  waitUntil,
  type ApiResponse,
} from './helpers/server.js';
import { track } from './helpers/tracked.js';

/** suppressedMetric reads bulwark_publications_suppressed_total{reason} from GET /metrics. */
async function suppressedMetric(httpUrl: string, reason: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const m = new RegExp(`^bulwark_publications_suppressed_total\\{[^}]*reason="${reason}"[^}]*\\} (\\d+)$`, 'm').exec(
    text,
  );
  return m ? Number(m[1]) : 0;
}

/** storedNs returns the `data.n` of a channel's history, oldest first. */
async function storedNs(api: (m: string, b: unknown) => Promise<ApiResponse>, channel: string): Promise<number[]> {
  const h = await api('history', { channel, limit: -1 });
  return (h.body.result.publications as { data: { n: number } }[]).map((p) => p.data.n);
}

describe('idempotent and ordered publish (memory engine)', () => {
  it('publishes a repeated idempotency_key once and answers the first offset and epoch', async (t) => {
    const srv = await startTestServer();
    t.after(() => srv.close());
    const tr = await track(await connectedAs(srv, t, 'alice'), 'chat:board');
    const first = await srv.api('publish', { channel: 'chat:board', data: { n: 1 }, idempotency_key: 'post-1' });
    const retry = await srv.api('publish', { channel: 'chat:board', data: { n: 1 }, idempotency_key: 'post-1' });
    const next = await srv.api('publish', { channel: 'chat:board', data: { n: 2 }, idempotency_key: 'post-2' });
    assert.equal(first.body.result.offset, 1);
    assert.deepEqual(retry.body, first.body, 'the retry gets the first result');
    assert.equal(next.body.result.offset, 2);
    await waitUntil(() => tr.received.length === 2, 3000, 'two publications');
    await sleep(50);
    assert.deepEqual(tr.received, [1, 2]);
    assert.deepEqual(await storedNs(srv.api, 'chat:board'), [1, 2]);
    assert.equal(await suppressedMetric(srv.httpUrl, 'idempotency'), 1);
  });

  it('makes broadcast retries safe per channel', async (t) => {
    const srv = await startTestServer();
    t.after(() => srv.close());
    const c = await connectedAs(srv, t, 'alice');
    const a = await track(c, 'chat:a');
    const b = await track(c, 'chat:b');
    const body = { channels: ['chat:a', 'chat:b'], data: { n: 7 }, idempotency_key: 'bc-1' };
    const first = await srv.api('broadcast', body);
    const retry = await srv.api('broadcast', body);
    assert.deepEqual(retry.body, first.body);
    assert.deepEqual(
      first.body.result.responses.map((r: { result: { offset: number } }) => r.result.offset),
      [1, 1],
    );
    await waitUntil(() => a.received.length === 1 && b.received.length === 1, 3000, 'one on each channel');
    await sleep(50);
    assert.deepEqual([a.received, b.received], [[7], [7]]);
  });

  it('skips a version older than the channel state, so a slow worker cannot roll a board back', async (t) => {
    const srv = await startTestServer();
    t.after(() => srv.close());
    const tr = await track(await connectedAs(srv, t, 'alice'), 'chat:standings');
    const v = (n: number, version: number, version_epoch?: string) =>
      srv.api('publish', {
        channel: 'chat:standings',
        data: { n },
        version,
        ...(version_epoch ? { version_epoch } : {}),
      });
    assert.equal((await v(1, 10)).body.result.offset, 1);
    assert.equal((await v(2, 12)).body.result.offset, 2);
    // The worker holding version 11 finishes last: skipped, answered with the current position.
    const late = await v(3, 11);
    assert.equal(late.body.result.offset, 2);
    assert.equal((await v(4, 13)).body.result.offset, 3);
    // A new version epoch (the backend's counter restarted) is never "older".
    assert.equal((await v(5, 1, 'season-2')).body.result.offset, 4);
    await waitUntil(() => tr.received.length === 4, 3000, 'four publications');
    await sleep(50);
    assert.deepEqual(tr.received, [1, 2, 4, 5]);
    assert.equal(await suppressedMetric(srv.httpUrl, 'version'), 1);
  });

  it('refuses malformed or oversized keys, versions and version epochs with 107, publishing nothing', async (t) => {
    const srv = await startTestServer({ http_api: { idempotency_key_max_length: 8, version_epoch_max_length: 4 } });
    t.after(() => srv.close());
    const bad: [object, RegExp][] = [
      [{ idempotency_key: 'k'.repeat(9) }, /idempotency_key: more than http_api.idempotency_key_max_length \(8/],
      [{ idempotency_key: 42 }, /idempotency_key/],
      [{ version: -1 }, /version/],
      [{ version: 1.5 }, /version/],
      [{ version: 2 ** 60 }, /version/],
      [{ version: '3' }, /version/],
      [{ version: 1, version_epoch: 'abcde' }, /version_epoch: more than http_api.version_epoch_max_length \(4/],
    ];
    for (const [fields, message] of bad) {
      for (const method of ['publish', 'broadcast']) {
        const target = method === 'publish' ? { channel: 'chat:x' } : { channels: ['chat:x', 'chat:y'] };
        const res = await srv.api(method, { ...target, data: { n: 1 }, ...fields });
        assert.equal(res.body.error?.code, 107, `${method} ${JSON.stringify(fields)}: ${JSON.stringify(res.body)}`);
        assert.match(res.body.error.message, message);
      }
    }
    const h = await srv.api('history', { channel: 'chat:x', limit: -1 });
    assert.deepEqual(h.body.result.publications, [], 'nothing published half-way');
  });
});

await describeRedis('idempotent publish across processes on Redis', () => {
  const prefix = uniquePrefix();
  after(() => removeKeys(prefix).then(() => undefined));

  it('a retry sent to another process is answered with the first result and not published again', async (t) => {
    const secret = randomBytes(24).toString('hex');
    const apiKey = randomBytes(24).toString('hex');
    const cfg = writeConfigFile({
      http_server: { address: '127.0.0.1' },
      log: { level: 'warn' },
      client: { token: { hmac_secret_key: secret } },
      http_api: { key: apiKey },
      engine: { type: 'redis', redis: { address: [redisUrl], prefix } },
      channel: { namespaces: baseNamespaces.filter((ns) => ns.name === 'chat') },
    });
    t.after(() => cfg.remove());
    const [a, b] = await Promise.all([startBulwark(cfg.path, {}, t), startBulwark(cfg.path, {}, t)]);
    const c = await connected(b.url, { token: await signConnectionToken({ secret, user: 'u' }) });
    t.after(() => c.disconnect());
    const tr = await track(c, 'chat:x');
    const body = { channel: 'chat:x', data: { n: 1 }, idempotency_key: 'order-77' };
    const first = await callApi(a.httpUrl, apiKey, 'publish', body);
    const retries = await Promise.all([
      callApi(b.httpUrl, apiKey, 'publish', body),
      callApi(a.httpUrl, apiKey, 'publish', body),
    ]);
    for (const r of retries) assert.deepEqual(r.body, first.body);
    await waitUntil(() => tr.received.length === 1, 3000, 'the publication');
    await sleep(100);
    assert.deepEqual(tr.received, [1]);
    assert.deepEqual(await storedNs((m, x) => callApi(b.httpUrl, apiKey, m, x), 'chat:x'), [1]);
  });
});

describeIf('idempotent publish through a Redis pause', redisServerMissing(), () => {
  const servers: RedisServer[] = [];
  after(() => Promise.all(servers.map((s) => s.destroy())).then(() => undefined));

  it('a publish answered during the pause is retried safely with its key: each stored once', async (t: TestContext) => {
    const server = await RedisServer.start();
    servers.push(server);
    const srv = await startTestServer({
      engine: {
        type: 'redis',
        redis: {
          address: [server.url],
          prefix: uniquePrefix(),
          connect_timeout: '300ms',
          io_timeout: '400ms',
          reconnect_max_delay: '300ms',
        },
      },
    });
    t.after(() => srv.close());
    const tr = await track(await connectedAs(srv, t, 'alice'), 'chat:paused');
    const admin = new Redis(server.url);
    t.after(() => admin.disconnect());
    // Load the publish script before the pause, as on any node that has been running a while.
    await srv.api('publish', { channel: 'chat:paused', data: { n: 0 }, idempotency_key: 'warm' });
    await waitUntil(() => tr.received.length === 1, 3000, 'the first publication');

    await admin.call('CLIENT', 'PAUSE', '1500', 'ALL');
    const keyed = (n: number) => ({ channel: 'chat:paused', data: { n }, idempotency_key: `k-${n}` });
    const during = await Promise.all([1, 2, 3, 4, 5].map((n) => srv.api('publish', keyed(n))));
    for (const r of during) {
      // With a key the retry is safe, so the outcome-unknown failure says so.
      assert.deepEqual(r.body, { error: { code: 100, message: 'engine unavailable, retry later', temporary: true } });
    }
    // The backend retries, as told, until Redis answers again.
    const retried = await Promise.all(
      [1, 2, 3, 4, 5].map(async (n) => {
        for (;;) {
          const r = await srv.api('publish', keyed(n));
          if (r.body.result) return r.body.result as { offset: number };
          await sleep(200);
        }
      }),
    );
    assert.deepEqual(
      retried.map((r) => r.offset).sort((x, y) => x - y),
      [2, 3, 4, 5, 6],
      'the retries got the offsets the held publishes were given',
    );
    await waitUntil(() => tr.received.length === 6, 3000, 'the held publications');
    await sleep(200);
    assert.deepEqual(
      [...tr.received].sort((x, y) => x - y),
      [0, 1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      (await storedNs(srv.api, 'chat:paused')).sort((x, y) => x - y),
      [0, 1, 2, 3, 4, 5],
      'each stored once',
    );
  });
});
