/**
 * The MapBroker conformance suite: the behaviour every map engine (memory, Redis, PostgreSQL)
 * must share. An engine's test file calls {@link runMapBrokerSuite} with a factory for fresh map brokers.
 *
 * As broker.case.ts, it is written for engines that deliver asynchronously: it waits for
 * deliveries, uses channel names unique per test (a shared Redis keeps state between tests),
 * and moves time with the fixture's `advance` when given, else by sleeping past short real
 * TTLs (an engine whose key expiry runs on a timer must run it often in tests).
 *
 * @module
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  MapLimitError,
  type MapBroker,
  type MapPublishOptions,
  type MapRemoveOptions,
  type MapRetention,
} from '../../src/engine/map-broker.js';
import { ErrorCode, ProtocolError } from '../../src/protocol/codes.js';
import type { Publication, RawJSON, StreamPosition } from '../../src/protocol/types.js';
import { asRaw } from '../../src/protocol/types.js';
import { mulberry32 } from '../helpers/prng.js';
import { LONG, MARGIN, Recorder, sleep, TTL, waitFor } from './broker.case.js';

/** MapBrokerFixture is one fresh, not yet started map broker, with its clock and teardown. */
export interface MapBrokerFixture {
  map: MapBroker;
  /** Moves the engine's clock forward by `ms` (and runs its expiry); without it the suite sleeps. */
  advance?: (ms: number) => void | Promise<void>;
  /** Releases the broker (close it, remove test keys). */
  cleanup: () => Promise<void>;
}

/** retention is a durable map's retention with long TTLs, `over` applied. */
export function retention(over: Partial<MapRetention> = {}): MapRetention {
  return { keyTtlMs: 0, streamSize: 100, streamTtlMs: LONG, metaTtlMs: LONG, maxKeys: 1000, ...over };
}

/** set is the options of a plain write of `data`. */
export function set(data: unknown, over: Partial<MapPublishOptions> = {}): MapPublishOptions {
  return { ...retention(), data: asRaw(data), ...over };
}

/** del is the options of a plain removal. */
export function del(over: Partial<MapRemoveOptions> = {}): MapRemoveOptions {
  return { ...retention(), ...over };
}

/** rejectsWith asserts that `p` rejects with a ProtocolError of `code`. */
async function rejectsWith(p: Promise<unknown>, code: number): Promise<unknown> {
  let caught: unknown;
  await p.then(
    () => assert.fail(`expected error ${code}`),
    (err: unknown) => (caught = err),
  );
  assert.ok(caught instanceof ProtocolError, `expected a ProtocolError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  return caught;
}

/** readAll pages through a channel's state with `limit` per page; returns the entries and pages. */
export async function readAll(
  map: MapBroker,
  channel: string,
  limit: number,
): Promise<{ entries: Publication[]; pages: number; first: StreamPosition }> {
  const entries: Publication[] = [];
  let cursor = '';
  let pages = 0;
  let first: StreamPosition | undefined;
  do {
    const page = await map.readState(channel, { cursor, limit, metaTtlMs: LONG });
    first ??= { offset: page.offset, epoch: page.epoch };
    entries.push(...page.entries);
    cursor = page.cursor;
    pages++;
    assert.ok(pages < 10_000, 'paging ends');
  } while (cursor !== '');
  return { entries, pages, first };
}

/**
 * runMapBrokerSuite registers the MapBroker conformance tests under `describe(name)`. `factory`
 * is called once per test and must return a map broker that was not started; the suite starts
 * it with a recording handler and calls `cleanup` after the test.
 */
export function runMapBrokerSuite(name: string, factory: () => Promise<MapBrokerFixture>): void {
  describe(name, () => {
    let fx: MapBrokerFixture;
    let map: MapBroker;
    let rec: Recorder;
    let prefix = '';
    const ch = (suffix = 'm'): string => `${prefix}${suffix}`;
    const advance = async (ms: number): Promise<void> => {
      if (fx.advance !== undefined) await fx.advance(ms);
      else await sleep(ms);
    };
    const delivered = (channel = ch()): Publication[] =>
      rec.pubs.filter((d) => d.channel === channel).map((d) => d.pub);

    beforeEach(async () => {
      fx = await factory();
      map = fx.map;
      rec = new Recorder();
      prefix = `mconf-${randomBytes(4).toString('hex')}-`;
      await map.start(rec);
    });
    afterEach(async () => {
      await fx.cleanup();
    });

    it('numbers changes 1, 2, 3… and delivers them in offset order', async () => {
      await map.subscribe(ch());
      await map.publish(ch('other'), 'x', set('not subscribed'));
      const results = [];
      for (let i = 1; i <= 6; i++) results.push(await map.publish(ch(), `k${i % 3}`, set(i)));
      assert.deepEqual(
        results.map((r) => r.offset),
        [1, 2, 3, 4, 5, 6],
      );
      const epoch = results[0]!.epoch;
      assert.ok(epoch !== '');
      for (const r of results) assert.equal(r.epoch, epoch);
      await waitFor(() => rec.pubs.length >= 6);
      await sleep(20);
      assert.deepEqual(
        rec.pubs.map((d) => [d.channel, d.pub.offset, d.pub.key, d.pub.data, d.epoch]),
        [1, 2, 3, 4, 5, 6].map((i) => [ch(), i, `k${i % 3}`, asRaw(i), epoch]),
      );
      const stream = await map.readStream(ch(), { limit: -1, metaTtlMs: LONG });
      assert.deepEqual(
        stream.publications.map((p) => [p.offset, p.key, p.data]),
        [1, 2, 3, 4, 5, 6].map((i) => [i, `k${i % 3}`, asRaw(i)]),
      );
      assert.deepEqual([stream.offset, stream.epoch], [6, epoch]);
      const state = await readAll(map, ch(), 10);
      assert.deepEqual(
        state.entries.map((p) => [p.key, p.offset, p.data]),
        [
          ['k0', 6, asRaw(6)],
          ['k1', 4, asRaw(4)],
          ['k2', 5, asRaw(5)],
        ],
      );
    });

    it('keeps info, tags and score of a write and delivers them', async () => {
      await map.subscribe(ch());
      const info = { user: 'u1', client: 'c1' };
      await map.publish(ch(), 'a', set({ v: 1 }, { info, tags: { team: 'red' }, score: 7 }));
      await waitFor(() => rec.pubs.length >= 1);
      const pub = rec.pubs[0]!.pub;
      assert.deepEqual([pub.key, pub.info, pub.tags, pub.score], ['a', info, { team: 'red' }, 7]);
      const page = await map.readState(ch(), { cursor: '', limit: 10, metaTtlMs: LONG });
      assert.deepEqual(page.entries, [
        { offset: 1, data: asRaw({ v: 1 }), key: 'a', info, tags: { team: 'red' }, score: 7 },
      ]);
    });

    it('delivers a removal with empty data, removed and the entry tags', async () => {
      await map.subscribe(ch());
      await map.publish(ch(), 'a', set(1, { tags: { team: 'red' } }));
      const removed = await map.remove(ch(), 'a', del());
      assert.equal(removed.offset, 2);
      assert.equal(removed.suppressed, undefined);
      const missing = await map.remove(ch(), 'a', del());
      assert.deepEqual(missing, { offset: 2, epoch: removed.epoch, suppressed: 'key_not_found' });
      await waitFor(() => rec.pubs.length >= 2);
      await sleep(20);
      assert.equal(rec.pubs.length, 2, 'a suppressed removal delivers nothing');
      const pub = rec.pubs[1]!.pub;
      assert.deepEqual([pub.offset, pub.key, pub.data, pub.removed, pub.tags], [2, 'a', '', true, { team: 'red' }]);
      const stream = await map.readStream(ch(), {
        since: { offset: 1, epoch: removed.epoch },
        limit: -1,
        metaTtlMs: LONG,
      });
      assert.deepEqual(
        stream.publications.map((p) => [p.offset, p.key, p.removed, p.data]),
        [[2, 'a', true, '']],
      );
      assert.deepEqual((await map.readState(ch(), { cursor: '', limit: 10, metaTtlMs: LONG })).entries, []);
      assert.deepEqual(await map.stats(ch()), { numKeys: 0 });
    });

    it('state read page by page then the stream after its position gives exactly the final map', async () => {
      const rand = mulberry32(7);
      for (let i = 0; i < 30; i++) await map.publish(ch(), key(i), set(i));
      const mirror = new Map<string, { offset: number; data: RawJSON }>();
      let cursor = '';
      let at: StreamPosition | undefined;
      let write = 1000;
      do {
        const page = await map.readState(ch(), { cursor, limit: 4, metaTtlMs: LONG });
        at ??= { offset: page.offset, epoch: page.epoch };
        for (const e of page.entries) mirror.set(e.key!, { offset: e.offset, data: e.data });
        cursor = page.cursor;
        // Writes between pages: sets (new and existing keys) and removals, before and after the cursor.
        for (let n = 0; n < 3; n++) {
          const k = key(Math.floor(rand() * 40));
          if (rand() < 0.3) await map.remove(ch(), k, del());
          else await map.publish(ch(), k, set(write++));
        }
      } while (cursor !== '');
      const stream = await map.readStream(ch(), { since: at, limit: -1, metaTtlMs: LONG });
      assert.deepEqual(
        stream.publications.map((p) => p.offset),
        Array.from({ length: stream.offset - at!.offset }, (_, i) => at!.offset + 1 + i),
        'every change after the position, once, in order',
      );
      for (const p of stream.publications) {
        const had = mirror.get(p.key!);
        if (had !== undefined && had.offset >= p.offset) continue; // the page already held it
        if (p.removed) mirror.delete(p.key!);
        else mirror.set(p.key!, { offset: p.offset, data: p.data });
      }
      const final = await readAll(map, ch(), 1000);
      assert.deepEqual(
        [...mirror.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, v.offset, v.data]),
        final.entries.map((p) => [p.key, p.offset, p.data]),
      );
    });

    it('removes a key when its TTL passes: subscribers get the removal, state no longer has it', async () => {
      await map.subscribe(ch());
      await map.publish(ch(), 'short', set(1, { keyTtlMs: TTL, tags: { t: '1' } }));
      await map.publish(ch(), 'kept', set(2));
      await advance(TTL / 2);
      assert.equal((await map.stats(ch())).numKeys, 2);
      await advance(TTL / 2 + MARGIN);
      await waitFor(() => rec.pubs.some((d) => d.pub.removed === true), 3000);
      await sleep(50);
      const removals = rec.pubs.filter((d) => d.pub.removed === true).map((d) => d.pub);
      assert.deepEqual(
        removals.map((p) => [p.key, p.offset, p.data, p.tags]),
        [['short', 3, '', { t: '1' }]],
      );
      const state = await readAll(map, ch(), 10);
      assert.deepEqual(
        state.entries.map((p) => p.key),
        ['kept'],
      );
      assert.equal(state.first.offset, 3);
      const stream = await map.readStream(ch(), { limit: -1, metaTtlMs: LONG });
      assert.deepEqual(
        stream.publications.map((p) => [p.offset, p.key, p.removed ?? false]),
        [
          [1, 'short', false],
          [2, 'kept', false],
          [3, 'short', true],
        ],
      );
    });

    it('a rewrite pushes a key TTL back', async () => {
      await map.publish(ch(), 'k', set(1, { keyTtlMs: TTL * 2 }));
      await advance(TTL);
      await map.publish(ch(), 'k', set(2, { keyTtlMs: TTL * 2 }));
      await advance(TTL + MARGIN / 2);
      assert.deepEqual(await map.stats(ch()), { numKeys: 1 });
    });

    it('key modes: if_new writes only a missing key, if_exists only an existing one', async () => {
      await map.subscribe(ch());
      const miss = await map.publish(ch(), 'a', set(1, { keyMode: 'if_exists' }));
      assert.equal(miss.suppressed, 'key_not_found');
      assert.equal(miss.offset, 0);
      const first = await map.publish(ch(), 'a', set(1, { keyMode: 'if_new' }));
      assert.equal(first.suppressed, undefined);
      const again = await map.publish(ch(), 'a', set(2, { keyMode: 'if_new' }));
      assert.deepEqual(again, { offset: 1, epoch: first.epoch, suppressed: 'key_exists' });
      const update = await map.publish(ch(), 'a', set(3, { keyMode: 'if_exists' }));
      assert.deepEqual([update.offset, update.suppressed], [2, undefined]);
      await waitFor(() => rec.pubs.length >= 2);
      await sleep(20);
      assert.deepEqual(
        rec.pubs.map((d) => d.pub.data),
        [asRaw(1), asRaw(3)],
      );
    });

    it('ownerUser: an existing entry changes or goes only for the user who wrote it', async () => {
      const alice = { user: 'alice', client: 'c1' };
      await map.publish(ch(), 'slot', set('a', { info: alice, keyMode: 'if_new', ownerUser: 'alice' }));
      const steal = await map.publish(
        ch(),
        'slot',
        set('b', { info: { user: 'bob', client: 'c2' }, ownerUser: 'bob' }),
      );
      assert.equal(steal.suppressed, 'not_owner');
      const kick = await map.remove(ch(), 'slot', del({ ownerUser: 'bob' }));
      assert.equal(kick.suppressed, 'not_owner');
      // A taken key answers key_exists to an if_new claim, whoever asks.
      const claim = await map.publish(ch(), 'slot', set('b', { keyMode: 'if_new', ownerUser: 'bob' }));
      assert.equal(claim.suppressed, 'key_exists');
      const own = await map.publish(ch(), 'slot', set('a2', { info: alice, ownerUser: 'alice' }));
      assert.equal(own.suppressed, undefined);
      const anon = await map.remove(ch(), 'slot', del({ ownerUser: '' }));
      assert.equal(anon.suppressed, 'not_owner', "an anonymous owner is not alice's");
      const server = await map.publish(ch(), 'srv', set('s'));
      assert.equal((await map.remove(ch(), 'srv', del({ ownerUser: 'alice' }))).suppressed, 'not_owner');
      assert.equal(server.suppressed, undefined);
      assert.equal((await map.remove(ch(), 'slot', del({ ownerUser: 'alice' }))).suppressed, undefined);
      assert.deepEqual(await map.stats(ch()), { numKeys: 1 });
    });

    it('refreshTtlOnSuppress: an if_new that finds the key restarts its TTL, delivering nothing', async () => {
      await map.subscribe(ch());
      await map.publish(ch(), 'k', set(1, { keyTtlMs: TTL * 2 }));
      await advance(TTL);
      const again = await map.publish(
        ch(),
        'k',
        set(2, { keyTtlMs: TTL * 2, keyMode: 'if_new', refreshTtlOnSuppress: true }),
      );
      assert.equal(again.suppressed, 'key_exists');
      await advance(TTL + MARGIN / 2);
      assert.deepEqual(await map.stats(ch()), { numKeys: 1 }, 'the TTL restarted');
      await sleep(20);
      assert.equal(delivered().length, 1, 'the refresh delivered nothing');
      const page = await map.readState(ch(), { cursor: '', limit: 10, key: 'k', metaTtlMs: LONG });
      assert.deepEqual(
        page.entries.map((p) => p.data),
        [asRaw(1)],
      );
    });

    it('of N concurrent if_new writers of one key exactly one wins', async () => {
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => map.publish(ch(), 'slot', set(`player${i}`, { keyMode: 'if_new' }))),
      );
      const won = results.filter((r) => r.suppressed === undefined);
      assert.equal(won.length, 1);
      for (const r of results) if (r.suppressed !== undefined) assert.equal(r.suppressed, 'key_exists');
      const winner = results.indexOf(won[0]!);
      const page = await map.readState(ch(), { cursor: '', limit: 10, key: 'slot', metaTtlMs: LONG });
      assert.deepEqual(
        page.entries.map((p) => p.data),
        [asRaw(`player${winner}`)],
      );
      assert.equal(page.offset, 1);
    });

    it('expected_position: writes only at that position, else answers the current one', async () => {
      await map.subscribe(ch());
      const p1 = await map.publish(ch(), 'a', set(1));
      const ok = await map.publish(ch(), 'b', set(2, { expectedPosition: p1 }));
      assert.deepEqual([ok.offset, ok.suppressed], [2, undefined]);
      const stale = await map.publish(ch(), 'c', set(3, { expectedPosition: p1 }));
      assert.deepEqual(stale, { offset: 2, epoch: p1.epoch, suppressed: 'position_mismatch' });
      const otherEpoch = await map.remove(ch(), 'a', del({ expectedPosition: { offset: 2, epoch: 'other' } }));
      assert.equal(otherEpoch.suppressed, 'position_mismatch');
      const removed = await map.remove(ch(), 'a', del({ expectedPosition: ok }));
      assert.deepEqual([removed.offset, removed.suppressed], [3, undefined]);
      await waitFor(() => rec.pubs.length >= 3);
      await sleep(20);
      assert.equal(rec.pubs.length, 3);
      assert.deepEqual(
        (await readAll(map, ch(), 10)).entries.map((p) => p.key),
        ['b'],
      );
    });

    it('expected_position needs a stream: 107 on an ephemeral map', async () => {
      const eph = { streamSize: 0 };
      const p = await map.publish(ch(), 'a', set(1, eph));
      await rejectsWith(map.publish(ch(), 'a', set(2, { ...eph, expectedPosition: p })), ErrorCode.BadRequest);
      await rejectsWith(map.remove(ch(), 'a', del({ ...eph, expectedPosition: p })), ErrorCode.BadRequest);
      assert.deepEqual(await map.stats(ch()), { numKeys: 1 });
    });

    it('versions: a write not above the key version (same version epoch) is suppressed', async () => {
      const v2 = await map.publish(ch(), 'a', set('v2', { version: 2 }));
      assert.equal(v2.suppressed, undefined);
      assert.equal((await map.publish(ch(), 'a', set('v1', { version: 1 }))).suppressed, 'version');
      assert.equal((await map.publish(ch(), 'a', set('v2b', { version: 2 }))).suppressed, 'version');
      const v3 = await map.publish(ch(), 'a', set('v3', { version: 3 }));
      assert.deepEqual([v3.offset, v3.suppressed], [2, undefined]);
      const unversioned = await map.publish(ch(), 'a', set('plain'));
      assert.equal(unversioned.suppressed, undefined, 'version 0 skips the check');
      assert.equal((await map.publish(ch(), 'a', set('v3b', { version: 3 }))).suppressed, 'version', 'kept v3');
      const otherEpoch = await map.publish(ch(), 'a', set('e2', { version: 1, versionEpoch: 'e2' }));
      assert.equal(otherEpoch.suppressed, undefined, 'another version epoch is never stale');
      assert.equal((await map.publish(ch(), 'a', set('x', { version: 1, versionEpoch: 'e2' }))).suppressed, 'version');
      assert.equal((await map.publish(ch(), 'b', set('b', { version: 1 }))).suppressed, undefined, 'per key');
      const page = await map.readState(ch(), { cursor: '', limit: 10, key: 'a', metaTtlMs: LONG });
      assert.deepEqual(
        page.entries.map((p) => p.data),
        [asRaw('e2')],
      );
    });

    it('idempotency keys: a repeat changes nothing and answers the first result', async () => {
      await map.subscribe(ch());
      const first = await map.publish(ch(), 'a', set(1, { idempotencyKey: 'op-1' }));
      const repeat = await map.publish(ch(), 'a', set(2, { idempotencyKey: 'op-1' }));
      assert.deepEqual(repeat, { ...first, suppressed: 'idempotency' });
      const other = await map.publish(ch(), 'b', set(3, { idempotencyKey: 'op-1' }));
      assert.equal(other.suppressed, 'idempotency', 'keyed per channel, not per map key');
      await map.publish(ch(), 'c', set(4));
      const rm = await map.remove(ch(), 'c', del({ idempotencyKey: 'rm-1' }));
      assert.deepEqual(await map.remove(ch(), 'c', del({ idempotencyKey: 'rm-1' })), {
        ...rm,
        suppressed: 'idempotency',
      });
      const elsewhere = await map.publish(ch('x'), 'a', set(5, { idempotencyKey: 'op-1' }));
      assert.equal(elsewhere.suppressed, undefined, 'another channel');
      await waitFor(() => rec.pubs.length >= 3);
      await sleep(20);
      assert.deepEqual(
        rec.pubs.map((d) => [d.pub.key, d.pub.data]),
        [
          ['a', asRaw(1)],
          ['c', asRaw(4)],
          ['c', ''],
        ],
      );
      assert.equal((await map.readStream(ch(), { limit: -1, metaTtlMs: LONG })).publications.length, 3);
    });

    it('idempotent results expire after their TTL', async () => {
      await map.publish(ch(), 'a', set(1, { idempotencyKey: 'k', idempotentResultTtlMs: TTL }));
      await advance(TTL + MARGIN);
      const again = await map.publish(ch(), 'a', set(2, { idempotencyKey: 'k', idempotentResultTtlMs: TTL }));
      assert.deepEqual([again.offset, again.suppressed], [2, undefined]);
    });

    it('max_keys refuses a new key with 106, never an update', async () => {
      const limit = { maxKeys: 2 };
      await map.publish(ch(), 'a', set(1, limit));
      await map.publish(ch(), 'b', set(2, limit));
      const err = await rejectsWith(map.publish(ch(), 'c', set(3, limit)), ErrorCode.LimitExceeded);
      assert.ok(err instanceof MapLimitError);
      const update = await map.publish(ch(), 'a', set(4, limit));
      assert.deepEqual([update.offset, update.suppressed], [3, undefined]);
      await map.remove(ch(), 'b', del(limit));
      assert.equal((await map.publish(ch(), 'c', set(5, limit))).offset, 5);
      assert.deepEqual(await map.stats(ch()), { numKeys: 2 });
      const stream = await map.readStream(ch(), { limit: -1, metaTtlMs: LONG });
      assert.equal(stream.publications.length, 5, 'the refused write left nothing');
    });

    it('keeps the newest streamSize changes; older positions are unrecoverable (112)', async () => {
      const small = { streamSize: 3 };
      let last;
      for (let i = 1; i <= 6; i++) last = await map.publish(ch(), `k${i}`, set(i, small));
      const epoch = last!.epoch;
      const all = await map.readStream(ch(), { limit: -1, metaTtlMs: LONG });
      assert.deepEqual(
        all.publications.map((p) => p.offset),
        [4, 5, 6],
      );
      const from3 = await map.readStream(ch(), { since: { offset: 3, epoch }, limit: -1, metaTtlMs: LONG });
      assert.deepEqual(
        from3.publications.map((p) => p.offset),
        [4, 5, 6],
      );
      const page = await map.readStream(ch(), { since: { offset: 3, epoch }, limit: 2, metaTtlMs: LONG });
      assert.deepEqual(
        page.publications.map((p) => p.offset),
        [4, 5],
      );
      assert.equal(page.offset, 6);
      const rev = await map.readStream(ch(), { limit: 2, reverse: true, metaTtlMs: LONG });
      assert.deepEqual(
        rev.publications.map((p) => p.offset),
        [6, 5],
      );
      await rejectsWith(
        map.readStream(ch(), { since: { offset: 2, epoch }, limit: -1, metaTtlMs: LONG }),
        ErrorCode.UnrecoverablePosition,
      );
      await rejectsWith(
        map.readStream(ch(), { since: { offset: 2, epoch }, limit: 0, metaTtlMs: LONG }),
        ErrorCode.UnrecoverablePosition,
      );
      await rejectsWith(
        map.readStream(ch(), { since: { offset: 6, epoch: 'another' }, limit: -1, metaTtlMs: LONG }),
        ErrorCode.UnrecoverablePosition,
      );
      await rejectsWith(
        map.readStream(ch(), { since: { offset: 9, epoch }, limit: 0, metaTtlMs: LONG }),
        ErrorCode.UnrecoverablePosition,
      );
      const top = await map.readStream(ch(), { since: { offset: 6, epoch }, limit: 0, metaTtlMs: LONG });
      assert.deepEqual([top.offset, top.epoch, top.publications], [6, epoch, []]);
    });

    it('drops changes older than streamTtl', async () => {
      const short = { streamTtlMs: TTL };
      await map.publish(ch(), 'a', set(1, short));
      const p2 = await map.publish(ch(), 'b', set(2, short));
      await advance(TTL + MARGIN);
      await map.publish(ch(), 'c', set(3, short));
      const kept = await map.readStream(ch(), { limit: -1, metaTtlMs: LONG });
      assert.deepEqual(
        kept.publications.map((p) => p.offset),
        [3],
      );
      const fromTop = await map.readStream(ch(), { since: p2, limit: -1, metaTtlMs: LONG });
      assert.deepEqual(
        fromTop.publications.map((p) => p.offset),
        [3],
      );
      await rejectsWith(
        map.readStream(ch(), { since: { offset: 1, epoch: p2.epoch }, limit: -1, metaTtlMs: LONG }),
        ErrorCode.UnrecoverablePosition,
      );
      assert.equal((await map.stats(ch())).numKeys, 3, 'the state outlives the stream');
    });

    it('clear drops state and stream; the next write starts a new epoch', async () => {
      const p = await map.publish(ch(), 'a', set(1));
      await map.publish(ch(), 'b', set(2));
      await map.clear(ch());
      assert.deepEqual(await map.stats(ch()), { numKeys: 0 });
      const next = await map.publish(ch(), 'c', set(3));
      assert.equal(next.offset, 1);
      assert.notEqual(next.epoch, p.epoch);
      await rejectsWith(
        map.readStream(ch(), { since: p, limit: -1, metaTtlMs: LONG }),
        ErrorCode.UnrecoverablePosition,
      );
      assert.deepEqual(
        (await readAll(map, ch(), 10)).entries.map((e) => e.key),
        ['c'],
      );
    });

    it('a read creates the position that the first write then carries', async () => {
      const read = await map.readState(ch(), { cursor: '', limit: 10, metaTtlMs: LONG });
      assert.ok(read.epoch !== '');
      assert.deepEqual([read.offset, read.entries, read.cursor], [0, [], '']);
      const first = await map.publish(ch(), 'a', set(1));
      assert.deepEqual(first, { offset: 1, epoch: read.epoch });
      const stream = await map.readStream(ch(), { since: read, limit: -1, metaTtlMs: LONG });
      assert.deepEqual(
        stream.publications.map((p) => p.offset),
        [1],
      );
    });

    it('ephemeral maps (streamSize 0) keep offsets at 0 and no stream', async () => {
      await map.subscribe(ch());
      const eph = { streamSize: 0 };
      const a = await map.publish(ch(), 'a', set(1, eph));
      const b = await map.publish(ch(), 'b', set(2, eph));
      await map.remove(ch(), 'a', del(eph));
      assert.deepEqual([a.offset, b.offset], [0, 0]);
      assert.equal(a.epoch, b.epoch);
      await waitFor(() => rec.pubs.length >= 3);
      assert.deepEqual(
        rec.pubs.map((d) => [d.pub.offset, d.pub.key, d.pub.removed ?? false]),
        [
          [0, 'a', false],
          [0, 'b', false],
          [0, 'a', true],
        ],
      );
      const stream = await map.readStream(ch(), { limit: -1, metaTtlMs: LONG });
      assert.deepEqual([stream.offset, stream.publications], [0, []]);
      const page = await map.readState(ch(), { cursor: '', limit: 10, metaTtlMs: LONG });
      assert.deepEqual(
        page.entries.map((p) => [p.key, p.offset]),
        [['b', 0]],
      );
    });

    it('readState pages visit every key exactly once, in key order, and reads one key', async () => {
      const keys = Array.from({ length: 23 }, (_, i) => `key-${String.fromCharCode(97 + ((i * 7) % 26))}${i}`);
      for (const k of keys) await map.publish(ch(), k, set(k));
      for (const limit of [1, 5, 23, 50]) {
        const { entries, pages } = await readAll(map, ch(), limit);
        assert.deepEqual(
          entries.map((e) => e.key),
          [...keys].sort(),
        );
        assert.equal(pages, Math.max(1, Math.ceil(23 / limit)));
      }
      const one = await map.readState(ch(), { cursor: '', limit: 10, key: keys[3], metaTtlMs: LONG });
      assert.deepEqual(
        one.entries.map((e) => [e.key, e.data]),
        [[keys[3], asRaw(keys[3])]],
      );
      assert.equal(one.cursor, '');
      const none = await map.readState(ch(), { cursor: '', limit: 10, key: 'absent', metaTtlMs: LONG });
      assert.deepEqual(none.entries, []);
      assert.equal(none.offset, 23);
    });

    it('pages keys in UTF-8 byte order, whatever characters they hold', async () => {
      const keys = ['z', 'a', '\u00e9', '\uffff', '\u{1f600}', 'A', '\ud7ff', '\ue000', 'a\u{10000}'];
      for (const k of keys) await map.publish(ch(), k, set(1));
      const byBytes = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      for (const limit of [1, 2, 100]) {
        const { entries } = await readAll(map, ch(), limit);
        assert.deepEqual(
          entries.map((e) => e.key),
          byBytes,
        );
      }
    });

    it('stats counts the keys of a channel', async () => {
      assert.deepEqual(await map.stats(ch()), { numKeys: 0 });
      for (let i = 0; i < 4; i++) await map.publish(ch(), `k${i}`, set(i));
      await map.publish(ch(), 'k0', set('again'));
      await map.remove(ch(), 'k1', del());
      assert.deepEqual(await map.stats(ch()), { numKeys: 3 });
      assert.deepEqual(await map.stats(ch('empty')), { numKeys: 0 });
    });

    it('stops delivering after unsubscribe', async () => {
      await map.subscribe(ch());
      await map.publish(ch(), 'a', set(1));
      await waitFor(() => delivered().length >= 1);
      await map.unsubscribe(ch());
      await map.publish(ch(), 'a', set(2));
      await sleep(30);
      assert.equal(delivered().length, 1);
    });
  });
}

function key(i: number): string {
  return `k${String(i).padStart(2, '0')}`;
}
