/**
 * Tests of engines combined (docs/ENGINES.md): the Redis fan-out (`broker.type` redis) in front
 * of PostgreSQL history through the shared broker conformance and publish-guard suites, and
 * presence apart from the engine (`presence_manager`) through the presence conformance suite,
 * each made from config by createCombinedEngine. Then what is specific: two nodes publishing
 * concurrently deliver in offset order, a fan-out sharing Redis and prefix with a Redis engine
 * hears none of its messages, malformed messages are skipped, a private `redis-server` down at
 * start and lost while running (readiness is every part's; subscriptions renewed; the gap
 * filled from history), and the config refusals. Needs Redis and PostgreSQL (skipped without
 * them, unless BULWARK_REQUIRE_SERVICES=1); the outage tests need `redis-server`.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config/load.js';
import type { ConfigInput } from '../src/config/schema.js';
import { createCombinedEngine } from '../src/engine/combined-engine.js';
import { ComposedBroker } from '../src/engine/composed-broker.js';
import type { Engine } from '../src/engine/engine.js';
import { engineParts } from '../src/engine/engine-parts.js';
import { EngineOutcomeUnknownError, EngineUnavailableError } from '../src/engine/errors.js';
import { PostgresBroker } from '../src/engine/postgres/broker-postgres.js';
import { describeDsn } from '../src/engine/postgres/database.js';
import { fanoutChannel, RedisFanout } from '../src/engine/redis/fanout-redis.js';
import { asRaw } from '../src/protocol/types.js';
import { LONG, Recorder, runBrokerSuite, waitFor, withHistory } from './conformance/broker.case.js';
import { runPresenceSuite } from './conformance/presence.case.js';
import { runPublishGuardSuite } from './conformance/publish-guards.case.js';
import { dropTables, pgAvailable, pgUrl, sql, uniqueTablePrefix } from './helpers/postgres.js';
import {
  describeIf,
  redisAvailable,
  RedisServer,
  redisServerMissing,
  redisUrl,
  removeKeys,
  uniquePrefix,
} from './helpers/redis.js';

const redisPrefix = uniquePrefix();
const tablePrefix = uniqueTablePrefix();
const quiet = { onError: () => {} };

/** history is a PostgreSQL history broker on this run's tables. */
function history(): PostgresBroker {
  // Publishes of one channel queue on its stream row: a long queue waits for a pooled connection.
  return new PostgresBroker({ dsn: pgUrl, tablePrefix, cleanupIntervalMs: 0, connectTimeoutMs: 10_000, ...quiet });
}

interface NodeOptions {
  url?: string;
  prefix?: string;
  onError?: (err: unknown) => void;
  onStateChange?: (up: boolean) => void;
}

/** node is one composed broker (not started): Redis fan-out in front of PostgreSQL history. */
function node(o: NodeOptions = {}): ComposedBroker {
  const fanout = new RedisFanout({
    addresses: [o.url ?? redisUrl],
    prefix: o.prefix ?? redisPrefix,
    connectTimeoutMs: 500,
    maxReconnectDelayMs: 100,
  });
  return new ComposedBroker(history(), fanout, {
    reorderWaitMs: 50,
    catchUpBatch: 1000,
    onError: o.onError ?? (() => {}),
    ...(o.onStateChange === undefined ? {} : { onStateChange: o.onStateChange }),
  });
}

/** config loads a config with the engine parts of `parts` (insecure: no secrets needed). */
function config(parts: ConfigInput) {
  return loadConfig({ object: { http_api: { insecure: true }, client: { insecure: true }, ...parts } });
}

const pgEngine = {
  type: 'postgresql' as const,
  postgresql: { dsn: pgUrl, table_prefix: tablePrefix, cleanup_interval: '0s' },
};
const fast = { connect_timeout: '500ms', reconnect_max_delay: '100ms' };

/** combined starts the engine `parts` make, recording its state changes; closed after the test. */
async function combined(parts: ConfigInput, states: boolean[] = []): Promise<Engine & { close(): Promise<void> }> {
  const engine = createCombinedEngine(config(parts), { onStateChange: (up) => states.push(up), ...quiet });
  await engine.start(new Recorder());
  return Object.assign(engine, {
    close: async () => {
      await Promise.all([engine.broker.close(), engine.presence.close(), engine.map.close()]);
    },
  });
}

describeIf(
  'engines combined',
  (await Promise.all([redisAvailable(), pgAvailable()])).filter((r) => r !== undefined).join('; ') || undefined,
  () => {
    after(async () => {
      await Promise.all([removeKeys(redisPrefix), dropTables(tablePrefix)]);
    });

    runBrokerSuite('Redis fan-out + postgresql history: Broker conformance', async () => {
      const broker = node({ prefix: uniquePrefix() });
      return { broker, cleanup: () => broker.close() };
    });
    runPublishGuardSuite('Redis fan-out + postgresql history: publish guards', async () => {
      const broker = node({ prefix: uniquePrefix() });
      return { broker, cleanup: () => broker.close() };
    });

    runPresenceSuite('presence_manager redis apart from a postgresql engine: Presence conformance', async () => {
      const engine = await combined({
        engine: pgEngine,
        presence_manager: { enabled: true, type: 'redis', redis: { address: [redisUrl], prefix: redisPrefix } },
      });
      return { presence: engine.presence, cleanup: () => engine.close() };
    });
    runPresenceSuite('presence_manager postgresql apart from a redis engine: Presence conformance', async () => {
      const engine = await combined({
        engine: { type: 'redis', redis: { address: [redisUrl], prefix: redisPrefix } },
        presence_manager: {
          enabled: true,
          type: 'postgresql',
          postgresql: { dsn: pgUrl, table_prefix: tablePrefix, cleanup_interval: '0s' },
        },
      });
      return { presence: engine.presence, cleanup: () => engine.close() };
    });

    it('presence lives apart: written to the presence manager, not to the engine', async () => {
      const engine = await combined({
        engine: pgEngine,
        broker: { enabled: true, type: 'redis', redis: { address: [redisUrl], prefix: redisPrefix } },
        presence_manager: { enabled: true, type: 'redis', redis: { address: [redisUrl], prefix: redisPrefix } },
      });
      try {
        const ch = `apart-${uniquePrefix()}`;
        await engine.presence.addPresence(ch, { client: 'c1', user: 'u1' }, LONG);
        assert.deepEqual(await engine.presence.presenceStats(ch), { numClients: 1, numUsers: 1 });
        const rows = await sql<{ n: number }>(
          `SELECT count(*)::int AS n FROM ${tablePrefix}_presence WHERE channel = $1`,
          [ch],
        );
        assert.equal(rows[0]!.n, 0, 'nothing in the PostgreSQL engine');
        const redis = new Redis(redisUrl);
        try {
          assert.equal(await redis.hlen(`${redisPrefix}.presence.data.{${ch}}`), 1, 'the entry is in Redis');
        } finally {
          redis.disconnect();
        }
        assert.match(engine.address, /^redis:\/\/.* \+ postgresql:\/\/.*, presence redis:\/\//);
        assert.equal(engine.isReady(), true);
      } finally {
        await engine.close();
      }
    });

    it("two nodes publishing concurrently to one channel deliver each other's publications in offset order", async () => {
      const prefix = uniquePrefix();
      const [a, b] = [node({ prefix }), node({ prefix })];
      const [ra, rb] = [new Recorder(), new Recorder()];
      try {
        await Promise.all([a.start(ra), b.start(rb)]);
        const ch = `concurrent-${prefix}`;
        await Promise.all([a.subscribe(ch), b.subscribe(ch)]);
        const n = 200;
        const t0 = performance.now();
        const results = await Promise.all(
          Array.from({ length: n }, (_, i) =>
            (i % 2 === 0 ? a : b).publish(ch, asRaw(i), withHistory({ historySize: n })),
          ),
        );
        await waitFor(() => ra.pubs.length >= n && rb.pubs.length >= n, 5000);
        const ms = performance.now() - t0;
        const expected = Array.from({ length: n }, (_, i) => i + 1);
        assert.deepEqual(
          results.map((r) => r.offset).sort((x, y) => x - y),
          expected,
        );
        for (const r of [ra, rb]) {
          assert.deepEqual(
            r.pubs.map((d) => d.pub.offset),
            expected,
            'every offset once, in order',
          );
        }
        const dataAt = new Map(ra.pubs.map((d) => [d.pub.offset, d.pub.data]));
        results.forEach((r, i) => assert.equal(dataAt.get(r.offset), asRaw(i)));
        console.log(
          `# ${n} concurrent publishes from 2 nodes delivered in order on both in ${ms.toFixed(0)} ms; ` +
            `order work a ${JSON.stringify(a.orderStats)} b ${JSON.stringify(b.orderStats)}`,
        );
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('a Redis fan-out sharing Redis and prefix with a Redis engine hears none of the engine messages', async () => {
      const errors: unknown[] = [];
      const shared = { address: [redisUrl], prefix: redisPrefix };
      const engine = createCombinedEngine(
        config({ engine: { type: 'redis', redis: shared }, broker: { enabled: true, type: 'redis', redis: shared } }),
        { onStateChange: () => {}, onError: (err) => errors.push(err) },
      );
      const rec = new Recorder();
      try {
        await engine.start(rec);
        const ch = `shared-${uniquePrefix()}`;
        await engine.broker.subscribe(ch);
        await engine.broker.publishJoin(ch, { client: 'c1', user: 'u1' });
        for (let i = 1; i <= 3; i++) await engine.broker.publish(ch, asRaw(i), withHistory());
        await waitFor(() => rec.pubs.length === 3 && rec.joins.length === 1);
        await new Promise((resolve) => setTimeout(resolve, 100)); // anything more would arrive now
        assert.deepEqual(
          rec.pubs.map((d) => d.pub.offset),
          [1, 2, 3],
        );
        assert.equal(rec.joins.length, 1);
        assert.deepEqual(errors, []);
      } finally {
        await Promise.all([engine.broker.close(), engine.presence.close(), engine.map.close()]);
      }
    });

    it('skips a malformed message on a fan-out channel, reporting it, and keeps delivering', async () => {
      const prefix = uniquePrefix();
      const errors: unknown[] = [];
      const a = node({ prefix, onError: (err) => errors.push(err) });
      const ra = new Recorder();
      const redis = new Redis(redisUrl);
      try {
        await a.start(ra);
        const ch = 'odd}name{';
        await a.subscribe(ch);
        await redis.publish(fanoutChannel(prefix, ch), 'not a bulwark message');
        await a.publish(ch, asRaw('ok'), { historySize: 0, historyTtlMs: 0, historyMetaTtlMs: LONG });
        await waitFor(() => ra.pubs.length === 1 && errors.length === 1);
        assert.equal((errors[0] as { code?: string }).code, 'BW_ERR_REDIS_FANOUT_MALFORMED');
        assert.deepEqual(ra.pubs, [{ channel: ch, pub: { offset: 0, data: asRaw('ok') }, epoch: '' }]);
      } finally {
        await a.close();
        redis.disconnect();
      }
    });

    describeIf('with a private redis-server', redisServerMissing(), () => {
      it('fan-out Redis down at start: start fails fast naming broker.redis; then starts once Redis is there', async () => {
        const server = await RedisServer.start();
        await server.kill();
        const down = node({ url: server.url });
        const t0 = performance.now();
        await assert.rejects(down.start(new Recorder()), (err: unknown) => {
          assert.ok(err instanceof EngineUnavailableError);
          assert.match(String((err.cause as Error).message), /broker\.redis\.\*/);
          return true;
        });
        assert.ok(performance.now() - t0 < 2000, 'failed within about connect_timeout');
        await server.resume();
        const up = node({ url: server.url });
        try {
          await up.start(new Recorder());
          assert.equal(up.isReady(), true);
        } finally {
          await Promise.all([up.close(), down.close(), server.destroy()]);
        }
      });

      it('fan-out Redis lost while running: not ready, publishes refused unstored; back: subscriptions renewed, gap filled from history', async () => {
        const server = await RedisServer.start();
        const prefix = uniquePrefix();
        const states: boolean[] = [];
        const a = node({ url: server.url, prefix, onStateChange: (up) => states.push(up) });
        const b = node({ url: server.url, prefix });
        const ra = new Recorder();
        const direct = history();
        try {
          await Promise.all([a.start(ra), b.start(new Recorder()), direct.start(new Recorder())]);
          const ch = `outage-${prefix}`;
          await a.subscribe(ch);
          await b.publish(ch, asRaw(1), withHistory());
          await waitFor(() => ra.pubs.length === 1);
          await server.kill();
          await waitFor(() => !a.isReady() && !b.isReady(), 3000);
          assert.deepEqual(states, [false]);
          const t0 = performance.now();
          await assert.rejects(b.publish(ch, asRaw('no'), withHistory()), (err: unknown) => {
            assert.ok(err instanceof EngineUnavailableError && !(err instanceof EngineOutcomeUnknownError));
            assert.match(String((err.cause as Error).message), /broker\.redis/);
            return true;
          });
          assert.ok(performance.now() - t0 < 100, 'refused at once');
          assert.equal(
            (await b.history(ch, { limit: 0, metaTtlMs: LONG })).offset,
            1,
            'the refused publish was not stored',
          );
          await direct.publish(ch, asRaw(2), withHistory()); // published elsewhere during the outage
          await server.resume();
          await waitFor(() => a.isReady() && b.isReady(), 5000);
          assert.deepEqual(states, [false, true]);
          await b.publish(ch, asRaw(3), withHistory()); // reaches a only if a's subscription was renewed
          await waitFor(() => ra.pubs.length === 3, 3000);
          assert.deepEqual(
            ra.pubs.map((d) => d.pub.data),
            [1, 2, 3].map((i) => asRaw(i)),
          );
        } finally {
          await Promise.all([a.close(), b.close(), direct.close(), server.destroy()]);
        }
      });

      it('readiness is every part: a presence manager Redis lost makes the engine not ready, back makes it ready', async () => {
        const server = await RedisServer.start();
        const states: boolean[] = [];
        const engine = await combined(
          {
            engine: pgEngine,
            broker: { enabled: true, type: 'redis', redis: { address: [redisUrl], prefix: redisPrefix, ...fast } },
            presence_manager: {
              enabled: true,
              type: 'redis',
              redis: { address: [server.url], prefix: redisPrefix, ...fast },
            },
          },
          states,
        );
        try {
          assert.equal(engine.isReady(), true);
          await server.kill();
          await waitFor(() => !engine.isReady(), 3000);
          assert.equal(engine.broker.isReady?.(), true, 'the broker itself is still up');
          await assert.rejects(engine.presence.presenceStats('x'), EngineUnavailableError);
          await server.resume();
          await waitFor(() => engine.isReady(), 5000);
          assert.ok(states.includes(false) && states.at(-1) === true, JSON.stringify(states));
        } finally {
          await Promise.all([engine.close(), server.destroy()]);
        }
      });

      it('presence manager Redis down at start: the engine does not start and leaves nothing running', async () => {
        const server = await RedisServer.start();
        await server.kill();
        const cfg = config({
          engine: pgEngine,
          presence_manager: { enabled: true, type: 'redis', redis: { address: [server.url], ...fast } },
        });
        const engine = createCombinedEngine(cfg, { onStateChange: () => {}, ...quiet });
        try {
          await assert.rejects(engine.start(new Recorder()), (err: unknown) => {
            assert.ok(err instanceof EngineUnavailableError);
            const parts = engineParts(cfg).filter((p) => p.address === err.address);
            assert.deepEqual(
              parts.map((p) => p.section),
              ['presence_manager.redis'],
              'the failure names the presence manager',
            );
            return true;
          });
          assert.equal(engine.isReady(), false);
        } finally {
          await server.destroy();
        }
      });
    });

    describe('config', () => {
      const redisBroker = { enabled: true, type: 'redis' } as const;
      it('broker.redis and presence_manager take the engine.redis names, with defaults', () => {
        const cfg = config({
          engine: pgEngine,
          broker: { ...redisBroker, redis: { address: ['redis://10.0.0.1:6380'], db: 2, prefix: 'fo' } },
          presence_manager: { enabled: true, redis: { user: 'bw', password: 'pw', tls: { enabled: true } } },
        });
        assert.equal(cfg.broker.redis.db, 2);
        assert.equal(cfg.broker.redis.io_timeout, 1000);
        assert.equal(cfg.broker.redis.reorder_wait, 50);
        assert.equal(cfg.presence_manager.type, 'redis');
        assert.equal(cfg.presence_manager.redis.tls.enabled, true);
        const env = loadConfig({
          object: { http_api: { insecure: true }, client: { insecure: true }, engine: pgEngine, broker: redisBroker },
          env: { BULWARK_BROKER_REDIS_ADDRESS: 'redis://10.0.0.2:6379' },
        });
        assert.deepEqual(env.broker.redis.address, ['redis://10.0.0.2:6379']);
        assert.deepEqual(
          engineParts(cfg).map((p) => [p.section, p.service, p.address]),
          [
            ['engine.postgresql', 'PostgreSQL', describeDsn(pgUrl)],
            ['broker.redis', 'Redis', 'redis://10.0.0.1:6380'],
            ['presence_manager.redis', 'Redis', 'rediss://127.0.0.1:6379'],
          ],
          'credentials never in an address',
        );
      });

      it('refuses presence apart from the memory engine, and a memory engine with a broker of either type', () => {
        assert.throws(
          () => config({ presence_manager: { enabled: true } }),
          /presence_manager\.enabled needs engine\.type redis or postgresql/,
        );
        assert.throws(() => config({ broker: redisBroker }), /broker\.enabled needs engine\.type redis or postgresql/);
      });

      it('refuses a missing presence_manager.postgresql.dsn, naming the key', () => {
        assert.throws(
          () => config({ engine: pgEngine, presence_manager: { enabled: true, type: 'postgresql' } }),
          (err: unknown) => {
            assert.match(String(err), /presence_manager\.postgresql\.dsn/);
            assert.match(String(err), /missing secret/);
            return true;
          },
        );
      });

      it('refuses unusable broker.redis and presence_manager.redis settings, naming the section', () => {
        assert.throws(
          () => config({ engine: pgEngine, broker: { ...redisBroker, redis: { address: ['http://x:1'] } } }),
          /broker\.redis.*must use redis:\/\/ or rediss:\/\//s,
        );
        assert.throws(
          () =>
            config({
              engine: pgEngine,
              presence_manager: { enabled: true, redis: { cluster_address: ['a:1'], db: 3 } },
            }),
          /presence_manager\.redis.*db must be 0 with cluster/s,
        );
        assert.throws(
          () => config({ engine: pgEngine, broker: { ...redisBroker, redis: { cluster_address: ['a:1'] } } }),
          /broker\.redis\.cluster_address.*not supported yet/s,
        );
        // Unused sections are not checked: a broker of type nats ignores broker.redis.
        config({ engine: pgEngine, broker: { enabled: true, type: 'nats', redis: { address: ['http://x:1'] } } });
      });
    });
  },
);
