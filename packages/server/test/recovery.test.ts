/**
 * Recovery of missed publications, end to end with the real `centrifuge` SDK: after forced
 * disconnects and dropped sockets a subscriber gets exactly what it missed, in order, once;
 * positions that cannot be continued (trimmed history, another epoch, an expired stream) are
 * reported as not recovered; and publications racing with subscribes are neither lost nor
 * duplicated.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { Centrifuge, SubscribedContext } from 'centrifuge';
import type WebSocket from 'ws';
import { MemoryBroker } from '../src/engine/broker-memory.js';
import type { HistoryQuery, HistoryResult } from '../src/engine/broker.js';
import {
  nextEvent,
  rawClient,
  sleep,
  startTestServer,
  waitUntil,
  type TestServer,
  connectedAs,
} from './helpers/server.js';
import { range, track, type Tracked } from './helpers/tracked.js';

/** dropSocket kills the SDK's WebSocket without a close handshake (a network failure). */
function dropSocket(client: Centrifuge): void {
  const transport = (client as unknown as { _transport?: { _transport?: WebSocket } })._transport?._transport;
  assert.ok(transport, 'SDK internals changed: no _transport._transport WebSocket');
  transport.terminate();
}

describe('recovery', () => {
  let srv: TestServer;

  before(async () => {
    srv = await startTestServer({
      channel: {
        namespaces: [
          {
            // Positions live 500 ms after the last publication or history read.
            name: 'brief',
            history_size: 10,
            history_ttl: '300ms',
            history_meta_ttl: '500ms',
            force_recovery: true,
            allow_subscribe_for_client: true,
          },
        ],
      },
    });
  });
  after(() => srv.close());

  const client = (t: TestContext, user: string, opts: Parameters<typeof connectedAs>[3] = {}) =>
    connectedAs(srv, t, user, opts);

  /** publish publishes {n} and checks offset === n (the tests rely on it). */
  async function publish(channel: string, n: number): Promise<void> {
    const pos = await srv.node.publish(channel, { n });
    assert.equal(pos.offset, n);
  }

  for (const how of ['API disconnect 3011', 'dropped socket'] as const) {
    it(`recovers exactly the 50 publications missed during a reconnect (${how})`, async (t) => {
      const ch = `chat:rec-${how === 'dropped socket' ? 'drop' : 'api'}`;
      const c = await client(t, 'alice');
      const s = await track(c, ch);
      assert.equal(s.subscribed[0]?.recoverable, true);
      let n = 0;
      for (let i = 0; i < 10; i++) await publish(ch, ++n);
      await waitUntil(() => s.received.length === 10, 2000, 'first 10');

      // Publish 50 while the client is away: from the 'connecting' handler, which the SDK
      // emits synchronously when its transport closes, before any reconnect attempt.
      const reconnecting = nextEvent(c, 'connecting');
      c.once('connecting', () => {
        for (let i = 0; i < 50; i++) void srv.node.publish(ch, { n: ++n });
      });
      if (how === 'dropped socket') dropSocket(c);
      else {
        const res = await srv.api('disconnect', {
          user: 'alice',
          disconnect: { code: 3011, reason: 'force reconnect' },
        });
        assert.deepEqual(res.body, { result: {} });
      }
      const ctx = await reconnecting;
      if (how !== 'dropped socket') assert.equal(ctx.code, 3011);
      await waitUntil(() => s.subscribed.length === 2, 3000, 'resubscribed');
      const re = s.subscribed[1] as SubscribedContext;
      assert.equal(re.wasRecovering, true);
      assert.equal(re.recovered, true);
      assert.equal(re.hasRecoveredPublications, true);
      await waitUntil(() => s.received.length === 60, 2000, 'recovered 50');
      for (let i = 0; i < 10; i++) await publish(ch, ++n);
      await waitUntil(() => s.received.length >= 70, 2000, 'last 10');
      await sleep(20);
      assert.deepEqual(s.received, range(1, 70), 'every publication once, in order');
      assert.deepEqual(s.offsets, range(1, 70));
    });
  }

  it('history trimmed while away: recovered false, wasRecovering true, nothing stale delivered', async (t) => {
    const ch = 'tiny:trim';
    const c = await client(t, 'bob');
    const s = await track(c, ch);
    let n = 0;
    for (let i = 0; i < 3; i++) await publish(ch, ++n);
    await waitUntil(() => s.received.length === 3, 2000, 'first 3');
    c.once('connecting', () => {
      // history_size is 5: 20 publications push offsets 4..18 out of history.
      for (let i = 0; i < 20; i++) void srv.node.publish(ch, { n: ++n });
    });
    await srv.api('disconnect', { user: 'bob', disconnect: { code: 3011, reason: 'force reconnect' } });
    await waitUntil(() => s.subscribed.length === 2, 3000, 'resubscribed');
    const re = s.subscribed[1] as SubscribedContext;
    assert.equal(re.wasRecovering, true);
    assert.equal(re.recovered, false);
    assert.equal(re.streamPosition?.offset, 23, 'the client continues from the current top');
    await publish(ch, ++n);
    await waitUntil(() => s.received.length === 4, 2000, 'live publication after the gap');
    assert.deepEqual(s.received, [1, 2, 3, 24]);
  });

  it('a position from another epoch is not recovered (SDK since, and raw subscribe)', async (t) => {
    const ch = 'chat:epoch';
    await publish(ch, 1);
    await publish(ch, 2);
    const c = await client(t, 'carol');
    const s = await track(c, ch, { since: { offset: 1, epoch: 'bogus' } });
    const ctx = s.subscribed[0] as SubscribedContext;
    assert.equal(ctx.wasRecovering, true);
    assert.equal(ctx.recovered, false);
    assert.equal(ctx.streamPosition?.offset, 2);
    assert.notEqual(ctx.streamPosition?.epoch, 'bogus');

    const raw = await rawClient(srv.url);
    t.after(() => raw.close());
    await raw.connect(await srv.token('carol'));
    const reply = await raw.call('subscribe', { channel: ch, recover: true, epoch: 'bogus', offset: 1 });
    assert.equal(reply.error, undefined);
    assert.equal(reply.subscribe?.was_recovering, true);
    assert.notEqual(reply.subscribe?.recovered, true);
    assert.equal(reply.subscribe?.publications, undefined, 'nothing from a foreign epoch');
    assert.equal(reply.subscribe?.offset, 2);
    assert.equal(reply.subscribe?.epoch, ctx.streamPosition?.epoch);
  });

  it('an expired stream position (history_meta_ttl) starts a new epoch: not recovered', async (t) => {
    const ch = 'brief:room';
    const first = await client(t, 'dave');
    const s = await track(first, ch);
    const epoch = s.subscribed[0]?.streamPosition?.epoch ?? '';
    assert.ok(epoch);
    for (let n = 1; n <= 3; n++) await publish(ch, n);
    await waitUntil(() => s.received.length === 3, 2000, 'three publications');
    first.disconnect();
    await sleep(700); // meta TTL is 500 ms after the last publication
    const second = await client(t, 'dave');
    const s2 = await track(second, ch, { since: { offset: 3, epoch } });
    const ctx = s2.subscribed[0] as SubscribedContext;
    assert.equal(ctx.wasRecovering, true);
    assert.equal(ctx.recovered, false);
    assert.notEqual(ctx.streamPosition?.epoch, epoch, 'a new epoch');
    assert.equal(ctx.streamPosition?.offset, 0);
    assert.deepEqual(s2.received, []);
  });
});

/**
 * DelayingBroker is the memory broker answering `subscribe` and `history` after a few
 * milliseconds, as a networked broker does, with a gap both before the read and before the
 * answer. Publications keep flowing meanwhile: the session must buffer the ones that arrive
 * during its subscribe and drop the ones its history read already returned.
 */
class DelayingBroker extends MemoryBroker {
  delays = 0;
  override async subscribe(channel: string): Promise<void> {
    await this.#pause();
    return super.subscribe(channel);
  }
  override async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    await this.#pause();
    const result = await super.history(channel, query);
    await this.#pause();
    return result;
  }
  #pause(): Promise<void> {
    this.delays++;
    return sleep(Math.floor(Math.random() * 4));
  }
}

describe('recovery with a broker that answers asynchronously', () => {
  let srv: TestServer;
  const broker = new DelayingBroker();

  before(async () => {
    srv = await startTestServer(
      {
        client: { recovery_max_publication_limit: 100_000 },
        channel: {
          namespaces: [
            {
              name: 'race',
              history_size: 100_000,
              history_ttl: '300s',
              force_recovery: true,
              allow_subscribe_for_client: true,
            },
          ],
        },
      },
      { broker },
    );
  });
  after(() => srv.close());

  const client = (t: TestContext, user: string, opts: Parameters<typeof connectedAs>[3] = {}) =>
    connectedAs(srv, t, user, opts);

  it('publications racing with subscribes and recovering resubscribes are neither lost nor duplicated', async (t) => {
    const ch = 'race:storm';
    let published = 0;
    let stop = false;
    let mark: { offset: number; epoch: string } | undefined;
    // Tight publisher: bursts of 5 interleaved with microtasks, yielding to I/O every burst
    // (a 1 ms timer keeps the rate at a few thousand per second, so recoveries stay small).
    const publisher = (async () => {
      while (!stop) {
        for (let i = 0; i < 5; i++) {
          const n = ++published;
          const p = srv.node.publish(ch, { n });
          if (n === 200) mark = await p;
          await Promise.resolve();
        }
        await sleep(1);
      }
    })();
    t.after(() => {
      stop = true;
    });

    const subs: Array<{ user: string; tracked: Tracked }> = [];
    const joinOne = async (i: number) => {
      const user = `racer${i}`;
      // Half of the late joiners bootstrap from a known position with recovery.
      const since = i % 2 === 1 && mark ? { since: mark } : {};
      const c = await client(t, user);
      subs.push({ user, tracked: await track(c, ch, since) });
    };
    // Subscribers join while the publisher runs.
    const joins: Array<Promise<void>> = [];
    for (let i = 0; i < 10; i++) {
      joins.push(joinOne(i));
      await sleep(30);
    }
    await Promise.all(joins);
    // Half of them are forced to reconnect and recover in the middle of the storm.
    await sleep(100);
    for (const { user } of subs.filter((_, i) => i % 2 === 0)) {
      await srv.api('disconnect', { user, disconnect: { code: 3011, reason: 'force reconnect' } });
    }
    await waitUntil(
      () => subs.filter((_, i) => i % 2 === 0).every((s) => s.tracked.subscribed.length === 2),
      3000,
      'forced subscribers resubscribed',
    );
    await sleep(100);
    // A storm, not a trickle: on a loaded machine the publisher runs on until it made 1000.
    await waitUntil(() => published > 1000, 10_000, 'the storm published 1000');
    stop = true;
    await publisher;
    const total = published;
    await waitUntil(() => subs.every((s) => s.tracked.received.at(-1) === total), 5000, 'everyone caught up');

    for (const { user, tracked } of subs) {
      const firstCtx = tracked.subscribed[0] as SubscribedContext;
      const start = (firstCtx.streamPosition?.offset ?? 0) + 1;
      if (firstCtx.wasRecovering) {
        assert.equal(firstCtx.recovered, true, `${user} bootstrapped from a known position`);
        assert.equal(start, (mark?.offset ?? 0) + 1);
      }
      for (const re of tracked.subscribed.slice(1)) {
        assert.equal(re.recovered, true, `${user} recovered after the forced reconnect`);
      }
      const r = tracked.received;
      assert.equal(r[0], start, `${user} starts right after its subscribe position`);
      const expected = range(start, total);
      if (r.length !== expected.length || r.some((v, i) => v !== expected[i])) {
        const gaps = r.filter((v, i) => i > 0 && v !== (r[i - 1] as number) + 1).slice(0, 5);
        assert.fail(`${user}: ${r.length} received, expected ${expected.length}; first breaks at ${gaps.join(',')}`);
      }
      assert.deepEqual(tracked.offsets, expected);
    }
  });
});
