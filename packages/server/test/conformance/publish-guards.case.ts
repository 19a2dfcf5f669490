/**
 * The publish guards every engine must share: idempotent publish (a repeated idempotency key
 * on a channel publishes nothing and answers the first result, until the key's TTL passes)
 * and ordered publish (with history, a version not above the channel's last is skipped). An
 * engine's test file calls {@link runPublishGuardSuite} with the same factory it gives the
 * broker suite.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Broker, PublishOptions } from '../../src/engine/broker.js';
import { asRaw } from '../../src/protocol/types.js';
import { type BrokerFixture, LONG, MARGIN, Recorder, sleep, TTL, waitFor, withHistory } from './broker.case.js';

/** runPublishGuardSuite registers the idempotency and version tests under `describe(name)`. */
export function runPublishGuardSuite(name: string, factory: () => Promise<BrokerFixture>): void {
  describe(name, () => {
    let fx: BrokerFixture;
    let broker: Broker;
    let rec: Recorder;
    let prefix: string;
    const ch = (suffix = 'c'): string => `${prefix}${suffix}`;
    const advance = async (ms: number): Promise<void> => {
      if (fx.advance !== undefined) await fx.advance(ms);
      else await sleep(ms);
    };
    /** settle lets an asynchronous engine deliver what it is going to deliver. */
    const settle = () => sleep(fx.advance === undefined ? 100 : 0);
    const keyed = (key: string, over: Partial<PublishOptions> = {}) => withHistory({ idempotencyKey: key, ...over });

    beforeEach(async () => {
      fx = await factory();
      broker = fx.broker;
      rec = new Recorder();
      prefix = `guard-${randomBytes(4).toString('hex')}-`;
      await broker.start(rec);
    });
    afterEach(async () => {
      await fx.cleanup();
    });

    it('publishes a repeated idempotency key once and answers the first result', async () => {
      await broker.subscribe(ch());
      const first = await broker.publish(ch(), asRaw('a'), keyed('k1'));
      const repeat = await broker.publish(ch(), asRaw('a, again'), keyed('k1'));
      const other = await broker.publish(ch(), asRaw('b'), keyed('k2'));
      assert.deepEqual(first, { offset: 1, epoch: first.epoch });
      assert.deepEqual(repeat, { offset: 1, epoch: first.epoch, suppressed: 'idempotency' });
      assert.deepEqual(other, { offset: 2, epoch: first.epoch });
      await waitFor(() => rec.pubs.length >= 2);
      await settle();
      assert.deepEqual(
        rec.pubs.map((p) => p.pub.data),
        [asRaw('a'), asRaw('b')],
      );
      const h = await broker.history(ch(), { limit: -1, metaTtlMs: LONG });
      assert.deepEqual(
        h.publications.map((p) => p.data),
        [asRaw('a'), asRaw('b')],
      );
    });

    it('scopes idempotency keys to the channel', async () => {
      const a = await broker.publish(ch('a'), asRaw(1), keyed('same'));
      const b = await broker.publish(ch('b'), asRaw(1), keyed('same'));
      assert.equal(a.suppressed, undefined);
      assert.equal(b.suppressed, undefined);
      assert.equal(b.offset, 1);
    });

    it('publishes concurrent repeats of one key once', async () => {
      await broker.subscribe(ch());
      const results = await Promise.all(
        Array.from({ length: 8 }, () => broker.publish(ch(), asRaw('x'), keyed('race'))),
      );
      assert.equal(results.filter((r) => r.suppressed === undefined).length, 1);
      for (const r of results) assert.equal(r.offset, 1);
      await waitFor(() => rec.pubs.length >= 1);
      await settle();
      assert.equal(rec.pubs.length, 1);
    });

    it('remembers a key without history too (offset 0)', async () => {
      await broker.subscribe(ch());
      const opts = { historySize: 0, historyTtlMs: 0, historyMetaTtlMs: LONG, idempotencyKey: 'k' };
      assert.deepEqual(await broker.publish(ch(), asRaw(1), opts), { offset: 0, epoch: '' });
      assert.deepEqual(await broker.publish(ch(), asRaw(1), opts), { offset: 0, epoch: '', suppressed: 'idempotency' });
      await waitFor(() => rec.pubs.length >= 1);
      await settle();
      assert.equal(rec.pubs.length, 1);
    });

    it('publishes a key again once its result TTL passed', async () => {
      const opts = keyed('short', { idempotentResultTtlMs: TTL });
      const first = await broker.publish(ch(), asRaw(1), opts);
      assert.equal((await broker.publish(ch(), asRaw(1), opts)).suppressed, 'idempotency');
      await advance(TTL + MARGIN);
      const later = await broker.publish(ch(), asRaw(1), opts);
      assert.deepEqual(later, { offset: first.offset + 1, epoch: first.epoch });
    });

    it('skips a version not above the last one and answers the current position', async () => {
      await broker.subscribe(ch());
      const v = (version: number, versionEpoch?: string) =>
        withHistory({ version, ...(versionEpoch !== undefined ? { versionEpoch } : {}) });
      const p5 = await broker.publish(ch(), asRaw('v5'), v(5));
      const p7 = await broker.publish(ch(), asRaw('v7'), v(7));
      assert.deepEqual(await broker.publish(ch(), asRaw('v6'), v(6)), { ...p7, suppressed: 'version' });
      assert.deepEqual(await broker.publish(ch(), asRaw('v7 again'), v(7)), { ...p7, suppressed: 'version' });
      const p8 = await broker.publish(ch(), asRaw('v8'), v(8));
      assert.deepEqual([p5.offset, p7.offset, p8.offset], [1, 2, 3]);
      // Another version epoch starts over (the backend's counter was reset); no epoch means "same".
      const p1 = await broker.publish(ch(), asRaw('e2 v1'), v(1, 'e2'));
      assert.equal(p1.suppressed, undefined);
      assert.equal((await broker.publish(ch(), asRaw('old'), v(1))).suppressed, 'version');
      // A publication without a version is never skipped.
      assert.equal((await broker.publish(ch(), asRaw('plain'), withHistory())).suppressed, undefined);
      await waitFor(() => rec.pubs.length >= 5);
      await settle();
      assert.deepEqual(
        rec.pubs.map((p) => p.pub.data),
        ['v5', 'v7', 'v8', 'e2 v1', 'plain'].map((d) => asRaw(d)),
      );
    });

    it('ignores versions on a channel without history, as Centrifugo', async () => {
      const opts = { historySize: 0, historyTtlMs: 0, historyMetaTtlMs: LONG, version: 3 };
      assert.equal((await broker.publish(ch(), asRaw(1), opts)).suppressed, undefined);
      assert.equal((await broker.publish(ch(), asRaw(2), opts)).suppressed, undefined);
    });

    it('checks the idempotency key before the version', async () => {
      const first = await broker.publish(ch(), asRaw(1), keyed('k', { version: 2 }));
      // The retry of the same publish is a repeat, not an old version.
      assert.deepEqual(await broker.publish(ch(), asRaw(1), keyed('k', { version: 2 })), {
        ...first,
        suppressed: 'idempotency',
      });
    });
  });
}
