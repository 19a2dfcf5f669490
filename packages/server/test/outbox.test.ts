/**
 * The outbox consumer (docs/OUTBOX.md) on the local PostgreSQL, with the PostgreSQL engine so
 * that every node sees one history: rows inserted in committed transactions reach a real
 * `centrifuge` subscriber once each, in order per channel, and rolled-back ones never; bad rows
 * are quarantined with their reason while the rows behind them flow; three nodes consuming one
 * table publish 2,000 rows over 20 channels exactly once each (contiguous offsets, every id
 * once, in insertion order per channel); a `bulwark start` consumer killed with SIGKILL
 * mid-stream and started again still publishes each row exactly once; and a node that sheds
 * load pauses consuming. Needs PostgreSQL at BULWARK_TEST_POSTGRES_URL.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import pg from 'pg';
import type { ConfigInput } from '../src/config/schema.js';
import { outboxDdl } from '../src/outbox/table.js';
import { describePostgres, dropTables, pgUrl, sql, uniqueTablePrefix } from './helpers/postgres.js';
import { callApi, startBulwark, writeConfigFile } from './helpers/process.js';
import { connected, sleep, startTestServer, waitUntil, type TestServer } from './helpers/server.js';
import { track } from './helpers/tracked.js';

await describePostgres('outbox consumer', () => {
  const prefix = uniqueTablePrefix();
  const table = `${prefix}_outbox`;
  const pool = new pg.Pool({ connectionString: pgUrl, max: 4 });
  pool.on('error', () => {});
  const board = {
    name: 'board',
    history_size: 1000,
    history_ttl: '300s',
    allow_subscribe_for_client: true,
    allow_history_for_client: true,
  };
  const config = (over: ConfigInput = {}): ConfigInput => ({
    client: { insecure: true },
    engine: { type: 'postgresql', postgresql: { dsn: pgUrl, table_prefix: prefix, poll_interval: '200ms' } },
    outbox: { enabled: true, postgresql: { dsn: pgUrl }, table, batch_size: 50, poll_interval: '50ms' },
    channel: { namespaces: [board] },
    ...over,
  });

  before(() => sql(outboxDdl(table)));
  after(async () => {
    await pool.end();
    await dropTables(prefix);
  });

  /** insert adds rows [channel, n] in one transaction (rolled back with `rollback`). */
  const insert = async (rows: [string, number][], rollback = false): Promise<void> => {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      for (const [channel, n] of rows) {
        await c.query(`INSERT INTO ${table} (channel, data) VALUES ($1, $2::jsonb)`, [channel, JSON.stringify({ n })]);
      }
      await c.query(rollback ? 'ROLLBACK' : 'COMMIT');
    } finally {
      c.release();
    }
  };
  const waiting = async (): Promise<number> =>
    (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE quarantined_at IS NULL`))[0]!.n;
  const drained = (ms: number) => waitUntilAsync(async () => (await waiting()) === 0, ms, 'the outbox drained');

  /** historyOf reads a channel's whole history through the server API of `httpUrl`. */
  const historyOf = async (httpUrl: string, apiKey: string, channel: string) => {
    const res = await callApi(httpUrl, apiKey, 'history', { channel, limit: -1 });
    return (res.body.result?.publications ?? []) as { offset: number; data: { n: number } }[];
  };
  /** assertExactlyOnce checks a channel's history is exactly `ns`, in order, at offsets 1.. */
  const assertExactlyOnce = (pubs: { offset: number; data: { n: number } }[], ns: number[], label: string) => {
    assert.deepEqual(
      pubs.map((p) => p.offset),
      ns.map((_, i) => i + 1),
      `${label}: offsets contiguous`,
    );
    assert.deepEqual(
      pubs.map((p) => p.data.n),
      ns,
      `${label}: every row once, in insertion order`,
    );
  };

  it('publishes committed rows once each in order, never rolled-back ones, and quarantines bad rows with their reason', async () => {
    const server = await startTestServer(config({ protection: { publication_max_size: 2000 } }));
    try {
      const client = await connected(server.url);
      const a = await track(client, 'board:a');
      await insert([
        ['board:a', 1],
        ['board:a', 2],
      ]);
      await insert([['board:a', 99]], true);
      await insert([
        ['nope:x', 3],
        ['board:has space', 4],
      ]);
      await pool.query(`INSERT INTO ${table} (channel, data) VALUES ('board:a', $1::jsonb)`, [
        JSON.stringify({ n: 5, pad: 'x'.repeat(3000) }),
      ]);
      await insert([
        ['board:a', 6],
        ['board:a', 7],
      ]);
      await waitUntil(() => a.received.length === 4, 5000, '4 publications');
      assert.deepEqual(a.received, [1, 2, 6, 7]);
      assert.deepEqual(a.offsets, [1, 2, 3, 4]);
      await drained(3000);
      const q = await sql<{ channel: string; quarantine_reason: string; quarantine_detail: string }>(
        `SELECT channel, quarantine_reason, quarantine_detail FROM ${table} ORDER BY id`,
      );
      assert.deepEqual(
        q.map((r) => [r.channel, r.quarantine_reason]),
        [
          ['nope:x', 'bad_channel'],
          ['board:has space', 'bad_channel'],
          ['board:a', 'too_large'],
        ],
      );
      assert.match(q[2]!.quarantine_detail, /publication_max_size/);
      const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
      assert.match(metrics, /bulwark_outbox_quarantined_total\{reason="bad_channel"[^}]*\} 2/);
      assert.match(metrics, /bulwark_outbox_published_total\{[^}]*\} 4/);
      client.disconnect();
    } finally {
      await server.close();
      await sql(`DELETE FROM ${table}`);
    }
  });

  it('3 nodes consuming one outbox publish 2,000 rows over 20 channels exactly once, in order per channel', async () => {
    const servers: TestServer[] = [];
    try {
      for (let i = 0; i < 3; i++) servers.push(await startTestServer(config()));
      const expected = new Map<string, number[]>();
      const batches: [string, number][][] = [];
      for (let n = 1; n <= 2000; n++) {
        const ch = `board:c${n % 20}`;
        if (!expected.has(ch)) expected.set(ch, []);
        expected.get(ch)!.push(n);
        if (n % 100 === 1) batches.push([]);
        batches[batches.length - 1]!.push([ch, n]);
      }
      const t0 = Date.now();
      for (const b of batches) await insert(b);
      await drained(20_000);
      const took = Date.now() - t0;
      const s = servers[0]!;
      for (const [ch, ns] of expected) assertExactlyOnce(await historyOf(s.httpUrl, s.apiKey, ch), ns, ch);
      const counts = await Promise.all(
        servers.map(async (srv) => {
          const text = await (await fetch(`${srv.httpUrl}/metrics`)).text();
          return Number(/bulwark_outbox_published_total\{[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
        }),
      );
      assert.equal(
        counts.reduce((x, y) => x + y),
        2000,
        `rows per node ${counts.join(', ')} in ${took} ms`,
      );
    } finally {
      await Promise.all(servers.map((s) => s.close()));
      await sql(`DELETE FROM ${table}`);
    }
  });

  it('a consumer killed with SIGKILL mid-stream and started again still publishes every row exactly once', async (t) => {
    const apiKey = 'outbox-test-key';
    const cfg = writeConfigFile({
      ...config(),
      http_server: { address: '127.0.0.1' },
      http_api: { key: apiKey },
      log: { level: 'warn' },
      drain: { window: '0s' },
      outbox: { enabled: true, postgresql: { dsn: pgUrl }, table, batch_size: 20, poll_interval: '20ms' },
    } as ConfigInput);
    t.after(() => cfg.remove());
    const expected = new Map<string, number[]>();
    const rows: [string, number][] = [];
    for (let n = 1; n <= 600; n++) {
      const ch = `board:k${n % 6}`;
      if (!expected.has(ch)) expected.set(ch, []);
      expected.get(ch)!.push(n);
      rows.push([ch, n]);
    }
    await insert(rows);
    const first = await startBulwark(cfg.path, {}, t);
    await waitUntilAsync(async () => (await waiting()) < 500, 10_000, 'consuming began');
    await first.kill();
    const left = await waiting();
    assert.ok(left > 0, 'killed before the outbox drained');
    const second = await startBulwark(cfg.path, {}, t);
    await drained(15_000);
    for (const [ch, ns] of expected) assertExactlyOnce(await historyOf(second.httpUrl, apiKey, ch), ns, ch);
    await second.kill();
  });

  it('pauses while the node sheds load, and resumes after', async () => {
    const server = await startTestServer(config());
    try {
      const shedder = server.node.shedder as unknown as { connect: boolean };
      const original = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(shedder), 'connect');
      Object.defineProperty(shedder, 'connect', { get: () => true, configurable: true });
      await sleep(150);
      await insert([['board:p', 1]]);
      await sleep(300);
      assert.equal(await waiting(), 1, 'not consumed while shedding');
      const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
      assert.match(metrics, /bulwark_outbox_paused\{reason="shedding"[^}]*\} 1/);
      delete (shedder as { connect?: boolean }).connect;
      assert.ok(original !== undefined);
      await drained(3000);
    } finally {
      await server.close();
      await sql(`DELETE FROM ${table}`);
    }
  });
});

/** waitUntilAsync polls an async predicate every 50 ms until it holds, or fails after `ms`. */
async function waitUntilAsync(predicate: () => Promise<boolean>, ms: number, label: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
    await sleep(50);
  }
}
