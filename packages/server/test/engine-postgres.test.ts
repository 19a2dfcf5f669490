/**
 * Tests of the PostgreSQL engine: the shared conformance suites on a real PostgreSQL (real
 * clock, a table prefix of this run's own, dropped at the end), then what is specific to it:
 * two nodes on one database, a lost notification caught up by the poll, history surviving a
 * restart of every node, a lost LISTEN connection, migrations (fresh, repeated, concurrent,
 * refused when newer), and clear errors for a bad DSN, a missing table and missing config.
 * Needs PostgreSQL at BULWARK_TEST_POSTGRES_URL (skipped without it, unless
 * BULWARK_REQUIRE_SERVICES=1).
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { loadConfig, redactConfig } from '../src/config/load.js';
import { MemoryBroker } from '../src/engine/broker-memory.js';
import type { HistoryQuery, PublishOptions } from '../src/engine/broker.js';
import { EngineOutcomeUnknownError, EngineUnavailableError } from '../src/engine/errors.js';
import { PostgresBroker, type PostgresBrokerOptions } from '../src/engine/postgres/broker-postgres.js';
import { PostgresDatabase, type PostgresEngineOptions } from '../src/engine/postgres/database.js';
import { PostgresPresenceManager } from '../src/engine/postgres/presence-postgres.js';
import { LATEST_SCHEMA_VERSION } from '../src/engine/postgres/schema.js';
import { runCleanup } from '../src/engine/postgres/cleanup.js';
import { BulwarkError } from '../src/errors.js';
import { asRaw, type ClientInfo, type Publication } from '../src/protocol/types.js';
import { LONG, Recorder, runBrokerSuite, sleep, waitFor, withHistory } from './conformance/broker.case.js';
import { runPresenceSuite } from './conformance/presence.case.js';
import { runPublishGuardSuite } from './conformance/publish-guards.case.js';
import { describePostgres, dropTables, pgUrl, sql, uniqueTablePrefix } from './helpers/postgres.js';
import { mulberry32 } from './helpers/prng.js';
import { runBulwark, writeConfigFile } from './helpers/process.js';
import { startTestServer } from './helpers/server.js';

/** Every table this run creates starts with this; dropped at the end. */
const prefix = uniqueTablePrefix();
const base: PostgresEngineOptions = { dsn: pgUrl, tablePrefix: prefix, cleanupIntervalMs: 0 };
/** Prefixes of the migration tests, dropped at the end too. */
const extraPrefixes: string[] = [];
const freshPrefix = (): string => {
  const p = uniqueTablePrefix();
  extraPrefixes.push(p);
  return p;
};

const hist = (over: Partial<PublishOptions> = {}): PublishOptions => ({ ...withHistory(), ...over });
const quiet = { onError: () => {} };

await describePostgres('PostgreSQL engine', () => {
  after(async () => {
    await Promise.all([prefix, ...extraPrefixes].map((p) => dropTables(p)));
  });

  runBrokerSuite('PostgresBroker conformance', async () => {
    const broker = new PostgresBroker({ ...base, ...quiet });
    return { broker, cleanup: () => broker.close() };
  });

  runPublishGuardSuite('PostgresBroker publish guards', async () => {
    const broker = new PostgresBroker({ ...base, ...quiet });
    return { broker, cleanup: () => broker.close() };
  });

  runPresenceSuite('PostgresPresenceManager conformance', async () => {
    const presence = new PostgresPresenceManager({ ...base, ...quiet });
    await presence.start();
    return { presence, cleanup: () => presence.close() };
  });

  it('answers random history queries exactly as the memory broker', async () => {
    const rand = mulberry32(42);
    const pgb = new PostgresBroker({ ...base, ...quiet });
    const memory = new MemoryBroker({ sweepIntervalMs: 0 });
    try {
      await pgb.start(new Recorder());
      await memory.start(new Recorder());
      for (let round = 0; round < 4; round++) {
        const channel = `model-${prefix}-${round}`;
        const size = 1 + Math.floor(rand() * 30);
        const publishes = Math.floor(rand() * 80);
        let epochs = { pg: '', memory: '' };
        for (let i = 1; i <= publishes; i++) {
          const opts = hist({ historySize: rand() < 0.1 ? 1 + Math.floor(rand() * 30) : size });
          const [p, m] = await Promise.all([
            pgb.publish(channel, asRaw(i), opts),
            memory.publish(channel, asRaw(i), opts),
          ]);
          assert.equal(p.offset, m.offset);
          epochs = { pg: p.epoch, memory: m.epoch };
          if (rand() < 0.03) await Promise.all([pgb.removeHistory(channel), memory.removeHistory(channel)]);
        }
        for (let q = 0; q < 30; q++) {
          const query: HistoryQuery = {
            limit: [-1, 0, 1, 2, 5, 1000][Math.floor(rand() * 6)]!,
            reverse: rand() < 0.5,
            metaTtlMs: 60_000,
          };
          const since = rand() < 0.7 ? Math.floor(rand() * (publishes + 4)) - 1 : undefined;
          const anyEpoch = rand() < 0.2;
          const read = (engine: 'pg' | 'memory') =>
            (engine === 'pg' ? pgb : memory).history(channel, {
              ...query,
              ...(since === undefined ? {} : { since: { offset: since, epoch: anyEpoch ? '' : epochs[engine] } }),
            });
          const [p, m] = await Promise.all([read('pg'), read('memory')]);
          const what = JSON.stringify({ round, publishes, query, since });
          assert.deepEqual(p.publications, m.publications, what);
          assert.equal(p.offset, m.offset, what);
        }
      }
    } finally {
      await Promise.all([pgb.close(), memory.close()]);
    }
  });

  describe('PostgresBroker on two nodes', () => {
    const nodes: PostgresBroker[] = [];
    const node = (over: Partial<PostgresBrokerOptions> = {}): PostgresBroker => {
      const broker = new PostgresBroker({ ...base, ...quiet, ...over });
      nodes.push(broker);
      return broker;
    };
    after(async () => {
      await Promise.all(nodes.map((b) => b.close()));
    });

    it('delivers publications (with and without history, small and large), joins, leaves and control messages to the other node', async () => {
      const a = node();
      const b = node();
      const [ra, rb] = [new Recorder(), new Recorder()];
      await Promise.all([a.start(ra), b.start(rb)]);
      const ch = `two-${prefix}`;
      await b.subscribe(ch);
      const info: ClientInfo = { user: 'u1', client: 'c1', conn_info: asRaw({ big: 'x'.repeat(9000) }) };
      const big = asRaw({ text: 'y'.repeat(20_000) });
      const p1 = await a.publish(ch, asRaw(1), hist());
      await a.publish(ch, big, hist());
      await a.publish(ch, asRaw('no history'), { historySize: 0, historyTtlMs: 0, historyMetaTtlMs: LONG });
      await a.publish(ch, big, { historySize: 0, historyTtlMs: 0, historyMetaTtlMs: LONG });
      await a.publishJoin(ch, info);
      await a.publishLeave(ch, { user: 'u1', client: 'c1' });
      await a.publishControl(asRaw({ op: 'x' }));
      await a.publishControl(asRaw({ op: 'y'.repeat(9000) }));
      await waitFor(
        () => rb.pubs.length >= 4 && rb.leaves.length >= 1 && rb.controls.length >= 2 && ra.controls.length >= 2,
      );
      assert.deepEqual(
        rb.pubs.map((d) => [d.pub.offset, d.epoch, d.pub.data]),
        [
          [1, p1.epoch, asRaw(1)],
          [2, p1.epoch, big],
          [0, '', asRaw('no history')],
          [0, '', big],
        ],
      );
      assert.deepEqual(rb.joins, [{ channel: ch, info }]);
      assert.deepEqual(rb.controls, [asRaw({ op: 'x' }), asRaw({ op: 'y'.repeat(9000) })]);
      assert.equal(ra.controls.length, 2, 'the publishing node receives its own control messages too');
    });

    it('gives the other node the previous publication of a delta publish, once per node', async () => {
      const a = node();
      const b = node();
      const prevs: (string | undefined)[] = [];
      const rb = new (class extends Recorder {
        override onPublication(channel: string, pub: Publication, epoch: string, prev?: Publication): void {
          super.onPublication(channel, pub, epoch);
          prevs.push(prev?.data);
        }
      })();
      await Promise.all([a.start(new Recorder()), b.start(rb)]);
      const ch = `delta-${prefix}`;
      await a.publish(ch, asRaw('before'), hist({ delta: true }));
      await b.subscribe(ch);
      for (const d of ['one', 'two', 'three']) await a.publish(ch, asRaw(d), hist({ delta: true }));
      await waitFor(() => rb.pubs.length >= 3);
      await sleep(50);
      assert.equal(rb.pubs.length, 3);
      assert.deepEqual(prevs, [asRaw('before'), asRaw('one'), asRaw('two')]);
    });

    it('catches up through the poll a publication whose notification was lost', async () => {
      const a = node({ pollIntervalMs: 100 });
      const ra = new Recorder();
      await a.start(ra);
      const ch = `lost-${prefix}`;
      const first = await a.publish(ch, asRaw(1), hist());
      await a.subscribe(ch);
      // Another node's transaction committed offset 2 but its NOTIFY never arrived.
      await sql(`UPDATE ${prefix}_streams SET top = 2 WHERE channel = $1`, [ch]);
      await sql(`INSERT INTO ${prefix}_publications (channel, "offset", data) VALUES ($1, 2, '"quiet"')`, [ch]);
      await waitFor(() => ra.pubs.length >= 1, 2000);
      assert.deepEqual(ra.pubs, [{ channel: ch, pub: { offset: 2, data: asRaw('quiet') }, epoch: first.epoch }]);
    });

    it('keeps history across a restart of every node (durability)', async () => {
      const ch = `durable-${prefix}`;
      const a = node();
      await a.start(new Recorder());
      let last = { offset: 0, epoch: '' };
      for (let i = 1; i <= 5; i++) last = await a.publish(ch, asRaw(i), hist());
      await a.close();
      const b = node();
      await b.start(new Recorder());
      const h = await b.history(ch, { limit: -1, metaTtlMs: LONG, since: { offset: 2, epoch: last.epoch } });
      assert.deepEqual(
        h.publications.map((p) => p.data),
        [3, 4, 5].map((i) => asRaw(i)),
      );
      assert.deepEqual({ offset: h.offset, epoch: h.epoch }, last);
      assert.deepEqual(await b.publish(ch, asRaw(6), hist()), { offset: 6, epoch: last.epoch });
    });

    it('reports a lost LISTEN connection, reconnects and catches up what it missed', async () => {
      const states: boolean[] = [];
      const a = node({ onStateChange: (up) => states.push(up), reconnectMaxDelayMs: 100 });
      const b = node();
      const ra = new Recorder();
      await Promise.all([a.start(ra), b.start(new Recorder())]);
      const ch = `outage-${prefix}`;
      await a.subscribe(ch);
      assert.equal(a.isReady(), true);
      assert.deepEqual(states, [true]);
      states.length = 0;
      await sql(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'bulwark-listen' AND pid <> pg_backend_pid() AND query LIKE $1`,
        [`LISTEN ${prefix}_events%`],
      );
      await waitFor(() => states.includes(false), 2000);
      await b.publish(ch, asRaw('during'), hist()); // its NOTIFY may reach nobody on a
      await waitFor(() => a.isReady(), 3000);
      await waitFor(() => ra.pubs.length >= 1, 3000);
      assert.deepEqual(
        ra.pubs.map((d) => d.pub.data),
        [asRaw('during')],
      );
      assert.deepEqual(states.slice(0, 2), [false, true]);
    });
  });

  it('while PostgreSQL is lost: not ready, calls fail as unavailable, then reconnects and delivers what was published meanwhile', async () => {
    const proxy = await TcpProxy.start(new URL(pgUrl));
    const states: boolean[] = [];
    const viaProxy = new URL(pgUrl);
    viaProxy.port = String(proxy.port);
    const a = new PostgresBroker({
      ...base,
      dsn: viaProxy.toString(),
      connectTimeoutMs: 500,
      reconnectMaxDelayMs: 100,
      pollIntervalMs: 100,
      onStateChange: (up) => states.push(up),
      ...quiet,
    });
    const b = new PostgresBroker({ ...base, ...quiet });
    const ra = new Recorder();
    try {
      await Promise.all([a.start(ra), b.start(new Recorder())]);
      const ch = `lost-db-${prefix}`;
      await a.subscribe(ch);
      const first = await a.publish(ch, asRaw(1), hist());
      await waitFor(() => ra.pubs.length === 1);
      states.length = 0;
      proxy.stop();
      await waitFor(() => !a.isReady(), 2000);
      assert.deepEqual(states, [false]);
      const t0 = Date.now();
      await assert.rejects(a.publish(ch, asRaw('no'), hist()), (err: unknown) => err instanceof EngineUnavailableError);
      await assert.rejects(
        a.history(ch, { limit: -1, metaTtlMs: LONG }),
        (err: unknown) => err instanceof EngineUnavailableError && err.temporary,
      );
      assert.ok(Date.now() - t0 < 2000, 'failed fast');
      await b.publish(ch, asRaw(2), hist()); // another node, still connected
      await proxy.resume();
      await waitFor(() => a.isReady(), 3000);
      await waitFor(() => ra.pubs.length >= 2, 3000);
      assert.deepEqual(
        ra.pubs.map((d) => [d.pub.offset, d.pub.data]),
        [
          [1, asRaw(1)],
          [2, asRaw(2)],
        ],
      );
      assert.deepEqual(await a.publish(ch, asRaw(3), hist()), { offset: 3, epoch: first.epoch });
      assert.deepEqual(states, [false, true]);
    } finally {
      await Promise.all([a.close(), b.close()]);
      proxy.stop();
    }
  });

  it('cleans up expired streams, publications, idempotency results, presence entries and old notices', async () => {
    const db = new PostgresDatabase(base, () => {}).retain();
    const broker = new PostgresBroker({ database: db, ...quiet });
    const presence = new PostgresPresenceManager({ database: db, ...quiet });
    const ch = `clean-${prefix}-`;
    const count = async (table: string): Promise<number> =>
      Number(
        (await sql<{ n: string }>(`SELECT count(*) AS n FROM ${prefix}_${table} WHERE channel LIKE $1`, [`${ch}%`]))[0]!
          .n,
      );
    try {
      await db.start();
      await broker.start(new Recorder());
      const short = { historyTtlMs: 100, idempotencyKey: 'k', idempotentResultTtlMs: 100 };
      await broker.publish(`${ch}gone`, asRaw(1), hist({ ...short, historyMetaTtlMs: 100 }));
      await broker.publish(`${ch}kept`, asRaw(1), hist(short));
      await presence.addPresence(`${ch}gone`, { user: 'u', client: 'c' }, 100);
      const [notice] = await sql<{ id: number }>(
        `INSERT INTO ${prefix}_notices (payload, created_at) VALUES ('c\n{}', 0) RETURNING id`,
      );
      assert.deepEqual([await count('streams'), await count('publications'), await count('results')], [2, 2, 2]);
      await sleep(250);
      await runCleanup(db);
      assert.deepEqual(
        [await count('streams'), await count('publications'), await count('results'), await count('presence')],
        [1, 0, 0, 0],
        'the kept stream keeps its position, nothing else is left',
      );
      assert.deepEqual(await sql(`SELECT id FROM ${prefix}_notices WHERE id = $1`, [notice!.id]), []);
      const h = await broker.history(`${ch}kept`, { limit: -1, metaTtlMs: LONG });
      assert.deepEqual([h.offset, h.publications], [1, []]);
    } finally {
      await Promise.all([broker.close(), presence.close(), db.close()]);
    }
  });

  describe('migrations', () => {
    it('migrates a fresh database, does nothing the second time, and shares one run among concurrent starts', async () => {
      const p = freshPrefix();
      const dbs = Array.from({ length: 4 }, () =>
        new PostgresDatabase({ dsn: pgUrl, tablePrefix: p }, () => {}).retain(),
      );
      try {
        const reports = await Promise.all(dbs.map((db) => db.start()));
        assert.equal(reports.filter((r) => r.applied.length > 0).length, 1, JSON.stringify(reports));
        for (const r of reports) assert.equal(r.to, LATEST_SCHEMA_VERSION);
        const again = await dbs[0]!.start();
        assert.deepEqual(again, { from: LATEST_SCHEMA_VERSION, to: LATEST_SCHEMA_VERSION, applied: [] });
        const versions = await sql<{ version: number }>(`SELECT version FROM ${p}_migrations ORDER BY version`);
        assert.deepEqual(
          versions.map((v) => v.version),
          Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => i + 1),
        );
      } finally {
        await Promise.all(dbs.map((db) => db.close()));
      }
    });

    it('refuses a schema newer than this build (BW_ERR_ENGINE_SCHEMA)', async () => {
      const p = freshPrefix();
      const db = new PostgresDatabase({ dsn: pgUrl, tablePrefix: p }, () => {}).retain();
      try {
        await db.start();
        await sql(`INSERT INTO ${p}_migrations (version, description) VALUES (99, 'from the future')`);
        await assert.rejects(
          db.start(),
          (err: unknown) =>
            err instanceof BulwarkError &&
            err.code === 'BW_ERR_ENGINE_SCHEMA' &&
            err.message.includes(`${p}_migrations`) &&
            err.message.includes('version 99'),
        );
        const broker = new PostgresBroker({ dsn: pgUrl, tablePrefix: p, ...quiet });
        await assert.rejects(broker.start(new Recorder()), BulwarkError);
      } finally {
        await db.close();
      }
    });

    it('`bulwark migrate` applies the migrations and exits', async () => {
      const p = freshPrefix();
      const cfg = writeConfigFile({
        client: { insecure: true },
        http_api: { insecure: true },
        engine: { type: 'postgresql', postgresql: { dsn: pgUrl, table_prefix: p } },
      });
      try {
        const first = await runBulwark(['migrate', '-c', cfg.path]);
        assert.equal(first.exit.code, 0, first.stderr);
        assert.match(first.stdout, new RegExp(`schema at version ${LATEST_SCHEMA_VERSION} \\(applied 1, 2, 3\\)`));
        assert.doesNotMatch(first.stdout, /postgres@/, 'no credentials in the output');
        const second = await runBulwark(['migrate', '-c', cfg.path]);
        assert.match(second.stdout, /nothing to apply/);
      } finally {
        cfg.remove();
      }
    });
  });

  describe('errors', () => {
    const isUnavailable = (pattern: RegExp) => (err: unknown) =>
      err instanceof EngineUnavailableError && err.temporary && pattern.test(err.message);

    it('rejects start with EngineUnavailableError when PostgreSQL is unreachable, quickly', async () => {
      const t0 = Date.now();
      const broker = new PostgresBroker({
        dsn: 'postgresql://postgres@127.0.0.1:1/test',
        connectTimeoutMs: 500,
        ...quiet,
      });
      await assert.rejects(broker.start(new Recorder()), isUnavailable(/127\.0\.0\.1:1/));
      assert.ok(Date.now() - t0 < 2000);
      assert.equal(broker.isReady(), false);
    });

    it('names engine.postgresql.dsn for an unknown role or database, without the password', async () => {
      const url = new URL(pgUrl);
      url.username = 'no_such_role_bw';
      url.password = 's3cret';
      const role = new PostgresBroker({ ...base, dsn: url.toString(), ...quiet });
      await assert.rejects(
        role.start(new Recorder()),
        (err: unknown) =>
          isUnavailable(/engine\.postgresql\.dsn/)(err) && !String((err as Error).message).includes('s3cret'),
      );
      const db = new URL(pgUrl);
      db.pathname = '/no_such_db_bw';
      const missing = new PostgresBroker({ ...base, dsn: db.toString(), ...quiet });
      await assert.rejects(missing.start(new Recorder()), isUnavailable(/no such database.*engine\.postgresql\.dsn/));
    });

    it('names the missing permission and engine.postgresql.dsn for a role without grants', async () => {
      const role = `${prefix}_ro`;
      await sql(`CREATE ROLE ${role} LOGIN`);
      try {
        const url = new URL(pgUrl);
        url.username = role;
        const broker = new PostgresBroker({ ...base, dsn: url.toString(), ...quiet });
        await assert.rejects(
          broker.start(new Recorder()),
          isUnavailable(/refused a permission \(permission denied .*engine\.postgresql\.dsn/),
        );
      } finally {
        await sql(`DROP ROLE ${role}`);
      }
    });

    it('a node started while PostgreSQL is unreachable is up but not ready, and becomes ready once it answers', async () => {
      const proxy = await TcpProxy.start(new URL(pgUrl));
      proxy.stop();
      const dsn = new URL(pgUrl);
      dsn.port = String(proxy.port);
      const srv = await startTestServer({
        engine: {
          type: 'postgresql',
          postgresql: {
            dsn: dsn.toString(),
            table_prefix: prefix,
            reconnect_max_delay: '100ms',
            connect_timeout: '300ms',
          },
        },
      });
      try {
        assert.equal(srv.node.engineStarted, false);
        assert.equal((await fetch(`${srv.httpUrl}/ready`)).status, 503);
        await proxy.resume();
        await waitFor(() => srv.node.engineStarted, 3000);
        let status = 0;
        await waitFor(() => {
          void fetch(`${srv.httpUrl}/ready`).then((r) => (status = r.status));
          return status === 200;
        }, 3000);
        const res = await srv.api('publish', { channel: `chat:${prefix}`, data: { n: 1 } });
        assert.equal(res.body.result?.offset, 1, JSON.stringify(res.body));
      } finally {
        await srv.close();
        proxy.stop();
      }
    });

    it('names the missing table and `bulwark migrate` when a table was dropped', async () => {
      const p = freshPrefix();
      const broker = new PostgresBroker({ dsn: pgUrl, tablePrefix: p, ...quiet });
      try {
        await broker.start(new Recorder());
        await sql(`DROP TABLE ${p}_publications`);
        await assert.rejects(
          broker.publish('ch', asRaw(1), hist()),
          isUnavailable(new RegExp(`${p}_publications.*bulwark migrate`)),
        );
      } finally {
        await broker.close();
      }
    });

    it('fails a publish after close as unavailable, not as a hang', async () => {
      const broker = new PostgresBroker({ ...base, ...quiet });
      await broker.start(new Recorder());
      await broker.close();
      await assert.rejects(
        broker.publish('ch', asRaw(1), hist()),
        (err: unknown) => !(err instanceof EngineOutcomeUnknownError),
      );
    });

    it('refuses a config without engine.postgresql.dsn, naming the key, and redacts the DSN when printed', () => {
      assert.deepEqual(redactConfig({ engine: { postgresql: { dsn: 'postgresql://u:pw@h/db' } } }), {
        engine: { postgresql: { dsn: '<redacted>' } },
      });
      assert.throws(
        () =>
          loadConfig({
            object: { engine: { type: 'postgresql' }, client: { insecure: true }, http_api: { insecure: true } },
            env: {},
          }),
        (err: unknown) => err instanceof BulwarkError && /engine\.postgresql\.dsn/.test(err.message),
      );
      assert.throws(
        () =>
          loadConfig({
            object: {
              engine: { type: 'postgresql', postgresql: { dsn: pgUrl, table_prefix: 'Bad-Prefix' } },
              client: { insecure: true },
              http_api: { insecure: true },
            },
            env: {},
          }),
        (err: unknown) => err instanceof BulwarkError && /engine\.postgresql\.table_prefix/.test(err.message),
      );
    });
  });
});

/** TcpProxy forwards a local port to PostgreSQL; stop() cuts every connection and refuses new ones. */
class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly port: number,
    private readonly target: URL,
  ) {}

  static async start(target: URL): Promise<TcpProxy> {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const proxy = new TcpProxy(port, target);
    await proxy.resume();
    return proxy;
  }

  async resume(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(Number(this.target.port || 5432), this.target.hostname);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
  }

  stop(): void {
    this.server?.close();
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
  }
}
