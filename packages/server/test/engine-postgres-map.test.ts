/**
 * The PostgreSQL map broker: the MapBroker conformance suite on a real PostgreSQL (real clock,
 * a fast expiry loop, a table prefix of this run's own, dropped at the end), then what is
 * specific to it: two nodes on one database deliver each other's changes and race fairly, key
 * expiry run by several nodes removes each key once, a lost notification is caught up by the
 * poll, changes too large for NOTIFY arrive whole, a malformed notification is reported without
 * crashing, the reads use the indexes, and an unreachable PostgreSQL fails a write as a
 * temporary engine error naming the key. Needs PostgreSQL at BULWARK_TEST_POSTGRES_URL (skipped
 * without it, unless BULWARK_REQUIRE_SERVICES=1).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { EngineUnavailableError } from '../src/engine/errors.js';
import { runCleanup } from '../src/engine/postgres/cleanup.js';
import { PostgresDatabase } from '../src/engine/postgres/database.js';
import { PostgresMapBroker, type PostgresMapBrokerOptions } from '../src/engine/postgres/map-broker-postgres.js';
import { ErrorCode, ProtocolError } from '../src/protocol/codes.js';
import { asRaw, type RawJSON } from '../src/protocol/types.js';
import { Recorder, sleep, waitFor } from './conformance/broker.case.js';
import { del, readAll, runMapBrokerSuite, set } from './conformance/map.case.js';
import { describePostgres, dropTables, pgUrl, sql, uniqueTablePrefix } from './helpers/postgres.js';

/** Every table this run creates starts with this; dropped at the end. */
const prefix = uniqueTablePrefix();
const quiet = { onError: () => {} };

const broker = (over: Partial<PostgresMapBrokerOptions> = {}): PostgresMapBroker =>
  new PostgresMapBroker({
    dsn: pgUrl,
    tablePrefix: prefix,
    cleanupIntervalMs: 0,
    mapCleanupIntervalMs: 25,
    ...quiet,
    ...over,
  });

let serial = 0;
const channel = (what: string): string => `${what}-${process.pid}-${++serial}`;

await describePostgres('PostgreSQL map broker', () => {
  after(async () => {
    await dropTables(prefix);
  });

  runMapBrokerSuite('PostgresMapBroker conformance', async () => {
    const map = broker();
    return { map, cleanup: () => map.close() };
  });

  describe('several nodes on one PostgreSQL', () => {
    const started: PostgresMapBroker[] = [];
    const node = async (rec: Recorder, over: Partial<PostgresMapBrokerOptions> = {}): Promise<PostgresMapBroker> => {
      const b = broker(over);
      started.push(b);
      await b.start(rec);
      return b;
    };
    after(async () => {
      await Promise.all(started.map((b) => b.close()));
    });

    it('delivers each node the changes of the other, in offset order', async () => {
      const [ra, rb] = [new Recorder(), new Recorder()];
      const [a, b] = [await node(ra), await node(rb)];
      const ch = channel('two');
      await Promise.all([a.subscribe(ch), b.subscribe(ch)]);
      for (let i = 1; i <= 10; i++) await (i % 2 === 0 ? a : b).publish(ch, `k${i % 3}`, set(i));
      await (await node(new Recorder())).remove(ch, 'k0', del());
      for (const rec of [ra, rb]) {
        await waitFor(() => rec.pubs.length >= 11);
        assert.deepEqual(
          rec.pubs.map((d) => d.pub.offset),
          [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        );
        assert.deepEqual(rec.pubs[10]!.pub, { offset: 11, data: '', key: 'k0', removed: true });
      }
    });

    it('lets exactly one of concurrent if_new writers on two nodes take a key, 20 times', async () => {
      const [a, b] = [await node(new Recorder()), await node(new Recorder())];
      const ch = channel('race');
      for (let slot = 0; slot < 20; slot++) {
        const results = await Promise.all(
          [a, b, a, b].map((n, i) => n.publish(ch, `slot${slot}`, set(i, { keyMode: 'if_new' }))),
        );
        assert.equal(results.filter((r) => r.suppressed === undefined).length, 1);
      }
      assert.deepEqual(await a.stats(ch), { numKeys: 20 });
      const stream = await b.readStream(ch, { limit: -1, metaTtlMs: 60_000 });
      assert.deepEqual(
        stream.publications.map((p) => p.offset),
        Array.from({ length: 20 }, (_, i) => i + 1),
        'losers appended nothing',
      );
    });

    it('removes an expired key once, whichever nodes run the expiry', async () => {
      const recs = [new Recorder(), new Recorder(), new Recorder()];
      const nodes = await Promise.all(recs.map((r) => node(r, { mapCleanupIntervalMs: 5 })));
      const ch = channel('expire');
      // Expired entries of a channel without a meta row (written behind the engine's back) at
      // the head of the due list, more than a batch: dropped, they do not starve the real ones.
      const orphans = channel('orphan');
      await sql(
        `INSERT INTO ${prefix}_map_state (channel, key, "offset", data, expires_at)
         SELECT $1, 'k' || i, i, '1', 1 FROM generate_series(1, 150) i`,
        [orphans],
      );
      await Promise.all(nodes.map((n) => n.subscribe(ch)));
      for (let i = 0; i < 30; i++) await nodes[i % 3]!.publish(ch, `k${i}`, set(i, { keyTtlMs: 100 }));
      for (const rec of recs) await waitFor(() => rec.pubs.length >= 60, 4000);
      await sleep(100);
      for (const rec of recs) {
        const removals = rec.pubs.filter((d) => d.pub.removed).map((d) => d.pub.key);
        assert.equal(removals.length, 30);
        assert.equal(new Set(removals).size, 30);
        assert.deepEqual(
          rec.pubs.map((d) => d.pub.offset),
          Array.from({ length: 60 }, (_, i) => i + 1),
        );
      }
      assert.deepEqual((await readAll(nodes[0]!, ch, 100)).entries, []);
      assert.deepEqual(await nodes[1]!.stats(ch), { numKeys: 0 });
      assert.deepEqual(await sql(`SELECT key FROM ${prefix}_map_state WHERE channel = $1`, [orphans]), []);
    });

    it('catches up through the poll a change whose notification was lost', async () => {
      const rec = new Recorder();
      const a = await node(rec, { pollIntervalMs: 50 });
      const b = await node(new Recorder());
      const ch = channel('lost');
      await a.subscribe(ch);
      await b.publish(ch, 'a', set(1));
      await waitFor(() => rec.pubs.length === 1);
      // Written behind the engine's back: the stream row and position, no NOTIFY.
      await sql(
        `WITH m AS (UPDATE ${prefix}_map_meta SET top = 2 WHERE channel = $1 RETURNING channel)
         INSERT INTO ${prefix}_map_stream (channel, "offset", key, data, created_at)
         SELECT channel, 2, 'b', '"quiet"', (extract(epoch from clock_timestamp()) * 1000)::bigint FROM m`,
        [ch],
      );
      await waitFor(() => rec.pubs.length === 2, 2000);
      assert.deepEqual(rec.pubs[1]!.pub, { offset: 2, data: asRaw('quiet'), key: 'b' });
      await b.publish(ch, 'c', set(3));
      await waitFor(() => rec.pubs.length === 3);
      assert.deepEqual(
        rec.pubs.map((d) => d.pub.offset),
        [1, 2, 3],
      );
    });

    it('delivers changes too large for NOTIFY, with and without a stream', async () => {
      const [ra, rb] = [new Recorder(), new Recorder()];
      const [a, b] = [await node(ra), await node(rb)];
      const big = 'x'.repeat(20_000);
      for (const [ch, size] of [
        [channel('big'), 10],
        [channel('big-eph'), 0],
      ] as const) {
        await b.subscribe(ch);
        await a.publish(ch, 'k', set(big, { streamSize: size, tags: { t: '1' } }));
        await a.remove(ch, 'k', del({ streamSize: size }));
        await waitFor(() => rb.pubs.filter((d) => d.channel === ch).length === 2);
        const got = rb.pubs.filter((d) => d.channel === ch).map((d) => d.pub);
        assert.deepEqual(got, [
          { offset: size > 0 ? 1 : 0, data: asRaw(big), key: 'k', tags: { t: '1' } },
          { offset: size > 0 ? 2 : 0, data: '', key: 'k', removed: true, tags: { t: '1' } },
        ]);
      }
    });

    it('reports a malformed notification and keeps delivering', async () => {
      const errors: unknown[] = [];
      const rec = new Recorder();
      const n = await node(rec, { onError: (err) => errors.push(err) });
      const ch = channel('bad');
      await n.subscribe(ch);
      const head = `${ch.length}\n${ch}\n`;
      for (const bad of [
        'garbage',
        `m\n${head}1\n`,
        `m\n${head}x\ne\n{}\n1`,
        `m\n${head}1\ne\n{"key":5}\n1`,
        `q\n${head}1`,
      ]) {
        await sql(`SELECT pg_notify($1, $2)`, [`${prefix}_map_events`, bad]);
      }
      await n.publish(ch, 'ok', set('fine'));
      await waitFor(() => rec.pubs.length >= 1);
      assert.deepEqual(
        rec.pubs.map((d) => [d.pub.key, d.pub.data]),
        [['ok', asRaw('fine')]],
      );
      assert.equal(errors.length, 5);
    });
  });

  it('reads state pages, single keys, the stream and the due keys through indexes, not scans', async () => {
    const migrated = broker();
    await migrated.start(new Recorder());
    await migrated.close();
    // Expiring far in the future: no expiry loop of this run takes them.
    const FAR = 4e15;
    // Enough rows over enough channels that the planner would scan a table without an index.
    const bulk = channel('plan');
    await sql(
      `INSERT INTO ${prefix}_map_state (channel, key, "offset", data, expires_at)
       SELECT $1 || (i % 200), 'k' || i, i, '1', CASE WHEN i % 7 = 0 THEN $2::bigint + i ELSE 0 END FROM generate_series(1, 20000) i`,
      [bulk, FAR],
    );
    await sql(
      `INSERT INTO ${prefix}_map_stream (channel, "offset", key, data, created_at)
       SELECT $1 || (i % 200), i, 'k' || i, '1', 0 FROM generate_series(1, 20000) i`,
      [bulk],
    );
    await sql(`ANALYZE ${prefix}_map_state, ${prefix}_map_stream`);
    const ch = `${bulk}7`;
    // Each must be a range of an index: the primary keys on the channel, the expiry index.
    const queries: Array<[string, unknown[]]> = [
      [`SELECT * FROM ${prefix}_map_state WHERE channel = $1 AND key > $2 ORDER BY key LIMIT 10`, [ch, 'k10']],
      [`SELECT * FROM ${prefix}_map_state WHERE channel = $1 ORDER BY key LIMIT 10`, [ch]],
      [`SELECT * FROM ${prefix}_map_state WHERE channel = $1 AND key = $2`, [ch, 'k10']],
      [`SELECT * FROM ${prefix}_map_stream WHERE channel = $1 AND "offset" > $2 ORDER BY "offset" LIMIT 10`, [ch, 3]],
      [
        `SELECT * FROM ${prefix}_map_stream WHERE channel = $1 AND "offset" < $2 ORDER BY "offset" DESC LIMIT 10`,
        [ch, 900],
      ],
      [
        `SELECT channel, key FROM ${prefix}_map_state WHERE expires_at > 0 AND expires_at <= $1 ORDER BY expires_at LIMIT 100`,
        [FAR + 50],
      ],
    ];
    try {
      for (const [q, params] of queries) {
        const p = (await sql<{ 'QUERY PLAN': string }>(`EXPLAIN ${q}`, params)).map((r) => r['QUERY PLAN']).join('\n');
        assert.doesNotMatch(p, /Seq Scan/, `${q}\n${p}`);
        assert.match(p, /Index Cond: \(+channel = |_map_state_expiry/, `${q}\n${p}`);
      }
    } finally {
      await sql(`DELETE FROM ${prefix}_map_state WHERE starts_with(channel, $1)`, [bulk]);
      await sql(`DELETE FROM ${prefix}_map_stream WHERE starts_with(channel, $1)`, [bulk]);
    }
  });

  it('the engine cleanup deletes expired empty map channels with their stream, and expired results', async () => {
    const db = new PostgresDatabase({ dsn: pgUrl, tablePrefix: prefix, cleanupIntervalMs: 0 }, () => {}).retain();
    const map = new PostgresMapBroker({ database: db, mapCleanupIntervalMs: 0, ...quiet });
    const [gone, kept] = [channel('clean-gone'), channel('clean-kept')];
    const count = async (table: string, ch: string): Promise<number> =>
      Number((await sql<{ n: string }>(`SELECT count(*) AS n FROM ${prefix}_${table} WHERE channel = $1`, [ch]))[0]!.n);
    try {
      await db.start();
      await map.start(new Recorder());
      const short = { metaTtlMs: 100, streamTtlMs: 100, idempotentResultTtlMs: 100 };
      await map.publish(gone, 'a', set(1, { ...short, idempotencyKey: 'op' }));
      await map.remove(gone, 'a', del(short));
      await map.publish(kept, 'a', set(1, { ...short, idempotencyKey: 'op' }));
      assert.deepEqual(
        [await count('map_meta', gone), await count('map_stream', gone), await count('map_results', gone)],
        [1, 2, 1],
      );
      await sleep(250);
      await runCleanup(db);
      assert.deepEqual(
        [await count('map_meta', gone), await count('map_stream', gone), await count('map_results', gone)],
        [0, 0, 0],
      );
      assert.deepEqual(
        [await count('map_meta', kept), await count('map_results', kept)],
        [1, 0],
        'a channel with keys stays',
      );
      assert.deepEqual(await map.stats(kept), { numKeys: 1 });
    } finally {
      await map.close();
      await db.close();
    }
  });

  it('refuses what PostgreSQL cannot store with 107 naming the key, and numbers nothing', async () => {
    const map = broker();
    await map.start(new Recorder());
    try {
      const ch = channel('nul');
      const badRequest = (pattern: RegExp) => (err: unknown) =>
        err instanceof ProtocolError && err.code === ErrorCode.BadRequest && pattern.test(err.message);
      await assert.rejects(map.publish(ch, 'a\0b', set(1)), badRequest(/key "a\\u0000b" in channel/));
      await assert.rejects(
        map.publish(ch, 'k', set(1, { info: { user: 'u', client: 'c', conn_info: '\u0000' as RawJSON } })),
        badRequest(/map publish of key "k"/),
      );
      await assert.rejects(
        map.readState(ch, { cursor: '', limit: 10, key: 'a\0b', metaTtlMs: 1000 }),
        badRequest(/state read/),
      );
      assert.deepEqual(await map.publish(ch, 'k', set(1)), {
        offset: 1,
        epoch: (await map.readStream(ch, { limit: 0, metaTtlMs: 1000 })).epoch,
      });
    } finally {
      await map.close();
    }
  });

  it('fails a write as unavailable, naming the channel and key, when PostgreSQL is unreachable; never a crash', async () => {
    // Not started (its start would fail the same way): every call reaches for the pool.
    const map = broker({ dsn: 'postgresql://postgres@127.0.0.1:1/test', connectTimeoutMs: 300 });
    for (const p of [map.publish('lobby:1', 'slot-7', set(1)), map.remove('lobby:1', 'slot-7', del())]) {
      await assert.rejects(
        p,
        (err: unknown) =>
          err instanceof EngineUnavailableError &&
          err.temporary &&
          /key "slot-7" in channel "lobby:1"/.test(err.message),
      );
    }
    await assert.rejects(
      map.readState('lobby:1', { cursor: '', limit: 10, metaTtlMs: 1000 }),
      (err: unknown) => err instanceof EngineUnavailableError && err.temporary,
    );
    await map.close();
    const again = broker({ dsn: 'postgresql://postgres@127.0.0.1:1/test', connectTimeoutMs: 300 });
    await assert.rejects(again.start(new Recorder()), EngineUnavailableError);
    assert.equal(again.isReady(), false);
  });
});
