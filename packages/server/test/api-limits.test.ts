/**
 * The server API's reads are bounded (http_api.history_max_limit, presence_max_clients,
 * channels_max_results, channels_pattern_max_length): a `history` limit of -1 reads at most the
 * cap, a limit outside -1…cap is refused with 107 naming the field and the range, presence and
 * channels larger than their caps are answered 106, and a `channels` pattern cannot make the
 * node backtrack for seconds. Over real HTTP against a started node.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, it, type TestContext } from 'node:test';
import type { ConfigInput } from '../src/config/schema.js';
import { connectedAs, startTestServer, type TestServer } from './helpers/server.js';
import { track } from './helpers/tracked.js';

async function start(t: TestContext, over: ConfigInput = {}): Promise<TestServer> {
  const srv = await startTestServer(over);
  t.after(() => srv.close());
  return srv;
}

describe('server API read caps', () => {
  it('history: -1 reads at most http_api.history_max_limit; a limit outside -1…cap is refused with 107', async (t) => {
    const srv = await start(t, { http_api: { history_max_limit: 10 } });
    for (let n = 1; n <= 25; n++) await srv.node.publish('chat:long', { n });
    const nsOf = (body: { result?: { publications: { data: { n: number } }[] } }): number[] =>
      (body.result?.publications ?? []).map((p) => p.data.n);

    const all = await srv.api('history', { channel: 'chat:long', limit: -1 });
    assert.deepEqual(nsOf(all.body), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], JSON.stringify(all.body).slice(0, 200));
    assert.equal(all.body.result.offset, 25, 'the top of the stream tells the caller there is more');
    const newest = await srv.api('history', { channel: 'chat:long', limit: -1, reverse: true });
    assert.deepEqual(nsOf(newest.body), [25, 24, 23, 22, 21, 20, 19, 18, 17, 16]);
    const page = await srv.api('history', { channel: 'chat:long', limit: 10, since: { offset: 10, epoch: '' } });
    assert.deepEqual(nsOf(page.body), [11, 12, 13, 14, 15, 16, 17, 18, 19, 20], 'paging with since reaches the rest');

    for (const limit of [11, 1e9, 2 ** 53 - 1, -2]) {
      const res = await srv.api('history', { channel: 'chat:long', limit });
      assert.equal(res.status, 200);
      assert.deepEqual(
        res.body,
        {
          error: {
            code: 107,
            message:
              'bad request: limit: must be -1 (all retained, at most 10) or 0 to 10 (http_api.history_max_limit)',
          },
        },
        `limit ${limit}`,
      );
    }
  });

  it('presence: more entries than http_api.presence_max_clients is answered 106; presence_stats still counts', async (t) => {
    const srv = await start(t, { http_api: { presence_max_clients: 2 } });
    for (const user of ['ann', 'bob']) await track(await connectedAs(srv, t, user), 'chat:crowd');
    assert.deepEqual(
      Object.keys((await srv.api('presence', { channel: 'chat:crowd' })).body.result.presence).length,
      2,
    );

    await track(await connectedAs(srv, t, 'cid'), 'chat:crowd');
    const res = await srv.api('presence', { channel: 'chat:crowd' });
    assert.deepEqual(res.body, {
      error: {
        code: 106,
        message: 'limit exceeded: 3 presence entries, more than http_api.presence_max_clients (2); use presence_stats',
      },
    });
    const stats = await srv.api('presence_stats', { channel: 'chat:crowd' });
    assert.deepEqual(stats.body, { result: { num_clients: 3, num_users: 3 } });
  });

  it('channels: more matches than http_api.channels_max_results is answered 106; a narrower pattern passes', async (t) => {
    const srv = await start(t, { http_api: { channels_max_results: 2, channels_pattern_max_length: 32 } });
    const client = await connectedAs(srv, t, 'ann');
    for (const ch of ['news:a1', 'news:a2', 'news:b1']) await track(client, ch);

    assert.deepEqual((await srv.api('channels', {})).body, {
      error: {
        code: 106,
        message: 'limit exceeded: more than http_api.channels_max_results (2) channels match; narrow the pattern',
      },
    });
    assert.deepEqual((await srv.api('channels', { pattern: 'news:a*' })).body, {
      result: { channels: { 'news:a1': { num_clients: 1 }, 'news:a2': { num_clients: 1 } } },
    });
    assert.deepEqual((await srv.api('channels', { pattern: '*1' })).body, {
      result: { channels: { 'news:a1': { num_clients: 1 }, 'news:b1': { num_clients: 1 } } },
    });
    assert.deepEqual((await srv.api('channels', { pattern: 'x'.repeat(33) })).body, {
      error: {
        code: 107,
        message: 'bad request: pattern: longer than http_api.channels_pattern_max_length (32 characters)',
      },
    });
  });

  it('channels: a pattern of many wildcards that almost matches answers at once', async (t) => {
    const srv = await start(t);
    const client = await connectedAs(srv, t, 'ann');
    const name = `news:${'a'.repeat(60)}`;
    await track(client, name);
    // As a RegExp (`^news:.*a.*a.*a.*a.*a.*a.*b$`) this backtracks ~5 s on `name` alone.
    const t0 = performance.now();
    const res = await srv.api('channels', { pattern: `news:${'*a'.repeat(6)}*b` }, {});
    const ms = performance.now() - t0;
    assert.deepEqual(res.body, { result: { channels: {} } });
    assert.ok(ms < 1000, `answered after ${ms.toFixed(0)} ms`);
    const health = performance.now();
    await fetch(`${srv.httpUrl}/health`);
    assert.ok(performance.now() - health < 1000);
    assert.deepEqual((await srv.api('channels', { pattern: `news:${'*a'.repeat(6)}*` })).body.result.channels, {
      [name]: { num_clients: 1 },
    });
  });
});
