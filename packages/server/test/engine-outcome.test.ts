/**
 * An engine failure says whether the call was applied: a publish sent to a Redis that then
 * stopped answering (paused with `CLIENT PAUSE … ALL`, so it runs the buffered commands when it
 * resumes) is answered `100` without `temporary` (outcome unknown) to the API and to clients,
 * because it was in fact stored and delivered; a read in the same pause, and a publish refused
 * before it was sent (Redis down), stay `100` + `temporary`. Runs a private `redis-server` on a
 * free port; skipped without `redis-server`, unless BULWARK_REQUIRE_SERVICES=1.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { privateRedisNode } from './helpers/private-redis-node.js';
import { describeIf, redisServerMissing } from './helpers/redis.js';
import { connectedAs, waitUntil } from './helpers/server.js';
import { track } from './helpers/tracked.js';

const unknownApi = { code: 100, message: 'engine unavailable, outcome unknown: it may have been applied' };
const temporaryApi = { code: 100, message: 'engine unavailable, retry later', temporary: true };
const PAUSE_MS = 2000;

describeIf('engine failures: not applied vs outcome unknown', redisServerMissing(), () => {
  it('a publish Redis received but did not answer in time is "outcome unknown"; a read and a refused publish are temporary', async (t) => {
    const { redis: server, srv, admin } = await privateRedisNode(t);
    const client = await connectedAs(srv, t, 'alice');
    const tr = await track(client, 'chat:paused');
    // A first publish loads the publish script, as on any node that has been running a while
    // (a held EVALSHA of an unknown script would fail with NOSCRIPT once Redis resumes).
    assert.deepEqual((await srv.api('publish', { channel: 'chat:paused', data: { n: 0 } })).body.result?.offset, 1);
    await waitUntil(() => tr.received.length === 1, 3000, 'the first publication');

    // Redis holds every command from now on and runs them when the pause ends.
    await admin.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'ALL');
    const pausedAt = Date.now();
    const apiCalls = Array.from({ length: 20 }, (_, i) =>
      srv.api('publish', { channel: 'chat:paused', data: { n: i + 1 } }),
    );
    const broadcast = srv.api('broadcast', { channels: ['chat:paused', 'chat:other'], data: { n: 21 } });
    const clientPublish = tr.sub.publish({ n: 22 }).then(
      () => undefined,
      (err: { code: number; message: string; temporary?: boolean }) => err,
    );
    const read = srv.api('history', { channel: 'chat:paused', limit: 5 });
    const answers = await Promise.all(apiCalls);
    assert.ok(Date.now() - pausedAt < PAUSE_MS, 'answered within io_timeout, before the pause ended');

    const shapes = answers.map((a) => JSON.stringify(a.body.error));
    assert.deepEqual(new Set(shapes), new Set([JSON.stringify(unknownApi)]), 'every publish: outcome unknown');
    const b = await broadcast;
    assert.deepEqual(b.body, { result: { responses: [{ error: unknownApi }, { error: unknownApi }] } });
    const c = await clientPublish;
    assert.deepEqual(
      c && { code: c.code, temporary: c.temporary === true, message: c.message },
      { code: 100, temporary: false, message: 'internal server error: engine unavailable, outcome unknown' },
      'the client is not invited to retry',
    );
    assert.deepEqual((await read).body, { error: temporaryApi }, 'a read is safe to repeat: temporary');

    // Why "unknown": once Redis resumes it runs what it held, and every one of them is applied.
    await waitUntil(() => tr.received.length === 23, PAUSE_MS + 3000, 'the held publications delivered');
    const history = await srv.api('history', { channel: 'chat:paused', limit: 100 });
    const stored = (history.body.result.publications as { data: { n: number } }[]).map((p) => p.data.n);
    t.diagnostic(`answered "outcome unknown": 22 of 22; stored afterwards: ${stored.length - 1} of 22`);
    assert.equal(stored.length, 23);

    // Not applied: Redis is down, the command is never written. Temporary, as before.
    await server.kill();
    await waitUntil(() => !srv.node.ready, 3000, 'the node notices');
    assert.deepEqual((await srv.api('publish', { channel: 'chat:paused', data: { n: 23 } })).body, {
      error: temporaryApi,
    });
    await assert.rejects(tr.sub.publish({ n: 24 }), (err: { code: number; temporary?: boolean }) => {
      assert.deepEqual([err.code, err.temporary], [100, true]);
      return true;
    });
  });
});
