/**
 * The slow-consumer rule over real sockets (issue 12, item 1): a reply the client asked for is
 * not a backlog. A reader gets a recovery or history reply far over client.queue_max_size
 * (40 publications of 60 KB: 2.4 MB against 1 MiB) with the real SDK; a client that stops
 * reading is still disconnected as slow (3008) by its pushes; and one that pipelines big reads
 * without reading has its next command wait until its replies drain, so the node holds one
 * reply for it, not all of them, and answers every one once it reads again.
 *
 * @module
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SubscribedContext } from 'centrifuge';
import { DisconnectCode } from '../src/protocol/codes.js';
import {
  connected,
  nextEvent,
  rawClient,
  sleep,
  startTestServer,
  waitUntil,
  type TestServer,
} from './helpers/server.js';

const text = 'x'.repeat(60_000);
const board = {
  name: 'board',
  history_size: 200,
  history_ttl: '300s',
  force_recovery: true,
  allow_subscribe_for_client: true,
  allow_history_for_client: true,
};

/** metric reads one sample of the node's /metrics (0 when absent). */
async function metric(srv: TestServer, re: RegExp): Promise<number> {
  const text = await (await fetch(`${srv.httpUrl}/metrics`)).text();
  return Number(re.exec(text)?.[1] ?? 0);
}

describe('slow consumers', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({
      channel: { namespaces: [board] },
      client: { history_max_publication_limit: 300 },
      // Not a shedding test: on a loaded machine, publishing 6 MB of history made the node
      // shed (503) the next test's upgrade, which is load shedding working, not what is tested here.
      protection: { shedding: { enabled: false } },
    });
  });
  after(() => srv.close());

  it('a reader recovers 2.4 MB of missed publications with the SDK, and reads them with history', async (t) => {
    const channel = 'board:recover';
    const top = await srv.node.publish(channel, { n: 0 });
    for (let n = 1; n <= 40; n++) await srv.node.publish(channel, { n, text });
    const client = await connected(srv.url, { token: await srv.token('reader') });
    t.after(() => client.disconnect());
    const received: number[] = [];
    const sub = client.newSubscription(channel, { since: { offset: top.offset, epoch: top.epoch } });
    sub.on('publication', (ctx) => received.push((ctx.data as { n: number }).n));
    const subscribed = nextEvent(sub, 'subscribed', 5000) as Promise<SubscribedContext>;
    sub.subscribe();
    const ctx = await subscribed;
    assert.equal(ctx.recovered, true);
    await waitUntil(() => received.length === 40, 5000, 'recovered publications');
    assert.deepEqual(
      received,
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
    const h = await sub.history({ limit: 20 });
    assert.equal(h.publications.length, 20);
    assert.equal(client.state, 'connected');
  });

  it('a client that stops reading is still disconnected as slow by its pushes', async (t) => {
    const channel = 'board:stalled';
    const c = await rawClient(srv.url);
    t.after(() => c.close());
    assert.ok((await c.connect(await srv.token('stalled'))).connect);
    assert.ok((await c.call('subscribe', { channel })).subscribe);
    const before = await metric(srv, /bulwark_slow_disconnects_total(?:\{[^}]*\})? (\d+)/);
    c.pauseReading();
    for (let n = 1; n <= 200; n++) await srv.node.publish(channel, { n, text });
    await waitUntil(() => srv.node.hub.numClients === 0, 5000, 'the stalled client is gone');
    assert.equal(await metric(srv, /bulwark_slow_disconnects_total(?:\{[^}]*\})? (\d+)/), before + 1);
    c.resumeReading();
    assert.equal((await c.waitClose(5000)).code, DisconnectCode.Slow);
  });

  it('a client that pipelines big reads without reading waits for them to drain, then gets every reply', async (t) => {
    const channel = 'board:pipelined';
    for (let n = 1; n <= 100; n++) await srv.node.publish(channel, { n, text });
    const c = await rawClient(srv.url);
    t.after(() => c.close());
    assert.ok((await c.connect(await srv.token('piper'))).connect);
    const ran = () => metric(srv, /bulwark_client_commands_total\{[^}]*method="history"[^}]*result="ok"[^}]*\} (\d+)/);
    const before = await ran();
    c.pauseReading();
    // 20 reads of 100 × 60 KB (6 MB each, 120 MB in all) sent at once.
    const ids = Array.from({ length: 20 }, (_, i) => 100 + i);
    c.send(ids.map((id) => JSON.stringify({ id, history: { channel, limit: 100 } })).join('\n'));
    await sleep(500);
    const whilePaused = (await ran()) - before;
    assert.ok(whilePaused <= 3, `${whilePaused} of 20 reads ran while the client did not read`);
    c.resumeReading();
    await waitUntil(() => ids.every((id) => c.messages.some((m) => m.id === id)), 20_000, 'every reply');
    const replies = c.messages.filter((m) => m.id !== undefined && ids.includes(m.id));
    assert.deepEqual(
      replies.map((m) => m.id),
      ids,
    );
    for (const m of replies) assert.equal(m.history?.publications?.length, 100, JSON.stringify(m.error));
    assert.ok(c.open, 'a reader is never cut');
  });
});
