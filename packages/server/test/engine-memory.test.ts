/**
 * Tests of the memory engine: the shared conformance suites with a manual clock, plus what is
 * specific to memory (sweeping, compaction, handler isolation).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBroker } from '../src/engine/broker-memory.js';
import { DeadlineQueue } from '../src/engine/deadline-queue.js';
import type { BrokerEventHandler, HistoryQuery, PublishOptions } from '../src/engine/broker.js';
import { MemoryPresenceManager } from '../src/engine/presence-memory.js';
import type { Publication } from '../src/protocol/types.js';
import { asRaw } from '../src/protocol/types.js';
import { runBrokerSuite } from './conformance/broker.case.js';
import { runPresenceSuite } from './conformance/presence.case.js';
import { runPublishGuardSuite } from './conformance/publish-guards.case.js';

/** manualClock is an injectable clock that moves only when told. */
function manualClock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

runBrokerSuite('MemoryBroker conformance', async () => {
  const clock = manualClock();
  const broker = new MemoryBroker({ now: clock.now, sweepIntervalMs: 0 });
  return { broker, advance: clock.advance, cleanup: () => broker.close() };
});

// The same suite on the real clock and a running sweep timer: checks the suite's fallback
// path (real sleeping) that engines without an injectable clock use.
runBrokerSuite('MemoryBroker conformance (real clock)', async () => {
  const broker = new MemoryBroker({ sweepIntervalMs: 10 });
  return { broker, cleanup: () => broker.close() };
});

runPublishGuardSuite('MemoryBroker publish guards', async () => {
  const clock = manualClock();
  const broker = new MemoryBroker({ now: clock.now, sweepIntervalMs: 0 });
  return { broker, advance: clock.advance, cleanup: () => broker.close() };
});

runPresenceSuite('MemoryPresenceManager conformance', async () => {
  const clock = manualClock();
  const presence = new MemoryPresenceManager({ now: clock.now, sweepIntervalMs: 0 });
  return { presence, advance: clock.advance, cleanup: () => presence.close() };
});

runPresenceSuite('MemoryPresenceManager conformance (real clock)', async () => {
  const presence = new MemoryPresenceManager({ sweepIntervalMs: 10 });
  return { presence, cleanup: () => presence.close() };
});

const hist = (over: Partial<PublishOptions> = {}): PublishOptions => ({
  historySize: 10,
  historyTtlMs: 1000,
  historyMetaTtlMs: 5000,
  ...over,
});

const noopHandler: BrokerEventHandler = {
  onPublication() {},
  onJoin() {},
  onLeave() {},
  onControl() {},
};

describe('MemoryBroker', () => {
  it('holds one expiry entry per stream however often its history expires and refills', async () => {
    const clock = manualClock();
    const broker = new MemoryBroker({ now: clock.now, sweepIntervalMs: 0 });
    for (let i = 0; i < 50; i++) {
      await broker.publish('ch', asRaw(i), hist({ historyTtlMs: 1000, historyMetaTtlMs: 3_600_000 }));
      clock.advance(1001);
      broker.sweep();
    }
    // Before: each refill queued the history deadline beside the hour-long meta one, which
    // stayed in the queue (with the stream) until it was due.
    assert.equal(broker.size, 1);
    assert.equal(broker.queuedDeadlines, 1);
    clock.advance(3_600_000);
    broker.sweep();
    assert.equal(broker.size, 0);
    assert.equal(broker.queuedDeadlines, 0);
    await broker.close();
  });

  it('sweep frees streams past their meta TTL and only those', async () => {
    const clock = manualClock();
    const broker = new MemoryBroker({ now: clock.now, sweepIntervalMs: 0 });
    for (let i = 0; i < 100; i++) await broker.publish(`ch${i}`, asRaw(i), hist());
    await broker.history('read-only', { limit: 0, metaTtlMs: 20_000 });
    assert.equal(broker.size, 101);

    clock.advance(3000); // past history TTL: publications dropped, positions kept
    broker.sweep();
    assert.equal(broker.size, 101);

    clock.advance(2500); // past meta TTL of the published streams, not of the read one
    await broker.publish('ch0', asRaw('again'), hist()); // lazily recreated, new epoch
    broker.sweep();
    assert.equal(broker.size, 2);
    const h = await broker.history('ch0', { limit: -1, metaTtlMs: 5000 });
    assert.deepEqual(
      h.publications.map((p) => p.offset),
      [1],
    );

    clock.advance(20_000);
    broker.sweep();
    assert.equal(broker.size, 0);
    await broker.close();
  });

  it('sweep reschedules a stream whose expiry moved later', async () => {
    const clock = manualClock();
    const broker = new MemoryBroker({ now: clock.now, sweepIntervalMs: 0 });
    const first = await broker.publish('ch', asRaw(1), hist({ historyTtlMs: 1000, historyMetaTtlMs: 1000 }));
    clock.advance(800);
    await broker.publish('ch', asRaw(2), hist({ historyTtlMs: 1000, historyMetaTtlMs: 1000 }));
    clock.advance(400); // past the first publish's deadlines, within the second's
    broker.sweep();
    assert.equal(broker.size, 1);
    const h = await broker.history('ch', { limit: -1, metaTtlMs: 1000 });
    assert.equal(h.epoch, first.epoch);
    assert.deepEqual(
      h.publications.map((p) => p.offset),
      [1, 2],
    );
    clock.advance(1001);
    broker.sweep();
    assert.equal(broker.size, 0);
    await broker.close();
  });

  it('uses epochFactory and makes a new epoch after expiry', async () => {
    const clock = manualClock();
    let n = 0;
    const broker = new MemoryBroker({ now: clock.now, sweepIntervalMs: 0, epochFactory: () => `e${++n}` });
    assert.deepEqual(await broker.publish('ch', asRaw(1), hist()), { offset: 1, epoch: 'e1' });
    clock.advance(10_000);
    assert.deepEqual(await broker.publish('ch', asRaw(1), hist()), { offset: 1, epoch: 'e2' });
    await broker.close();
  });

  it('treats a meta TTL of 0 as defaultMetaTtlMs', async () => {
    const clock = manualClock();
    const broker = new MemoryBroker({ now: clock.now, sweepIntervalMs: 0, defaultMetaTtlMs: 10_000 });
    const pos = await broker.publish('ch', asRaw(1), hist({ historyMetaTtlMs: 0 }));
    clock.advance(9000);
    const h = await broker.history('ch', { limit: 0, metaTtlMs: 0 });
    assert.equal(h.epoch, pos.epoch);
    clock.advance(10_001);
    broker.sweep();
    assert.equal(broker.size, 0);
    await broker.close();
  });

  it('delivers synchronously inside publish', async () => {
    const seen: number[] = [];
    const broker = new MemoryBroker({ sweepIntervalMs: 0 });
    await broker.start({ ...noopHandler, onPublication: (_c, pub) => void seen.push(pub.offset) });
    await broker.subscribe('ch');
    const p = broker.publish('ch', asRaw(1), hist());
    assert.deepEqual(seen, [1]); // before the promise is awaited
    await p;
    await broker.close();
  });

  it('reports handler errors without failing the publish', async () => {
    const errors: unknown[] = [];
    const broker = new MemoryBroker({ sweepIntervalMs: 0, onHandlerError: (err) => void errors.push(err) });
    await broker.start({
      ...noopHandler,
      onPublication: () => {
        throw new Error('boom');
      },
    });
    await broker.subscribe('ch');
    assert.deepEqual((await broker.publish('ch', asRaw(1), hist())).offset, 1);
    assert.equal(errors.length, 1);
    const h = await broker.history('ch', { limit: -1, metaTtlMs: 1000 });
    assert.equal(h.publications.length, 1);
    await broker.close();
  });

  it('copies info and tags at publish time', async () => {
    const broker = new MemoryBroker({ sweepIntervalMs: 0 });
    const info = { user: 'u', client: 'c' };
    const tags = { k: 'v' };
    await broker.publish('ch', asRaw(1), hist({ info, tags }));
    info.user = 'changed';
    tags.k = 'changed';
    const [pub] = (await broker.history('ch', { limit: -1, metaTtlMs: 1000 })).publications;
    assert.deepEqual(pub, { offset: 1, data: asRaw(1), info: { user: 'u', client: 'c' }, tags: { k: 'v' } });
    await broker.close();
  });

  it('matches a naive model of history across trimming and compaction', async () => {
    const rand = seeded(42);
    for (let round = 0; round < 20; round++) {
      const broker = new MemoryBroker({ sweepIntervalMs: 0 });
      const size = 1 + Math.floor(rand() * 80);
      const model: Publication[] = [];
      let epoch = '';
      const publishes = Math.floor(rand() * 400);
      for (let i = 1; i <= publishes; i++) {
        const historySize = rand() < 0.1 ? 1 + Math.floor(rand() * 80) : size; // sizes may change
        ({ epoch } = await broker.publish(
          'ch',
          asRaw(i),
          hist({ historySize, historyTtlMs: 60_000, historyMetaTtlMs: 60_000 }),
        ));
        model.push({ offset: i, data: asRaw(i) });
        model.splice(0, Math.max(0, model.length - historySize));
        if (rand() < 0.02) {
          await broker.removeHistory('ch');
          model.length = 0;
        }
      }
      for (let q = 0; q < 50; q++) {
        const query: HistoryQuery = {
          limit: [-1, 0, 1, 2, 5, 1000][Math.floor(rand() * 6)]!,
          reverse: rand() < 0.5,
          metaTtlMs: 5000,
        };
        if (rand() < 0.7) query.since = { offset: Math.floor(rand() * (publishes + 3)), epoch };
        const got = await broker.history('ch', query);
        const want = naive(model, query);
        assert.deepEqual(
          got.publications.map((p) => p.offset),
          want.map((p) => p.offset),
          JSON.stringify({ round, query, publishes }),
        );
        assert.equal(got.offset, publishes);
      }
      await broker.close();
    }
  });

  it('close stops delivery and forgets streams', async () => {
    let delivered = 0;
    const broker = new MemoryBroker();
    await broker.start({ ...noopHandler, onPublication: () => void delivered++ });
    await broker.subscribe('ch');
    await broker.publish('ch', asRaw(1), hist());
    await broker.close();
    assert.equal(broker.size, 0);
    await broker.publish('ch', asRaw(2), hist());
    assert.equal(delivered, 1);
    await broker.close(); // idempotent
  });
});

describe('MemoryPresenceManager', () => {
  it('a channel emptied by its clients leaving leaves nothing queued (connection churn)', async () => {
    const pm = new MemoryPresenceManager({ sweepIntervalMs: 0 });
    for (let i = 0; i < 1000; i++) {
      const channel = `ch${i % 10}`;
      await pm.addPresence(channel, { user: `u${i}`, client: `c${i}` }, 60_000);
      await pm.removePresence(channel, `c${i}`, `u${i}`);
    }
    assert.equal(pm.size, 0);
    // Before: one entry (holding the emptied channel's state) per departed client, for the TTL.
    assert.equal(pm.queuedDeadlines, 0);
    await pm.addPresence('ch0', { user: 'u', client: 'a' }, 60_000);
    await pm.addPresence('ch0', { user: 'u', client: 'b' }, 60_000);
    await pm.removePresence('ch0', 'a', 'u');
    assert.equal(pm.queuedDeadlines, 1, 'one entry per channel with presence');
    await pm.close();
  });

  it('sweep frees expired entries and empty channels', async () => {
    const clock = manualClock();
    const pm = new MemoryPresenceManager({ now: clock.now, sweepIntervalMs: 0 });
    for (let i = 0; i < 50; i++) await pm.addPresence(`ch${i}`, { user: 'u', client: `c${i}` }, 1000);
    await pm.addPresence('ch0', { user: 'u', client: 'long' }, 10_000);
    assert.equal(pm.size, 50);
    clock.advance(1001);
    pm.sweep();
    assert.equal(pm.size, 1);
    assert.deepEqual(Object.keys(await pm.presence('ch0')), ['long']);
    clock.advance(10_000);
    pm.sweep();
    assert.equal(pm.size, 0);
    await pm.close();
  });

  it('sweep keeps refreshed entries', async () => {
    const clock = manualClock();
    const pm = new MemoryPresenceManager({ now: clock.now, sweepIntervalMs: 0 });
    await pm.addPresence('ch', { user: 'u', client: 'c' }, 1000);
    clock.advance(900);
    await pm.addPresence('ch', { user: 'u', client: 'c' }, 1000);
    clock.advance(200);
    pm.sweep();
    assert.equal(pm.size, 1);
    assert.deepEqual(await pm.presenceStats('ch'), { numClients: 1, numUsers: 1 });
    clock.advance(801);
    pm.sweep();
    assert.equal(pm.size, 0);
    await pm.close();
  });

  it('copies info on add', async () => {
    const pm = new MemoryPresenceManager({ sweepIntervalMs: 0 });
    const info = { user: 'u', client: 'c' };
    await pm.addPresence('ch', info, 1000);
    info.user = 'changed';
    assert.deepEqual(await pm.presence('ch'), { c: { user: 'u', client: 'c' } });
    await pm.close();
  });
});

describe('DeadlineQueue', () => {
  it('removes and reschedules entries by handle, keeping heap order', () => {
    const rand = seeded(11);
    const q = new DeadlineQueue<number>();
    const entries = Array.from({ length: 300 }, (_, i) => q.push(Math.floor(rand() * 1000), i));
    const live = new Map<number, number>();
    entries.forEach((e) => live.set(e.item, e.at));
    for (const e of entries) {
      const r = rand();
      if (r < 0.3) {
        q.remove(e);
        live.delete(e.item);
      } else if (r < 0.6) {
        const at = Math.floor(rand() * 1000);
        q.reschedule(e, at);
        live.set(e.item, at);
      }
    }
    q.remove(entries[0]!); // twice: a no-op
    live.delete(0);
    assert.equal(q.size, live.size);
    const popped: [number, number][] = [];
    for (let e = q.popDue(Infinity); e !== undefined; e = q.popDue(Infinity)) popped.push([e.at, e.item]);
    assert.deepEqual(
      popped.map(([at]) => at),
      [...live.values()].sort((a, b) => a - b),
    );
    assert.deepEqual(new Set(popped.map(([, item]) => item)), new Set(live.keys()));
  });

  it('pops due entries in deadline order', () => {
    const rand = seeded(7);
    const q = new DeadlineQueue<number>();
    const ats = Array.from({ length: 500 }, () => Math.floor(rand() * 1000));
    ats.forEach((at, i) => q.push(at, i));
    assert.equal(q.popDue(-1), undefined);
    const popped: number[] = [];
    for (let e = q.popDue(500); e !== undefined; e = q.popDue(500)) popped.push(e.at);
    const due = ats.filter((at) => at < 500).sort((a, b) => a - b);
    assert.deepEqual(popped, due);
    assert.equal(q.size, ats.length - due.length);
    for (let e = q.popDue(Infinity); e !== undefined; e = q.popDue(Infinity)) popped.push(e.at);
    assert.deepEqual(
      popped,
      [...ats].sort((a, b) => a - b),
    );
  });
});

/** naive is the reference semantics of history selection, written the obvious way. */
function naive(model: Publication[], q: HistoryQuery): Publication[] {
  if (q.limit === 0) return [];
  const limit = q.limit < 0 ? Infinity : q.limit;
  const since = q.since?.offset;
  if (!q.reverse) return model.filter((p) => since === undefined || p.offset > since).slice(0, limit);
  return model
    .filter((p) => since === undefined || p.offset < since)
    .reverse()
    .slice(0, limit);
}

/** seeded returns a small deterministic PRNG (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
