/**
 * The Broker conformance suite: the behaviour every engine (memory, Redis) must share. An
 * engine's test file calls {@link runBrokerSuite} with a factory for fresh brokers.
 *
 * Written for engines that deliver asynchronously too: it waits for deliveries instead of
 * expecting them at once, uses channel names unique per test (a shared Redis keeps state
 * between tests), and moves time with the fixture's `advance` when given, else by sleeping
 * past short real TTLs.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Broker, BrokerEventHandler, PublishOptions } from '../../src/engine/broker.js';
import { ErrorCode, ProtocolError } from '../../src/protocol/codes.js';
import type { ClientInfo, Publication, RawJSON } from '../../src/protocol/types.js';
import { asRaw } from '../../src/protocol/types.js';

/** BrokerFixture is one fresh, not yet started broker, with its clock and teardown. */
export interface BrokerFixture {
  broker: Broker;
  /** Moves the engine's clock forward by `ms`; without it the suite sleeps for real. */
  advance?: (ms: number) => void | Promise<void>;
  /** Releases the broker (close it, drop connections, remove test keys). */
  cleanup: () => Promise<void>;
}

/**
 * runBrokerSuite registers the Broker conformance tests under `describe(name)`. `factory` is
 * called once per test and must return a broker that was not started; the suite starts it
 * with a recording handler and calls `cleanup` after the test.
 */
export function runBrokerSuite(name: string, factory: () => Promise<BrokerFixture>): void {
  describe(name, () => {
    let fx: BrokerFixture;
    let broker: Broker;
    let rec: Recorder;
    let prefix: string;

    /** ch returns a channel name unique to this test. */
    const ch = (suffix = 'c'): string => `${prefix}${suffix}`;
    const advance = async (ms: number): Promise<void> => {
      if (fx.advance !== undefined) await fx.advance(ms);
      else await sleep(ms);
    };

    beforeEach(async () => {
      fx = await factory();
      broker = fx.broker;
      rec = new Recorder();
      prefix = `conf-${randomBytes(4).toString('hex')}-`;
      await broker.start(rec);
    });

    afterEach(async () => {
      await fx.cleanup();
    });

    it('assigns offsets 1..n in order within one epoch', async () => {
      const positions = [];
      for (let i = 0; i < 5; i++) positions.push(await broker.publish(ch(), asRaw(i), withHistory()));
      assert.deepEqual(
        positions.map((p) => p.offset),
        [1, 2, 3, 4, 5],
      );
      const epoch = positions[0]!.epoch;
      assert.ok(epoch !== '', 'a stream with history has an epoch');
      for (const p of positions) assert.equal(p.epoch, epoch);
      const h = await broker.history(ch(), { limit: -1, metaTtlMs: LONG });
      assert.deepEqual(
        h.publications.map((p) => [p.offset, p.data]),
        [0, 1, 2, 3, 4].map((i) => [i + 1, asRaw(i)]),
      );
      assert.equal(h.offset, 5);
      assert.equal(h.epoch, epoch);
    });

    it('delivers only subscribed channels, in offset order', async () => {
      await broker.subscribe(ch('a'));
      await broker.publish(ch('b'), asRaw('not subscribed'), withHistory());
      const positions = [];
      for (let i = 1; i <= 5; i++) positions.push(await broker.publish(ch('a'), asRaw(i), withHistory()));
      await waitFor(() => rec.pubs.length >= 5);
      await sleep(20); // let a stray delivery for channel b show up, if the engine has one
      assert.deepEqual(
        rec.pubs.map((d) => d.channel),
        Array(5).fill(ch('a')),
      );
      assert.deepEqual(
        rec.pubs.map((d) => d.pub.offset),
        [1, 2, 3, 4, 5],
      );
      assert.deepEqual(
        rec.pubs.map((d) => d.pub.data),
        [1, 2, 3, 4, 5].map((i) => asRaw(i)),
      );
      for (const d of rec.pubs) assert.equal(d.epoch, positions[0]!.epoch);
    });

    it('stops delivering after unsubscribe', async () => {
      await broker.subscribe(ch('a'));
      await broker.subscribe(ch('b'));
      await broker.publish(ch('a'), asRaw(1), withHistory());
      await waitFor(() => rec.pubs.length >= 1);
      await broker.unsubscribe(ch('a'));
      await broker.publish(ch('a'), asRaw(2), withHistory());
      await broker.publish(ch('b'), asRaw(3), withHistory());
      await waitFor(() => rec.pubs.length >= 2);
      await sleep(20);
      assert.deepEqual(
        rec.pubs.map((d) => [d.channel, d.pub.data]),
        [
          [ch('a'), asRaw(1)],
          [ch('b'), asRaw(3)],
        ],
      );
    });

    it('keeps no history when historySize or historyTtl is 0', async () => {
      await broker.subscribe(ch());
      const noSize = await broker.publish(ch(), asRaw(1), {
        historySize: 0,
        historyTtlMs: LONG,
        historyMetaTtlMs: LONG,
      });
      const noTtl = await broker.publish(ch(), asRaw(2), { historySize: 10, historyTtlMs: 0, historyMetaTtlMs: LONG });
      assert.deepEqual(noSize, { offset: 0, epoch: '' });
      assert.deepEqual(noTtl, { offset: 0, epoch: '' });
      await waitFor(() => rec.pubs.length >= 2);
      assert.deepEqual(
        rec.pubs.map((d) => [d.pub.offset, d.epoch, d.pub.data]),
        [
          [0, '', asRaw(1)],
          [0, '', asRaw(2)],
        ],
      );
      const h = await broker.history(ch(), { limit: -1, metaTtlMs: LONG });
      assert.deepEqual(h.publications, []);
      assert.equal(h.offset, 0);
    });

    it('keeps data, info, tags and time in history and delivery', async () => {
      await broker.subscribe(ch());
      const info: ClientInfo = {
        user: 'u1',
        client: 'c1',
        conn_info: asRaw({ name: 'Ann' }),
        chan_info: asRaw({ team: 2 }),
      };
      const data = asRaw({ text: 'héllo', n: [1, 2] });
      const opts = { ...withHistory(), info, tags: { kind: 'chat' }, time: 1_700_000_000_123 };
      await broker.publish(ch(), data, opts);
      const expected: Publication = { offset: 1, data, info, tags: { kind: 'chat' }, time: 1_700_000_000_123 };
      await waitFor(() => rec.pubs.length >= 1);
      assert.deepEqual(rec.pubs[0]!.pub, expected);
      const h = await broker.history(ch(), { limit: -1, metaTtlMs: LONG });
      assert.deepEqual(h.publications, [expected]);
    });

    it('trims history to historySize, keeping the newest', async () => {
      for (let i = 1; i <= 10; i++) await broker.publish(ch(), asRaw(i), withHistory({ historySize: 3 }));
      const h = await broker.history(ch(), { limit: -1, metaTtlMs: LONG });
      assert.deepEqual(offsets(h.publications), [8, 9, 10]);
      assert.equal(h.offset, 10);
    });

    it('drops publications after history TTL and keeps the position', async () => {
      const first = await broker.publish(ch(), asRaw(1), withHistory({ historyTtlMs: TTL }));
      await broker.publish(ch(), asRaw(2), withHistory({ historyTtlMs: TTL }));
      const before = await broker.history(ch(), { limit: -1, metaTtlMs: LONG });
      assert.deepEqual(offsets(before.publications), [1, 2]);

      await advance(TTL + MARGIN);
      const after = await broker.history(ch(), { limit: -1, metaTtlMs: LONG });
      assert.deepEqual(after.publications, []);
      assert.equal(after.offset, 2);
      assert.equal(after.epoch, first.epoch);

      const next = await broker.publish(ch(), asRaw(3), withHistory());
      assert.deepEqual(next, { offset: 3, epoch: first.epoch });
    });

    it('starts a new epoch after meta TTL, with offsets from 1', async () => {
      const opts = withHistory({ historyTtlMs: TTL, historyMetaTtlMs: 2 * TTL });
      const first = await broker.publish(ch(), asRaw(1), opts);
      await broker.publish(ch(), asRaw(2), opts);

      await advance(2 * TTL + MARGIN);
      const h = await broker.history(ch(), { limit: -1, metaTtlMs: LONG });
      assert.notEqual(h.epoch, first.epoch);
      assert.ok(h.epoch !== '');
      assert.equal(h.offset, 0);
      assert.deepEqual(h.publications, []);

      const next = await broker.publish(ch(), asRaw(3), withHistory());
      assert.deepEqual(next, { offset: 1, epoch: h.epoch });
    });

    it('keeps the position alive while history is read', async () => {
      const opts = withHistory({ historyTtlMs: TTL, historyMetaTtlMs: 2 * TTL });
      const first = await broker.publish(ch(), asRaw(1), opts);
      await advance(TTL + MARGIN);
      await broker.history(ch(), { limit: 0, metaTtlMs: 2 * TTL });
      await advance(TTL + MARGIN); // past the publish's meta TTL, within the read's
      const h = await broker.history(ch(), { limit: 0, metaTtlMs: LONG });
      assert.deepEqual({ offset: h.offset, epoch: h.epoch }, first);
    });

    it('gives an empty channel a stable position', async () => {
      const a = await broker.history(ch(), { limit: -1, metaTtlMs: LONG });
      const b = await broker.history(ch(), { limit: -1, metaTtlMs: LONG });
      assert.ok(a.epoch !== '');
      assert.deepEqual(a, { publications: [], offset: 0, epoch: a.epoch });
      assert.deepEqual(b, a);
      const pos = await broker.publish(ch(), asRaw(1), withHistory());
      assert.deepEqual(pos, { offset: 1, epoch: a.epoch });
    });

    it('filters by since (forward)', async () => {
      const { epoch } = await publishN(5);
      const after2 = await broker.history(ch(), { since: { offset: 2, epoch }, limit: -1, metaTtlMs: LONG });
      assert.deepEqual(offsets(after2.publications), [3, 4, 5]);
      assert.equal(after2.offset, 5);
      const atTop = await broker.history(ch(), { since: { offset: 5, epoch }, limit: -1, metaTtlMs: LONG });
      assert.deepEqual(atTop.publications, []);
      assert.equal(atTop.offset, 5);
      const fromZero = await broker.history(ch(), { since: { offset: 0, epoch }, limit: -1, metaTtlMs: LONG });
      assert.deepEqual(offsets(fromZero.publications), [1, 2, 3, 4, 5]);
      const emptyEpoch = await broker.history(ch(), { since: { offset: 3, epoch: '' }, limit: -1, metaTtlMs: LONG });
      assert.deepEqual(offsets(emptyEpoch.publications), [4, 5]);
    });

    it('returns the retained tail when since is older than the trimmed history', async () => {
      let epoch = '';
      for (let i = 1; i <= 10; i++) ({ epoch } = await broker.publish(ch(), asRaw(i), withHistory({ historySize: 3 })));
      const h = await broker.history(ch(), { since: { offset: 2, epoch }, limit: -1, metaTtlMs: LONG });
      assert.deepEqual(offsets(h.publications), [8, 9, 10]); // the caller sees the gap 3..7
    });

    it('applies limit 0, -1 and n', async () => {
      const { epoch } = await publishN(5);
      const zero = await broker.history(ch(), { limit: 0, metaTtlMs: LONG });
      assert.deepEqual(zero, { publications: [], offset: 5, epoch });
      const all = await broker.history(ch(), { limit: -1, metaTtlMs: LONG });
      assert.deepEqual(offsets(all.publications), [1, 2, 3, 4, 5]);
      const two = await broker.history(ch(), { limit: 2, metaTtlMs: LONG });
      assert.deepEqual(offsets(two.publications), [1, 2]);
      assert.equal(two.offset, 5);
      const sinceTwo = await broker.history(ch(), { since: { offset: 2, epoch }, limit: 2, metaTtlMs: LONG });
      assert.deepEqual(offsets(sinceTwo.publications), [3, 4]);
      const sinceZero = await broker.history(ch(), { since: { offset: 2, epoch }, limit: 0, metaTtlMs: LONG });
      assert.deepEqual(sinceZero, { publications: [], offset: 5, epoch });
      const many = await broker.history(ch(), { limit: 100, metaTtlMs: LONG });
      assert.deepEqual(offsets(many.publications), [1, 2, 3, 4, 5]);
    });

    it('reads in reverse, newest first', async () => {
      const { epoch } = await publishN(5);
      const q = { reverse: true, metaTtlMs: LONG };
      const all = await broker.history(ch(), { ...q, limit: -1 });
      assert.deepEqual(offsets(all.publications), [5, 4, 3, 2, 1]);
      assert.equal(all.offset, 5);
      const two = await broker.history(ch(), { ...q, limit: 2 });
      assert.deepEqual(offsets(two.publications), [5, 4]);
      const before3 = await broker.history(ch(), { ...q, since: { offset: 3, epoch }, limit: -1 });
      assert.deepEqual(offsets(before3.publications), [2, 1]);
      const before5one = await broker.history(ch(), { ...q, since: { offset: 5, epoch }, limit: 1 });
      assert.deepEqual(offsets(before5one.publications), [4]);
      const before1 = await broker.history(ch(), { ...q, since: { offset: 1, epoch }, limit: -1 });
      assert.deepEqual(before1.publications, []);
      const zero = await broker.history(ch(), { ...q, limit: 0 });
      assert.deepEqual(zero.publications, []);
    });

    it('rejects since with another epoch as unrecoverable (112)', async () => {
      await publishN(3);
      const isUnrecoverable = (err: unknown): boolean =>
        err instanceof ProtocolError && err.code === ErrorCode.UnrecoverablePosition;
      await assert.rejects(
        broker.history(ch(), { since: { offset: 1, epoch: 'another' }, limit: -1, metaTtlMs: LONG }),
        isUnrecoverable,
      );
      await assert.rejects(
        broker.history(ch('missing'), { since: { offset: 0, epoch: 'another' }, limit: -1, metaTtlMs: LONG }),
        isUnrecoverable,
      );
    });

    it('removes history and keeps the position', async () => {
      const { epoch } = await publishN(3);
      await broker.removeHistory(ch());
      const h = await broker.history(ch(), { limit: -1, metaTtlMs: LONG });
      assert.deepEqual(h, { publications: [], offset: 3, epoch });
      const next = await broker.publish(ch(), asRaw(4), withHistory());
      assert.deepEqual(next, { offset: 4, epoch });
      const after = await broker.history(ch(), { limit: -1, metaTtlMs: LONG });
      assert.deepEqual(offsets(after.publications), [4]);
      await broker.removeHistory(ch('missing')); // a no-op, not an error
    });

    it('does not change publications it returned earlier', async () => {
      await publishN(3, { historySize: 3 });
      const h = await broker.history(ch(), { limit: -1, metaTtlMs: LONG });
      const snapshot = structuredClone(h.publications);
      await publishN(5, { historySize: 3 });
      await broker.removeHistory(ch());
      assert.deepEqual(h.publications, snapshot);
    });

    it('delivers join and leave for subscribed channels only', async () => {
      const info: ClientInfo = { user: 'u1', client: 'c1', conn_info: asRaw({ a: 1 }) };
      await broker.subscribe(ch('a'));
      await broker.publishJoin(ch('b'), info);
      await broker.publishJoin(ch('a'), info);
      await broker.publishLeave(ch('b'), info);
      await broker.publishLeave(ch('a'), info);
      await waitFor(() => rec.joins.length >= 1 && rec.leaves.length >= 1);
      await sleep(20);
      assert.deepEqual(rec.joins, [{ channel: ch('a'), info }]);
      assert.deepEqual(rec.leaves, [{ channel: ch('a'), info }]);
    });

    it('delivers control messages', async () => {
      await broker.publishControl(asRaw({ op: 'disconnect', user: 'u1' }));
      await broker.publishControl(asRaw({ op: 'noop' }));
      await waitFor(() => rec.controls.length >= 2);
      assert.deepEqual(rec.controls, [asRaw({ op: 'disconnect', user: 'u1' }), asRaw({ op: 'noop' })]);
    });

    it('gives concurrent publishes gapless unique offsets, delivered in order', async () => {
      const n = 200;
      await broker.subscribe(ch());
      const positions = await Promise.all(
        Array.from({ length: n }, (_, i) => broker.publish(ch(), asRaw(i), withHistory({ historySize: n }))),
      );
      const sorted = positions.map((p) => p.offset).sort((a, b) => a - b);
      assert.deepEqual(
        sorted,
        Array.from({ length: n }, (_, i) => i + 1),
      );
      assert.equal(new Set(positions.map((p) => p.epoch)).size, 1);
      await waitFor(() => rec.pubs.length >= n);
      assert.deepEqual(
        rec.pubs.map((d) => d.pub.offset),
        sorted,
      );
      // History agrees with what each publish was told: offset N holds the data of that call.
      const h = await broker.history(ch(), { limit: -1, metaTtlMs: LONG });
      const byOffset = new Map(h.publications.map((p) => [p.offset, p.data]));
      positions.forEach((p, i) => assert.equal(byOffset.get(p.offset), asRaw(i)));
    });

    /** publishN publishes 1..n to ch() with history and returns the last position. */
    async function publishN(n: number, opts: Partial<PublishOptions> = {}) {
      let last = { offset: 0, epoch: '' };
      for (let i = 1; i <= n; i++) last = await broker.publish(ch(), asRaw(i), withHistory(opts));
      return last;
    }
  });
}

/** A TTL short enough to wait for in real time, long enough for a few engine round trips. */
export const TTL = 200;
/** How far past a TTL the suite moves the clock before expecting expiry. */
export const MARGIN = 150;
/** A TTL no test outlives. */
export const LONG = 60_000;

export function withHistory(opts: Partial<PublishOptions> = {}): PublishOptions {
  return { historySize: 100, historyTtlMs: LONG, historyMetaTtlMs: LONG, ...opts };
}

function offsets(pubs: Publication[]): number[] {
  return pubs.map((p) => p.offset);
}

/** Recorder is an event handler that records every delivery, in order. */
export class Recorder implements BrokerEventHandler {
  readonly pubs: { channel: string; pub: Publication; epoch: string }[] = [];
  readonly joins: { channel: string; info: ClientInfo }[] = [];
  readonly leaves: { channel: string; info: ClientInfo }[] = [];
  readonly controls: RawJSON[] = [];

  onPublication(channel: string, pub: Publication, epoch: string): void {
    this.pubs.push({ channel, pub, epoch });
  }
  onJoin(channel: string, info: ClientInfo): void {
    this.joins.push({ channel, info });
  }
  onLeave(channel: string, info: ClientInfo): void {
    this.leaves.push({ channel, info });
  }
  onControl(data: RawJSON): void {
    this.controls.push(data);
  }
}

/** sleep waits `ms` of real time. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** waitFor resolves once `cond()` holds, polling; it fails the test after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`condition not met within ${timeoutMs} ms`);
    await sleep(2);
  }
}
