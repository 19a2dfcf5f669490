/**
 * Pipelined commands over a real socket (issue 12, item 2): a burst over the rate limits is
 * answered in command order, every command answered ok was executed and every other one was
 * not, and a connection closed for too many refusals (3013) ran nothing after the point where
 * it was closed. A normal SDK page load (100 subscriptions and a few dozen publishes at once)
 * passes the default limits whole.
 *
 * @module
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DisconnectCode, ErrorCode } from '../src/protocol/codes.js';
import { connected, rawClient, startTestServer, waitUntil, type TestServer } from './helpers/server.js';

const board = {
  name: 'board',
  history_size: 1000,
  history_ttl: '300s',
  allow_subscribe_for_client: true,
  allow_publish_for_client: true,
  allow_history_for_client: true,
};

/** published returns the `n` of every publication in the channel's history, oldest first. */
async function published(srv: TestServer, channel: string): Promise<number[]> {
  const h = await srv.node.broker.history(channel, { limit: -1, metaTtlMs: 0 });
  return h.publications.map((p) => (JSON.parse(p.data) as { n: number }).n);
}

describe('pipelined commands', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ channel: { namespaces: [board] } });
  });
  after(() => srv.close());

  for (const shape of ['one frame', 'one frame each'] as const) {
    it(`150 publishes at once (${shape}): replies in order, exactly the ones answered ok are published`, async (t) => {
      const c = await rawClient(srv.url);
      t.after(() => c.close());
      assert.ok((await c.connect(await srv.token(`burst-${shape}`))).connect);
      const channel = `board:burst-${shape === 'one frame' ? 1 : 2}`;
      // Ids 2..151 (the connect was 1); publication n carries id n.
      const commands = Array.from({ length: 150 }, (_, i) => ({ id: i + 2, publish: { channel, data: { n: i + 2 } } }));
      if (shape === 'one frame') c.send(commands.map((cmd) => JSON.stringify(cmd)).join('\n'));
      else for (const cmd of commands) c.send(cmd);
      // Everything is answered, or the connection is closed (3013) with the rest unanswered.
      await waitUntil(() => !c.open || c.messages.filter((m) => m.id !== undefined).length === 150, 5000, 'replies');
      const replies = c.messages.filter((m) => m.id !== undefined);
      const ids = replies.map((m) => m.id as number);
      assert.deepEqual(
        ids,
        [...ids].sort((a, b) => a - b),
        'a reply never overtakes an earlier one',
      );
      assert.deepEqual(
        ids,
        ids.map((_, i) => i + 2),
        'answered from the first command on, with no gap',
      );
      for (const m of replies) {
        assert.ok(m.error === undefined || m.error.code === ErrorCode.TooManyRequests, JSON.stringify(m));
      }
      const ok = replies.filter((m) => m.error === undefined).map((m) => m.id as number);
      assert.ok(ok.length >= 50, `at least the default burst is published (${ok.length})`);
      assert.deepEqual(await published(srv, channel), ok, 'published exactly the commands answered ok, in order');
      if (replies.length < 150) {
        const close = await c.waitClose();
        assert.equal(close.code, DisconnectCode.TooManyRequests, 'the rest is cut by 3013, and none of it ran');
      }
    });
  }

  it('a page load of 100 subscriptions and 30 publishes at once passes the default limits', async (t) => {
    const client = await connected(srv.url, { token: await srv.token('page-load') });
    t.after(() => client.disconnect());
    const subs = Array.from({ length: 100 }, (_, i) => client.newSubscription(`board:page-${i}`));
    const subscribed = subs.map(
      (s) =>
        new Promise<void>((resolve, reject) => {
          s.once('subscribed', () => resolve());
          s.once('unsubscribed', (ctx) => reject(new Error(`unsubscribed ${ctx.code} ${ctx.reason}`)));
          s.once('error', (ctx) => reject(new Error(`error ${ctx.error.code} ${ctx.error.message}`)));
        }),
    );
    for (const s of subs) s.subscribe();
    const publishes = Array.from({ length: 30 }, (_, n) => client.publish('board:page-0', { n }));
    await Promise.all([...subscribed, ...publishes]);
    assert.equal((await published(srv, 'board:page-0')).length, 30);
  });
});
