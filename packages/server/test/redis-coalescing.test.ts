/**
 * Publications that reach a node from Redis together leave for each subscriber together: a
 * burst published through another node arrives on the subscriber node's Redis connection in a
 * read or a few, and every publication of one read is queued before the flush pass, so the
 * subscriber gets them in a few WebSocket frames (newline-separated), not one frame each — the
 * write coalescing the memory engine gets from a burst of local publishes (issue 18). Real
 * Redis, two nodes, a raw client counting frames. Needs Redis at BULWARK_TEST_REDIS_URL
 * (skipped without it, unless BULWARK_REQUIRE_SERVICES=1).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { describeRedis, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';
import { rawClient, startTestServer, waitUntil } from './helpers/server.js';

/** The burst: published at once through node A's API (a parallel batch). */
const burst = 50;

await describeRedis('Redis engine: a burst from Redis leaves in few frames', () => {
  it('delivers a burst published on another node in order, in far fewer frames than publications', async (t) => {
    const prefix = uniquePrefix();
    const engine = { type: 'redis' as const, redis: { address: [redisUrl], prefix } };
    const a = await startTestServer({ engine, node: { name: 'a' } });
    const b = await startTestServer({ engine, node: { name: 'b' } });
    t.after(async () => {
      await Promise.all([a.close(), b.close()]);
      await removeKeys(prefix);
    });
    const c = await rawClient(b.url);
    t.after(() => c.close());
    assert.ok((await c.connect(await b.token('reader'))).connect);
    assert.ok((await c.call('subscribe', { channel: 'chat:burst' })).subscribe);
    const framesBefore = c.frames.length;

    const commands = Array.from({ length: burst }, (_, n) => ({ publish: { channel: 'chat:burst', data: { n } } }));
    const res = await a.api('batch', { commands, parallel: true });
    assert.equal(res.status, 200);

    const got = (): number[] =>
      c.messages.flatMap((m) => {
        const pub = (m as { push?: { channel?: string; pub?: { data?: { n?: number } } } }).push;
        return pub?.channel === 'chat:burst' && typeof pub.pub?.data?.n === 'number' ? [pub.pub.data.n] : [];
      });
    await waitUntil(() => got().length === burst, 5000, `all ${burst} publications delivered`);
    // Parallel publishes are numbered in the order Redis ran them, not the batch's: each
    // arrives once, and the client's stream has no gap or repeat.
    assert.deepEqual(
      [...got()].sort((x, y) => x - y),
      Array.from({ length: burst }, (_, n) => n),
    );
    const frames = c.frames.slice(framesBefore).filter((f) => f.includes('"chat:burst"')).length;
    // One frame per publication would be 50: the burst arrives in a read or a few, each one
    // frame. Ten leaves room for a loaded machine splitting Redis' writes.
    assert.ok(frames <= 10, `${burst} publications arrived in ${frames} frames`);
    t.diagnostic(`${burst} publications from Redis in ${frames} WebSocket frame(s)`);
  });
});
