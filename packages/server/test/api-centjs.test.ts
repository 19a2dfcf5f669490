/**
 * The real `cent.js` API client (v6) against a started Bulwark: its methods POST to
 * `<url>/<method>`, its `pipeline()` POSTs newline-delimited commands to `<url>` itself and
 * splits the answer by lines. Publications it sends reach a real `centrifuge` SDK subscriber;
 * refusals surface as its CentException.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { CentClient, CentException, CentMethods } from 'cent.js';
import { connectedAs, startTestServer, waitUntil, type TestServer } from './helpers/server.js';
import { track } from './helpers/tracked.js';

async function start(t: TestContext): Promise<{ srv: TestServer; cent: CentClient }> {
  const srv = await startTestServer();
  t.after(() => srv.close());
  return { srv, cent: new CentClient({ url: `${srv.httpUrl}/api`, apiKey: srv.apiKey }) };
}

describe('cent.js against Bulwark', () => {
  it('publish and broadcast reach a subscribed SDK client; history reads them back', async (t) => {
    const { srv, cent } = await start(t);
    const sub = await track(await connectedAs(srv, t, 'ann'), 'chat:lobby');

    const pos = await cent.publish({ channel: 'chat:lobby', data: { n: 1 } });
    assert.equal(pos.offset, 1);
    assert.equal(typeof pos.epoch, 'string');
    // cent.js types the broadcast result as an array; on the wire (Centrifugo's and Bulwark's) it is `{responses}`.
    const b = (await cent.broadcast({ channels: ['chat:lobby', 'chat:other'], data: { n: 2 } })) as unknown as {
      responses: unknown[];
    };
    assert.equal(b.responses.length, 2);
    await waitUntil(() => sub.received.length === 2, 3000, 'both publications delivered');
    assert.deepEqual(sub.received, [1, 2]);

    const h = await cent.getHistory({ channel: 'chat:lobby', limit: 10 });
    assert.deepEqual(
      h.publications.map((p) => p.data),
      [{ n: 1 }, { n: 2 }],
    );
    const stats = await cent.getPresenceStats({ channel: 'chat:lobby' });
    assert.equal(stats.num_clients, 1);
    assert.equal((await cent.getInfo()).nodes.length, 1);
  });

  it('pipeline sends a batch as newline-delimited commands and gets one result per command in order', async (t) => {
    const { srv, cent } = await start(t);
    const sub = await track(await connectedAs(srv, t, 'bob'), 'chat:pipe');
    const results = await cent.pipeline([
      { method: CentMethods.Publish, params: { channel: 'chat:pipe', data: { n: 1 } } },
      { method: CentMethods.Broadcast, params: { channels: ['chat:pipe', 'chat:elsewhere'], data: { n: 2 } } },
      { method: CentMethods.Publish, params: { channel: 'chat:pipe', data: { n: 3 } } },
      { method: CentMethods.History, params: { channel: 'chat:pipe', limit: 10 } },
    ]);
    assert.equal(results.length, 4);
    assert.equal((results[0] as { offset: number }).offset, 1);
    assert.equal((results[1] as { responses: unknown[] }).responses.length, 2);
    assert.equal((results[2] as { offset: number }).offset, 3);
    const hist = results[3] as { publications: { data: { n: number } }[] };
    assert.deepEqual(
      hist.publications.map((p) => p.data.n),
      [1, 2, 3],
    );
    await waitUntil(() => sub.received.length === 3, 3000, 'three publications delivered');
    assert.deepEqual(sub.received, [1, 2, 3]);
  });

  it('errors: a refused method rejects with CentException; in a pipeline the failing command alone has no result', async (t) => {
    const { srv, cent } = await start(t);
    await assert.rejects(cent.publish({ channel: 'nope:x', data: { n: 1 } }), CentException);
    await assert.rejects(cent.getPresence({ channel: 'news:x' }), CentException, 'presence off in news: 108');
    const wrongKey = new CentClient({ url: `${srv.httpUrl}/api`, apiKey: 'wrong' });
    await assert.rejects(wrongKey.publish({ channel: 'chat:x', data: { n: 1 } }), CentException);

    const results = await cent.pipeline([
      { method: CentMethods.Publish, params: { channel: 'chat:p', data: { n: 1 } } },
      { method: CentMethods.Publish, params: { channel: 'nope:x', data: { n: 2 } } },
      { method: CentMethods.Publish, params: { channel: 'chat:p', data: { n: 3 } } },
    ]);
    assert.equal(results.length, 3);
    assert.equal((results[0] as { offset: number }).offset, 1);
    assert.equal(results[1], undefined, 'cent.js keeps only `result`; the error line has none');
    assert.equal((results[2] as { offset: number }).offset, 2);
    const raw = await srv.api('history', { channel: 'chat:p', limit: 10 });
    assert.deepEqual(
      (raw.body.result.publications as { data: { n: number } }[]).map((p) => p.data.n),
      [1, 3],
    );
  });
});
