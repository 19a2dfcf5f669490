/**
 * `<prefix>_publish`, the SQL function a game backend calls inside its own transaction
 * (docs/POSTGRESQL.md, "Publishing from your own transaction"), on a node with the PostgreSQL
 * engine and real `centrifuge` clients: a committed transaction's publication is delivered with
 * its offset, a rolled-back one never (and consumes no offset), concurrent transactions on one
 * channel get strictly increasing offsets delivered in order, history and recovery include
 * them, idempotency keys and a publication without history work as from the API, and a missing
 * retention argument is refused by name. Needs PostgreSQL at BULWARK_TEST_POSTGRES_URL.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import pg from 'pg';
import { describePostgres, dropTables, pgUrl, uniqueTablePrefix } from './helpers/postgres.js';
import { connected, startTestServer, waitUntil, type TestServer } from './helpers/server.js';
import { range, track } from './helpers/tracked.js';

await describePostgres('SQL publish function', () => {
  const prefix = uniqueTablePrefix();
  let server: TestServer;
  const pool = new pg.Pool({ connectionString: pgUrl, max: 12 });
  pool.on('error', () => {});

  before(async () => {
    server = await startTestServer({
      client: { insecure: true },
      engine: { type: 'postgresql', postgresql: { dsn: pgUrl, table_prefix: prefix, poll_interval: '200ms' } },
    });
    await pool.query(`CREATE TABLE ${prefix}_game (id serial PRIMARY KEY, note text NOT NULL)`);
  });
  after(async () => {
    await server?.close();
    await pool.end();
    await dropTables(prefix);
  });

  /** inTx runs `fn` in a transaction on its own connection, committing unless `rollback`. */
  const inTx = async <T>(fn: (c: pg.PoolClient) => Promise<T>, rollback = false): Promise<T> => {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query(rollback ? 'ROLLBACK' : 'COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  };
  const publishIn = async (c: pg.PoolClient, channel: string, n: number, extra = '') => {
    await c.query(`INSERT INTO ${prefix}_game (note) VALUES ($1)`, [`${channel} ${n}`]);
    const r = await c.query<{ channel_offset: string; epoch: string; suppressed: boolean; suppress_reason: string }>(
      `SELECT * FROM ${prefix}_publish(p_channel := $1, p_data := $2::jsonb, p_history_size := 100,
         p_history_ttl := '300 seconds'${extra})`,
      [channel, JSON.stringify({ n })],
    );
    return r.rows[0]!;
  };

  it('delivers a committed publication with its offset; a rolled-back one never, and it consumes no offset', async () => {
    const client = await connected(server.url);
    try {
      const tr = await track(client, 'chat:tx');
      const first = await inTx((c) => publishIn(c, 'chat:tx', 1));
      assert.equal(Number(first.channel_offset), 1);
      assert.equal(first.suppressed, false);
      assert.equal(first.epoch, tr.subscribed[0]!.streamPosition?.epoch || first.epoch);
      await waitUntil(() => tr.received.length === 1, 3000, 'the committed publication');
      assert.deepEqual(tr.offsets, [1]);

      await inTx((c) => publishIn(c, 'chat:tx', 2), true);
      const games = await pool.query(`SELECT count(*)::int AS n FROM ${prefix}_game WHERE note = 'chat:tx 2'`);
      assert.equal(games.rows[0].n, 0, 'the game write rolled back with it');
      const third = await inTx((c) => publishIn(c, 'chat:tx', 3));
      assert.equal(Number(third.channel_offset), 2, 'the rolled-back publish consumed no offset');
      await waitUntil(() => tr.received.length === 2, 3000, 'the next committed publication');
      assert.deepEqual(tr.received, [1, 3]);
      assert.deepEqual(tr.offsets, [1, 2]);
    } finally {
      client.disconnect();
    }
  });

  it('orders concurrent transactions on one channel: offsets strictly increasing, delivered in order', async () => {
    const client = await connected(server.url);
    try {
      const tr = await track(client, 'chat:race');
      const results = await Promise.all(
        range(1, 30).map((n) =>
          inTx(async (c) => {
            const r = await publishIn(c, 'chat:race', n);
            // Hold the transaction open a little: the others wait on the stream row lock.
            await c.query('SELECT pg_sleep($1)', [(n % 3) * 0.005]);
            return r;
          }),
        ),
      );
      const offsets = results.map((r) => Number(r.channel_offset)).sort((a, b) => a - b);
      assert.deepEqual(offsets, range(1, 30), 'every transaction its own offset, no gaps');
      await waitUntil(() => tr.received.length === 30, 5000, '30 publications');
      assert.deepEqual(tr.offsets, range(1, 30), 'delivered in offset order');
      const byOffset = new Map(results.map((r, i) => [Number(r.channel_offset), i + 1]));
      assert.deepEqual(
        tr.received,
        tr.offsets.map((o) => byOffset.get(o)),
      );
      const history = await server.api('history', { channel: 'chat:race', limit: -1 });
      const pubs = history.body.result.publications as { offset: number; data: { n: number } }[];
      assert.deepEqual(
        pubs.map((p) => p.offset),
        range(1, 30),
      );
    } finally {
      client.disconnect();
    }
  });

  it('is recovered by a client that was away, and honours idempotency keys as the API does', async () => {
    const ch = 'chat:recover';
    const a = await connected(server.url);
    const tr = await track(a, ch);
    await inTx((c) => publishIn(c, ch, 1));
    await waitUntil(() => tr.received.length === 1, 3000, 'first');
    const epoch = tr.subscribed[0]!.streamPosition!.epoch;
    a.disconnect();
    for (const n of [2, 3]) await inTx((c) => publishIn(c, ch, n, `, p_idempotency_key := 'k${n}'`));
    const repeat = await inTx((c) => publishIn(c, ch, 3, `, p_idempotency_key := 'k3'`));
    assert.equal(repeat.suppressed, true);
    assert.equal(repeat.suppress_reason, 'idempotency');
    assert.equal(Number(repeat.channel_offset), 3, 'the first publish of the key');
    const api = await server.api('publish', { channel: ch, data: { n: 4 }, idempotency_key: 'k3' });
    assert.equal(api.body.result.offset, 3, 'the API sees the key the function stored');
    const b = await connected(server.url);
    try {
      const back = await track(b, ch, { since: { offset: 1, epoch } });
      assert.equal(back.subscribed[0]!.recovered, true);
      await waitUntil(() => back.received.length === 2, 3000, 'the missed 2');
      assert.deepEqual(back.received, [2, 3]);
      assert.deepEqual(back.offsets, [2, 3]);
    } finally {
      b.disconnect();
    }
  });

  it('publishes without history through the notification (p_history_size 0), at commit only', async () => {
    const client = await connected(server.url);
    try {
      const tr = await track(client, 'news:live');
      const r = await inTx(async (c) => {
        const out = await c.query(
          `SELECT * FROM ${prefix}_publish('news:live', '{"n": 7, "s": "a😀"}'::jsonb, 0, '0 seconds', p_tags := '{"k":"v"}')`,
        );
        await new Promise((resolve) => setTimeout(resolve, 150));
        assert.equal(tr.received.length, 0, 'nothing before COMMIT');
        return out.rows[0];
      });
      assert.equal(Number(r.channel_offset), 0);
      await waitUntil(() => tr.received.length === 1, 3000, 'the live publication');
      assert.deepEqual(tr.received, [7]);
      const big = 'x'.repeat(9000);
      await inTx((c) =>
        c.query(`SELECT * FROM ${prefix}_publish('news:live', $1::jsonb, 0, '0 seconds')`, [
          JSON.stringify({ n: 8, big }),
        ]),
      );
      await waitUntil(() => tr.received.length === 2, 3000, 'a publication larger than NOTIFY allows');
    } finally {
      client.disconnect();
    }
  });

  it('refuses a call without the retention arguments, naming them', async () => {
    await assert.rejects(
      pool.query(`SELECT * FROM ${prefix}_publish('chat:x', '{}'::jsonb)`),
      (err: Error & { code?: string }) => err.code === '22023' && /p_history_size and p_history_ttl/.test(err.message),
    );
  });
});
