/**
 * PostgreSQL itself crashing and restarting under a node on the PostgreSQL engine, the half of
 * "publications survive a restart" that cluster-postgres.test.ts (Bulwark nodes restarting)
 * does not cover: a private PostgreSQL (`fsync=on`, `synchronous_commit=on`) killed with
 * SIGKILL keeps every acknowledged publication at its offset and epoch, the node is not ready
 * while it is down and publishes fail with the documented temporary error, and subscribers get
 * every publication once when it is back; a fast restart under a publisher that does not stop
 * loses no acknowledged publication and duplicates none. And the outbox consumer (memory engine)
 * on a PostgreSQL killed mid-stream: the node lives on, and once PostgreSQL is back every
 * committed row is published once, in order. Runs its own PostgreSQL
 * (helpers/private-postgres.ts), never the shared one; skipped without the PostgreSQL binaries,
 * unless BULWARK_REQUIRE_SERVICES=1.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { it, type TestContext } from 'node:test';
import type { Centrifuge } from 'centrifuge';
import pg from 'pg';
import type { ConfigInput } from '../src/config/schema.js';
import { outboxDdl } from '../src/outbox/table.js';
import { uniqueTablePrefix } from './helpers/postgres.js';
import { PrivatePostgres, privatePostgresMissing } from './helpers/private-postgres.js';
import { describeIf } from './helpers/redis.js';
import { baseNamespaces, connectedAs, startTestServer, waitUntil, type TestServer } from './helpers/server.js';
import { range, track } from './helpers/tracked.js';

/** ch is a `chat` channel: forced recovery (helpers/server.ts), history enough for every test here. */
const ch = 'chat:durable';
const historySize = 1000;

/** chatNamespace is the `chat` namespace with history enough for every test here. */
const chatNamespace = { ...baseNamespaces[0]!, history_size: historySize };

/** pgEngine is a node's config on the PostgreSQL engine at `url`: short timeouts, a fast poll. */
function pgEngine(url: string): ConfigInput {
  return {
    engine: {
      type: 'postgresql',
      postgresql: {
        dsn: url,
        table_prefix: uniqueTablePrefix(),
        connect_timeout: '300ms',
        io_timeout: '1s',
        reconnect_max_delay: '200ms',
        poll_interval: '200ms',
      },
    },
    channel: { namespaces: [chatNamespace] },
  };
}

/**
 * setup starts a private PostgreSQL and a node configured by `configOf` its URL (by default on
 * the PostgreSQL engine; `before` runs between the two). When the test ends the node is closed
 * first, then PostgreSQL is destroyed and checked gone.
 */
async function setup(
  t: TestContext,
  configOf: (url: string) => ConfigInput = pgEngine,
  before: (server: PrivatePostgres) => Promise<void> = async () => {},
): Promise<{ server: PrivatePostgres; srv: TestServer }> {
  const server = await PrivatePostgres.start();
  const nodes: TestServer[] = [];
  t.after(async () => {
    for (const node of nodes) await node.close();
    await server.destroy();
    assert.deepEqual(server.processes(), [], 'no postgres process left');
  });
  await before(server);
  const srv = await startTestServer(configOf(server.url));
  nodes.push(srv);
  return { server, srv };
}

/** waitReady polls /ready until it answers `status`. */
async function waitReady(srv: TestServer, status: number, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  for (;;) {
    const res = await fetch(`${srv.httpUrl}/ready`);
    if (res.status === status) return;
    if (performance.now() > deadline) assert.fail(`/ready still ${res.status} after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** engineUp reads bulwark_engine_up from /metrics. */
async function engineUp(srv: TestServer): Promise<number> {
  const m = /^bulwark_engine_up(?:\{[^}]*\})? (\d+)$/m.exec(await (await fetch(`${srv.httpUrl}/metrics`)).text());
  assert.ok(m, 'bulwark_engine_up is exported');
  return Number(m[1]);
}

/** connectionEvents records a client's connection-level events other than 'connected'. */
function connectionEvents(client: Centrifuge): string[] {
  const events: string[] = [];
  client.on('disconnected', (ctx) => events.push(`disconnected ${ctx.code}`));
  client.on('connecting', (ctx) => events.push(`connecting ${ctx.code}`));
  return events;
}

/** historyOf reads the channel's whole history through the API: the `n` and offset of each, and the epoch. */
async function historyOf(srv: TestServer): Promise<{ ns: number[]; offsets: number[]; epoch: string }> {
  const res = await srv.api('history', { channel: ch, limit: -1 });
  assert.equal(res.body.error, undefined, JSON.stringify(res.body));
  const pubs = res.body.result.publications as { data: { n: number }; offset: number }[];
  return { ns: pubs.map((p) => p.data.n), offsets: pubs.map((p) => p.offset), epoch: res.body.result.epoch };
}

describeIf('PostgreSQL restarts under a node', privatePostgresMissing(), () => {
  it('killed with SIGKILL: acknowledged posts keep offsets and epoch, not ready meanwhile, publishes fail as temporary, subscribers get everything once', async (t) => {
    const { server, srv } = await setup(t);
    const alice = await connectedAs(srv, t, 'alice');
    const aliceEvents = connectionEvents(alice);
    const stays = await track(alice, ch);
    const bob = await connectedAs(srv, t, 'bob');
    const leaves = await track(bob, ch);

    const n = 40;
    let epoch = '';
    for (let i = 1; i <= n; i++) {
      const res = await srv.api('publish', { channel: ch, data: { n: i } });
      assert.equal(res.body.result?.offset, i, JSON.stringify(res.body));
      epoch ||= res.body.result.epoch;
      assert.equal(res.body.result.epoch, epoch);
    }
    assert.equal(stays.subscribed[0]?.streamPosition?.epoch, epoch);
    await waitUntil(() => stays.received.length === n && leaves.received.length === n, 3000, `the ${n} posts`);

    // Other channels keep the pool busy, so that connections break mid-query at the kill (an
    // unhandled 'error' of such a connection crashed the node). Each publish is answered: an
    // offset, or engine error 100 (temporary, or outcome unknown for one in flight).
    let busy = true;
    const answers: unknown[] = [];
    const others = [1, 2, 3].map(async (w) => {
      for (let i = 0; busy; i++) {
        const res = await srv.api('publish', { channel: `chat:other-${w}`, data: { n: i } });
        answers.push(res.body.result === undefined ? res.body.error?.code : 'ok');
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await server.kill();
    busy = false;
    await Promise.all(others);
    assert.deepEqual(
      answers.filter((a) => a !== 'ok' && a !== 100),
      [],
      'offsets or error 100 only',
    );
    await waitReady(srv, 503, 3000);
    assert.equal(await engineUp(srv), 0);
    assert.equal((await fetch(`${srv.httpUrl}/health`)).status, 200, 'the node lives on');
    const t0 = performance.now();
    const refused = await srv.api('publish', { channel: ch, data: { n: -1 } });
    assert.deepEqual(refused.body, {
      error: { code: 100, message: 'engine unavailable, retry later', temporary: true },
    });
    await assert.rejects(stays.sub.publish({ n: -2 }), (err: { code: number; temporary?: boolean }) => {
      assert.deepEqual([err.code, err.temporary], [100, true]);
      return true;
    });
    assert.ok(performance.now() - t0 < 3000, 'the refusals came fast');
    bob.disconnect(); // bob's connection is lost meanwhile; he comes back after the restart

    await server.start();
    // A backend publishes from its own transaction as soon as PostgreSQL answers, maybe
    // before the node listens again: the node must catch it up from the table.
    const backend = new pg.Client({ connectionString: server.url });
    backend.on('error', () => {});
    await backend.connect();
    const nodeReadyAtBackendPublish = (await fetch(`${srv.httpUrl}/ready`)).status === 200;
    const prefix = (srv.node.config.engine.postgresql as { table_prefix: string }).table_prefix;
    const [row] = (
      await backend.query(
        `SELECT * FROM ${prefix}_publish($1, jsonb_build_object('n', $2::int), $3, interval '300 s')`,
        [ch, n + 1, historySize],
      )
    ).rows as { channel_offset: string; epoch: string }[];
    await backend.end();
    assert.deepEqual([Number(row!.channel_offset), row!.epoch], [n + 1, epoch], 'same stream after the crash');
    t.diagnostic(`node ready when the backend published right after the restart: ${nodeReadyAtBackendPublish}`);

    await waitReady(srv, 200, 5000);
    assert.equal(await engineUp(srv), 1);
    for (let i = n + 2; i <= n + 5; i++) {
      const res = await srv.api('publish', { channel: ch, data: { n: i } });
      assert.deepEqual(res.body, { result: { offset: i, epoch } });
    }

    const history = await historyOf(srv);
    assert.deepEqual(history.ns, range(1, n + 5), 'every acknowledged post, nothing refused');
    assert.deepEqual(history.offsets, range(1, n + 5));
    assert.equal(history.epoch, epoch);

    await waitUntil(() => stays.received.length >= n + 5, 5000, 'the posts after the restart');
    assert.deepEqual(stays.received, range(1, n + 5), 'once each, in order');
    assert.deepEqual(stays.offsets, range(1, n + 5));
    assert.deepEqual(aliceEvents, [], 'alice stayed connected');
    if (stays.subscribing.length > 0) {
      // The node told her she fell behind (2500): her SDK recovered what she missed.
      assert.equal(stays.subscribed.at(-1)?.recovered, true);
    }
    t.diagnostic(`alice resubscribed ${stays.subscribing.length} time(s) (${stays.subscribing.map((s) => s.code)})`);

    bob.connect();
    await waitUntil(() => leaves.subscribed.length === 2, 3000, 'bob subscribed again');
    assert.equal(leaves.subscribed[1]?.wasRecovering, true);
    assert.equal(leaves.subscribed[1]?.recovered, true, 'bob recovered from the restarted PostgreSQL');
    await waitUntil(() => leaves.received.length >= n + 5, 3000, 'what bob missed');
    assert.deepEqual(leaves.received, range(1, n + 5));
  });

  it('fast restart while a publisher keeps publishing: no acknowledged post lost, none duplicated', async (t) => {
    const { server, srv } = await setup(t);
    const client = await connectedAs(srv, t, 'carol');
    const events = connectionEvents(client);
    const tr = await track(client, ch);

    /** What became of each post the publisher sent: its offset, or how it failed. */
    const acked = new Map<number, number>();
    const temporary: number[] = [];
    const unknown: number[] = [];
    let stop = false;
    let next = 1;
    const publisher = (async () => {
      while (!stop) {
        const i = next++;
        const res = await srv.api('publish', { channel: ch, data: { n: i } });
        if (res.body.result !== undefined) acked.set(i, res.body.result.offset as number);
        else if (res.body.error?.code === 100 && res.body.error.temporary === true) temporary.push(i);
        else if (res.body.error?.code === 100) unknown.push(i);
        else assert.fail(`post ${i}: ${JSON.stringify(res.body)}`);
        // Not faster than the node can refuse while PostgreSQL is down.
        if (res.body.error !== undefined) await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      await waitUntil(() => acked.size >= 50, 10_000, '50 posts before the restart');
      const before = acked.size;
      await server.restart();
      await waitReady(srv, 200, 5000);
      await waitUntil(() => acked.size >= before + 50, 10_000, '50 posts after the restart');
    } finally {
      stop = true;
      await publisher;
    }
    t.diagnostic(`${acked.size} acknowledged, ${temporary.length} temporary, ${unknown.length} outcome unknown`);

    const history = await historyOf(srv);
    assert.deepEqual(history.offsets, range(1, history.offsets.length), 'gapless offsets');
    assert.equal(new Set(history.ns).size, history.ns.length, 'no post twice');
    for (const [i, offset] of acked) assert.equal(history.ns[offset - 1], i, `post ${i} at its offset ${offset}`);
    for (const i of temporary) assert.ok(!history.ns.includes(i), `post ${i} was refused as temporary, so not applied`);
    for (const i of history.ns) assert.ok(acked.has(i) || unknown.includes(i), `post ${i} in history was acknowledged`);
    assert.ok(acked.size >= 100);

    await waitUntil(() => tr.received.length >= history.ns.length, 5000, 'every post to the subscriber');
    assert.deepEqual(tr.received, history.ns, 'the subscriber got the history, once each, in order');
    assert.deepEqual(events, [], 'the subscriber stayed connected');
  });

  it('outbox consumer on a PostgreSQL killed mid-stream: the node lives on, then every committed row is published once, in order', async (t) => {
    const table = 'game_outbox';
    const { server, srv } = await setup(
      t,
      (url) => ({
        outbox: { enabled: true, postgresql: { dsn: url }, table, batch_size: 20, poll_interval: '20ms' },
        channel: { namespaces: [chatNamespace] },
      }),
      async (s) => {
        const admin = new pg.Client({ connectionString: s.url });
        await admin.connect();
        await admin.query(outboxDdl(table));
        await admin.end();
      },
    );
    const client = await connectedAs(srv, t, 'dave');
    const tr = await track(client, ch);

    /** A backend inserting one row per transaction: which rows committed, which inserts were in flight at a kill. */
    const committed: number[] = [];
    const uncertain: number[] = [];
    let n = 0;
    const write = async (rows: number): Promise<void> => {
      const backend = new pg.Client({ connectionString: server.url });
      backend.on('error', () => {});
      await backend.connect();
      try {
        for (let k = 0; k < rows; k++) {
          const i = ++n;
          try {
            await backend.query(`INSERT INTO ${table} (channel, data) VALUES ($1, jsonb_build_object('n', $2::int))`, [
              ch,
              i,
            ]);
            committed.push(i);
          } catch {
            uncertain.push(i); // PostgreSQL died with this INSERT in flight: it may have committed
            return;
          }
        }
      } finally {
        await backend.end().catch(() => {});
      }
    };
    // Twice: a crash while the consumer holds its connection between queries is a matter of timing.
    for (let round = 1; round <= 2; round++) {
      const writing = write(1_000_000);
      const target = committed.length + 100;
      await waitUntil(
        () => committed.length >= target && tr.received.length >= 20,
        10_000,
        'rows written and consumed',
      );
      await server.kill();
      await writing;
      assert.equal((await fetch(`${srv.httpUrl}/health`)).status, 200, 'the node lives on');
      await server.start();
    }
    await write(50);
    const waiting = async (): Promise<number> => {
      const c = new pg.Client({ connectionString: server.url });
      await c.connect();
      try {
        return Number((await c.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
      } finally {
        await c.end();
      }
    };
    const deadline = Date.now() + 10_000;
    while ((await waiting()) > 0) {
      assert.ok(Date.now() < deadline, 'the outbox drained within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Published is what the history holds: the row in flight at the kill is there or not.
    const published = (await historyOf(srv)).ns;
    const expected = [...committed, ...uncertain.filter((i) => published.includes(i))].sort((a, b) => a - b);
    assert.deepEqual(published, expected, 'every committed row published once, in order');
    await waitUntil(() => tr.received.length >= expected.length, 5000, 'every committed row');
    t.diagnostic(`${committed.length} rows committed; in flight at the kills: ${uncertain.join(', ')}`);
    assert.deepEqual(tr.received, expected, 'the subscriber got each once, in order');
    assert.deepEqual(tr.offsets, range(1, expected.length));
  });
});
