/**
 * Tests of the NATS broker (fan-out over core NATS, history on the engine): the shared
 * conformance suites with history on Redis and on PostgreSQL (a NATS subject prefix, Redis key
 * prefix and table prefix of this run's own), then what is specific to it: subject encoding,
 * two nodes publishing concurrently to one channel deliver in offset order, a publication that
 * never reached NATS filled in from history, malformed messages skipped, and NATS down at start
 * and lost while running (a private `nats-server`). Needs NATS at BULWARK_TEST_NATS_URL, Redis
 * and PostgreSQL (skipped without them, unless BULWARK_REQUIRE_SERVICES=1).
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { loadConfig } from '../src/config/load.js';
import type { Broker } from '../src/engine/broker.js';
import { ComposedBroker } from '../src/engine/composed-broker.js';
import { EngineOutcomeUnknownError, EngineUnavailableError } from '../src/engine/errors.js';
import { NatsFanout, natsAddress } from '../src/engine/nats/fanout-nats.js';
import { channelToken, Subjects, tokenChannel } from '../src/engine/nats/subjects.js';
import { PostgresBroker } from '../src/engine/postgres/broker-postgres.js';
import { RedisBroker } from '../src/engine/redis/broker-redis.js';
import { asRaw } from '../src/protocol/types.js';
import { LONG, Recorder, runBrokerSuite, waitFor, withHistory } from './conformance/broker.case.js';
import { runPublishGuardSuite } from './conformance/publish-guards.case.js';
import { describeNats, NatsServer, natsServerMissing, natsUrl, uniqueNatsPrefix } from './helpers/nats.js';
import { dropTables, pgAvailable, pgUrl, uniqueTablePrefix } from './helpers/postgres.js';
import { describeIf, redisAvailable, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';

const redisPrefix = uniquePrefix();
const tablePrefix = uniqueTablePrefix();
const quiet = { onError: () => {} };

type HistoryKind = 'redis' | 'postgresql';

/** history makes a history broker of `kind` on this run's prefixes. */
function history(kind: HistoryKind): RedisBroker | PostgresBroker {
  return kind === 'redis'
    ? new RedisBroker({ addresses: [redisUrl], prefix: redisPrefix, ...quiet })
    : // Publishes of one channel queue on its stream row: a long queue waits for a pooled connection.
      new PostgresBroker({ dsn: pgUrl, tablePrefix, cleanupIntervalMs: 0, connectTimeoutMs: 10_000, ...quiet });
}

interface NodeOptions {
  url?: string;
  prefix?: string;
  reorderWaitMs?: number;
  onError?: (err: unknown) => void;
  onStateChange?: (up: boolean) => void;
  history?: Broker;
}

/** node makes one composed broker (not started): NATS fan-out in front of `kind` history. */
function node(kind: HistoryKind, o: NodeOptions = {}): ComposedBroker {
  const fanout = new NatsFanout({
    url: o.url ?? natsUrl,
    prefix: o.prefix ?? uniqueNatsPrefix(),
    dialTimeoutMs: 500,
    reconnectMaxDelayMs: 100,
    pingIntervalMs: 1000,
  });
  return new ComposedBroker(o.history ?? history(kind), fanout, {
    reorderWaitMs: o.reorderWaitMs ?? 50,
    catchUpBatch: 1000,
    onError: o.onError ?? (() => {}),
    ...(o.onStateChange === undefined ? {} : { onStateChange: o.onStateChange }),
  });
}

await describeNats(
  'NATS broker',
  () => {
    after(async () => {
      await Promise.all([removeKeys(redisPrefix), dropTables(tablePrefix)]);
    });

    for (const kind of ['redis', 'postgresql'] as const) {
      runBrokerSuite(`NATS fan-out + ${kind} history: Broker conformance`, async () => {
        const broker = node(kind);
        return { broker, cleanup: () => broker.close() };
      });
      runPublishGuardSuite(`NATS fan-out + ${kind} history: publish guards`, async () => {
        const broker = node(kind);
        return { broker, cleanup: () => broker.close() };
      });
    }

    describe('subjects', () => {
      it('encode any channel name as one safe token, one to one', () => {
        const names = ['', 'chat:room', 'a.b', 'a*b', 'a>b', 'a b\tc\n', '%', '%41', 'ünï😀', 'news#42', '.', '>'];
        const tokens = names.map(channelToken);
        for (const [i, token] of tokens.entries()) {
          assert.match(token, /^[A-Za-z0-9_\-:@=+,!~#%]+$/, `token of ${JSON.stringify(names[i])}`);
          assert.equal(tokenChannel(token), names[i]);
        }
        assert.equal(new Set(tokens).size, names.length);
        assert.equal(channelToken('chat:room-1'), 'chat:room-1', 'usual names stay readable');
        assert.equal(channelToken('a.b c'), 'a%2Eb%20c');
        const s = new Subjects('bw.prod');
        assert.equal(s.channel('a.b'), 'bw.prod.ch.a%2Eb');
        assert.equal(s.control, 'bw.prod.control');
        assert.equal(s.channelOf(s.channel('x>y')), 'x>y');
        assert.equal(s.channelOf('bw.prod.control'), undefined);
        assert.equal(tokenChannel('a%2'), undefined);
        assert.equal(tokenChannel('a.b'), undefined);
      });

      it('keeps credentials out of the address', () => {
        assert.equal(
          natsAddress('nats://u:secret@10.0.0.1:4222, nats://10.0.0.2:4222'),
          'nats://10.0.0.1:4222,nats://10.0.0.2:4222',
        );
      });
    });

    for (const kind of ['redis', 'postgresql'] as const) {
      it(`two nodes publishing concurrently to one channel deliver each other's publications in offset order (${kind} history)`, async () => {
        const prefix = uniqueNatsPrefix();
        const [a, b] = [node(kind, { prefix }), node(kind, { prefix })];
        const [ra, rb] = [new Recorder(), new Recorder()];
        try {
          await Promise.all([a.start(ra), b.start(rb)]);
          const ch = `concurrent-${kind}-${uniqueNatsPrefix()}`;
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
          // Offset N carries the data of the publish that was told N.
          const dataAt = new Map(ra.pubs.map((d) => [d.pub.offset, d.pub.data]));
          results.forEach((r, i) => assert.equal(dataAt.get(r.offset), asRaw(i)));
          console.log(
            `# ${kind}: ${n} concurrent publishes from 2 nodes delivered in order on both in ${ms.toFixed(0)} ms; ` +
              `order work a ${JSON.stringify(a.orderStats)} b ${JSON.stringify(b.orderStats)}`,
          );
        } finally {
          await Promise.all([a.close(), b.close()]);
        }
      });
    }

    it('fills a publication that never reached NATS from history, after reorder_wait', async () => {
      const prefix = uniqueNatsPrefix();
      const a = node('redis', { prefix, reorderWaitMs: 100 });
      const direct = history('redis'); // the same history, without the fan-out: a hand-over that failed
      const ra = new Recorder();
      try {
        await a.start(ra);
        await direct.start(new Recorder());
        const ch = `gap-${prefix}`;
        await a.subscribe(ch);
        await a.publish(ch, asRaw(1), withHistory());
        await waitFor(() => ra.pubs.length === 1);
        await direct.publish(ch, asRaw(2), withHistory()); // stored, never on NATS
        const t0 = performance.now();
        await a.publish(ch, asRaw(3), withHistory());
        await waitFor(() => ra.pubs.length === 3, 2000);
        const ms = performance.now() - t0;
        assert.deepEqual(
          ra.pubs.map((d) => [d.pub.offset, d.pub.data]),
          [
            [1, asRaw(1)],
            [2, asRaw(2)],
            [3, asRaw(3)],
          ],
        );
        assert.ok(ms >= 90, `held for reorder_wait first (${ms.toFixed(0)} ms)`);
        console.log(`# gap of one publication filled from history after ${ms.toFixed(0)} ms (reorder_wait 100 ms)`);
      } finally {
        await Promise.all([a.close(), direct.close()]);
      }
    });

    it('delivers the first publication after subscribing at once: the position comes from history', async () => {
      const prefix = uniqueNatsPrefix();
      const a = node('redis', { prefix, reorderWaitMs: 300 });
      const ra = new Recorder();
      try {
        await a.start(ra);
        const ch = `late-${prefix}`;
        for (let i = 1; i <= 5; i++) await a.publish(ch, asRaw(i), withHistory()); // before anyone subscribed
        await a.subscribe(ch);
        const t0 = performance.now();
        await a.publish(ch, asRaw(6), withHistory());
        await waitFor(() => ra.pubs.length === 1, 2000);
        const ms = performance.now() - t0;
        assert.deepEqual(
          ra.pubs.map((d) => d.pub.offset),
          [6],
        );
        assert.ok(ms < 250, `not held for reorder_wait (${ms.toFixed(0)} ms)`);
        assert.equal(a.orderStats.waits, 0);
      } finally {
        await a.close();
      }
    });

    it('skips a malformed message on a channel subject, reporting it, and keeps delivering', async () => {
      const prefix = uniqueNatsPrefix();
      const errors: unknown[] = [];
      const a = node('redis', { prefix, onError: (err) => errors.push(err) });
      const ra = new Recorder();
      const nc = await connect({ servers: natsUrl });
      try {
        await a.start(ra);
        const ch = 'odd.name >*';
        await a.subscribe(ch);
        nc.publish(new Subjects(prefix).channel(ch), 'not a bulwark message');
        await nc.flush();
        await a.publish(ch, asRaw('ok'), { historySize: 0, historyTtlMs: 0, historyMetaTtlMs: LONG });
        await waitFor(() => ra.pubs.length === 1 && errors.length === 1);
        assert.equal((errors[0] as { code?: string }).code, 'BW_ERR_NATS_MALFORMED');
        assert.deepEqual(ra.pubs, [{ channel: ch, pub: { offset: 0, data: asRaw('ok') }, epoch: '' }]);
      } finally {
        await Promise.all([a.close(), nc.close()]);
      }
    });

    describeIf('with a private nats-server', natsServerMissing(), () => {
      it('NATS down at start: start fails fast naming broker.nats.url; then starts once NATS is there', async () => {
        const server = await NatsServer.start();
        await server.kill();
        const down = node('redis', { url: server.url });
        const t0 = performance.now();
        await assert.rejects(down.start(new Recorder()), (err: unknown) => {
          assert.ok(err instanceof EngineUnavailableError);
          assert.match(String((err.cause as Error).message), /broker\.nats\.url/);
          return true;
        });
        assert.ok(performance.now() - t0 < 2000, 'failed within about dial_timeout');
        assert.equal(down.isReady(), false);
        await server.resume();
        const up = node('redis', { url: server.url });
        try {
          await up.start(new Recorder());
          assert.equal(up.isReady(), true);
        } finally {
          await Promise.all([up.close(), down.close(), server.kill()]);
        }
      });

      it('NATS lost while running: not ready, publishes refused unstored; back: ready, and the gap is filled from history', async () => {
        const server = await NatsServer.start();
        const prefix = uniqueNatsPrefix();
        const states: boolean[] = [];
        const a = node('postgresql', { url: server.url, prefix, onStateChange: (up) => states.push(up) });
        const b = node('postgresql', { url: server.url, prefix });
        const ra = new Recorder();
        const direct = history('postgresql');
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
            assert.match(String((err.cause as Error).message), /broker\.nats\.url/);
            return true;
          });
          assert.ok(performance.now() - t0 < 100, 'refused at once');
          const top = await b.history(ch, { limit: 0, metaTtlMs: LONG });
          assert.equal(top.offset, 1, 'the refused publish was not stored');
          await direct.publish(ch, asRaw(2), withHistory()); // published elsewhere during the outage
          await server.resume();
          await waitFor(() => a.isReady() && b.isReady(), 5000);
          assert.deepEqual(states, [false, true]);
          await b.publish(ch, asRaw(3), withHistory());
          await waitFor(() => ra.pubs.length === 3, 3000);
          assert.deepEqual(
            ra.pubs.map((d) => d.pub.data),
            [1, 2, 3].map((i) => asRaw(i)),
          );
        } finally {
          await Promise.all([a.close(), b.close(), direct.close(), server.kill()]);
        }
      });
    });

    it('config: broker needs a shared engine, and a prefix of subject tokens', () => {
      const base = { http_api: { insecure: true }, client: { insecure: true } };
      assert.throws(
        () => loadConfig({ object: { ...base, broker: { enabled: true } } }),
        /broker\.enabled needs engine\.type redis or postgresql/,
      );
      assert.throws(
        () =>
          loadConfig({
            object: { ...base, engine: { type: 'redis' }, broker: { enabled: true, nats: { prefix: 'a.*' } } },
          }),
        /prefix must be NATS subject tokens/,
      );
      const cfg = loadConfig({
        object: { ...base, engine: { type: 'redis' }, broker: { enabled: true, type: 'nats' } },
      });
      assert.equal(cfg.broker.nats.url, 'nats://127.0.0.1:4222');
      assert.equal(cfg.broker.nats.reorder_wait, 50);
    });
  },
  [redisAvailable(), pgAvailable()],
);
