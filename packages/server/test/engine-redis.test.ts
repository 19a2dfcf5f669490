/**
 * Tests of the Redis engine: the shared conformance suites on a real Redis (real clock), then
 * what is specific to Redis: several nodes on one Redis, malformed pub/sub messages, failing
 * fast while Redis is down and resubscribing when it is back, and a Redis Cluster (sharded
 * pub/sub). Needs Redis at BULWARK_TEST_REDIS_URL (skipped without it, unless
 * BULWARK_REQUIRE_SERVICES=1); the restart and cluster suites run private `redis-server`s.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { MemoryBroker } from '../src/engine/broker-memory.js';
import type { BrokerEventHandler, HistoryQuery, PublishOptions } from '../src/engine/broker.js';
import { RedisBroker } from '../src/engine/redis/broker-redis.js';
import type { RedisBrokerOptions } from '../src/engine/redis/broker-redis.js';
import { EngineOutcomeUnknownError, EngineUnavailableError } from '../src/engine/redis/errors.js';
import { resolveRedisOptions } from '../src/config/redis-options.js';
import { RedisPresenceManager } from '../src/engine/redis/presence-redis.js';
import type { ClientInfo, Publication, RawJSON } from '../src/protocol/types.js';
import { asRaw } from '../src/protocol/types.js';
import { runBrokerSuite, sleep, waitFor } from './conformance/broker.case.js';
import { runPresenceSuite } from './conformance/presence.case.js';
import { runPublishGuardSuite } from './conformance/publish-guards.case.js';
import {
  describeIf,
  describeRedis,
  freePort,
  RedisServer,
  redisServerMissing,
  RedisTestCluster,
  redisUrl,
  removeKeys,
  uniquePrefix,
} from './helpers/redis.js';

/** Every key this run writes to the shared Redis starts with this; removed at the end. */
const prefix = uniquePrefix();

const hist = (over: Partial<PublishOptions> = {}): PublishOptions => ({
  historySize: 100,
  historyTtlMs: 60_000,
  historyMetaTtlMs: 60_000,
  ...over,
});

/** EventLog records every delivery as one line, so tests can check the order across kinds. */
class EventLog implements BrokerEventHandler {
  readonly lines: string[] = [];
  readonly pubs: { channel: string; pub: Publication; epoch: string }[] = [];

  onPublication(channel: string, pub: Publication, epoch: string): void {
    this.pubs.push({ channel, pub, epoch });
    this.lines.push(`pub ${channel} ${pub.offset} ${pub.data}`);
  }
  onJoin(channel: string, info: ClientInfo): void {
    this.lines.push(`join ${channel} ${info.client}`);
  }
  onLeave(channel: string, info: ClientInfo): void {
    this.lines.push(`leave ${channel} ${info.client}`);
  }
  onControl(data: RawJSON): void {
    this.lines.push(`control ${data}`);
  }
}

const isUnavailable = (err: unknown): boolean => err instanceof EngineUnavailableError && err.temporary;

await describeRedis('Redis engine', () => {
  after(async () => {
    await removeKeys(prefix);
  });

  runBrokerSuite('RedisBroker conformance', async () => {
    const broker = new RedisBroker({ addresses: [redisUrl], prefix });
    return { broker, cleanup: () => broker.close() };
  });

  runPublishGuardSuite('RedisBroker publish guards', async () => {
    const broker = new RedisBroker({ addresses: [redisUrl], prefix });
    return { broker, cleanup: () => broker.close() };
  });

  runPresenceSuite('RedisPresenceManager conformance', async () => {
    const presence = new RedisPresenceManager({ addresses: [redisUrl], prefix });
    await presence.start();
    return { presence, cleanup: () => presence.close() };
  });

  it('answers random history queries exactly as the memory broker', async () => {
    const rand = seeded(42);
    const redis = new RedisBroker({ addresses: [redisUrl], prefix });
    const memory = new MemoryBroker({ sweepIntervalMs: 0 });
    try {
      await redis.start(new EventLog());
      await memory.start(new EventLog());
      for (let round = 0; round < 6; round++) {
        const channel = `model-${round}`;
        const size = 1 + Math.floor(rand() * 30);
        const publishes = Math.floor(rand() * 120);
        let epochs = { redis: '', memory: '' };
        for (let i = 1; i <= publishes; i++) {
          const opts = hist({ historySize: rand() < 0.1 ? 1 + Math.floor(rand() * 30) : size });
          const [r, m] = await Promise.all([
            redis.publish(channel, asRaw(i), opts),
            memory.publish(channel, asRaw(i), opts),
          ]);
          assert.equal(r.offset, m.offset);
          epochs = { redis: r.epoch, memory: m.epoch };
          if (rand() < 0.03) await Promise.all([redis.removeHistory(channel), memory.removeHistory(channel)]);
        }
        for (let q = 0; q < 40; q++) {
          const query: HistoryQuery = {
            limit: [-1, 0, 1, 2, 5, 1000][Math.floor(rand() * 6)]!,
            reverse: rand() < 0.5,
            metaTtlMs: 60_000,
          };
          const since = rand() < 0.7 ? Math.floor(rand() * (publishes + 4)) - 1 : undefined;
          const anyEpoch = rand() < 0.2;
          const [r, m] = await Promise.all(
            (['redis', 'memory'] as const).map((engine) =>
              (engine === 'redis' ? redis : memory).history(channel, {
                ...query,
                ...(since === undefined ? {} : { since: { offset: since, epoch: anyEpoch ? '' : epochs[engine] } }),
              }),
            ),
          );
          const what = JSON.stringify({ round, publishes, query, since });
          assert.deepEqual(r!.publications, m!.publications, what);
          assert.equal(r!.offset, m!.offset, what);
        }
      }
    } finally {
      await Promise.all([redis.close(), memory.close()]);
    }
  });

  describe('RedisBroker on two nodes', () => {
    const nodes: RedisBroker[] = [];
    const node = (opts: RedisBrokerOptions = {}): RedisBroker => {
      const broker = new RedisBroker({ addresses: [redisUrl], prefix, ...opts });
      nodes.push(broker);
      return broker;
    };
    after(async () => {
      await Promise.all(nodes.map((b) => b.close()));
    });

    it('delivers publications, joins and leaves of one node to the other, in publish order', async () => {
      const a = node();
      const b = node();
      const log = new EventLog();
      await a.start(log);
      await b.start(new EventLog());
      await a.subscribe('two-nodes');
      const info = { user: 'u1', client: 'c1' };
      await b.publish('two-nodes', asRaw('first'), hist());
      await b.publishJoin('two-nodes', info);
      const rest = await Promise.all(Array.from({ length: 50 }, (_, i) => b.publish('two-nodes', asRaw(i), hist())));
      await b.publishLeave('two-nodes', info);
      await waitFor(() => log.lines.length >= 53);
      const order = rest.map((p) => p.offset).sort((x, y) => x - y);
      assert.deepEqual(log.lines, [
        'pub two-nodes 1 "first"',
        'join two-nodes c1',
        ...order.map((offset) => `pub two-nodes ${offset} ${rest.findIndex((p) => p.offset === offset)}`),
        'leave two-nodes c1',
      ]);
      const epoch = rest[0]!.epoch;
      assert.ok(log.pubs.every((d) => d.epoch === epoch));
    });

    it('sends control messages to every node, the sender included', async () => {
      const a = node();
      const b = node();
      const logA = new EventLog();
      const logB = new EventLog();
      await a.start(logA);
      await b.start(logB);
      await a.publishControl(asRaw({ op: 'disconnect', user: 'u1' }));
      await waitFor(() => logA.lines.length >= 1 && logB.lines.length >= 1);
      assert.deepEqual(logA.lines, ['control {"op":"disconnect","user":"u1"}']);
      assert.deepEqual(logB.lines, logA.lines);
    });

    it('skips and reports malformed pub/sub messages, and keeps delivering', async () => {
      const errors: unknown[] = [];
      const a = node({ onError: (err) => void errors.push(err) });
      const log = new EventLog();
      await a.start(log);
      await a.subscribe('garbled');
      const raw = new Redis(redisUrl);
      try {
        const name = `${prefix}.pub.{garbled}`;
        for (const bad of ['', 'x\nwhat', 'p\n1\nepoch', 'p\nNaN\ne\n\n1', 'p\n1\ne\n{"info":3}\n1', 'j\n{"user":1}']) {
          await raw.publish(name, bad);
        }
      } finally {
        raw.disconnect();
      }
      await a.publish('garbled', asRaw('fine'), hist());
      await waitFor(() => log.lines.length >= 1);
      assert.deepEqual(log.lines, ['pub garbled 1 "fine"']);
      assert.equal(errors.length, 6);
      assert.ok(errors.every((e) => e instanceof Error && e.name === 'MalformedMessageError'));
    });

    it('reports handler exceptions without losing later deliveries', async () => {
      const errors: unknown[] = [];
      const a = node({ onError: (err) => void errors.push(err) });
      const seen: number[] = [];
      await a.start({
        onPublication: (_c, pub) => {
          seen.push(pub.offset);
          if (pub.offset === 1) throw new Error('boom');
        },
        onJoin() {},
        onLeave() {},
        onControl() {},
      });
      await a.subscribe('throwing');
      await a.publish('throwing', asRaw(1), hist());
      await a.publish('throwing', asRaw(2), hist());
      await waitFor(() => seen.length >= 2);
      assert.deepEqual(seen, [1, 2]);
      assert.equal(errors.length, 1);
    });
  });

  describe('RedisBroker start', () => {
    it('rejects promptly with EngineUnavailableError when Redis is unreachable', async () => {
      const port = await freePort();
      const broker = new RedisBroker({ addresses: [`redis://127.0.0.1:${port}`], prefix, connectTimeoutMs: 500 });
      const t0 = performance.now();
      await assert.rejects(broker.start(new EventLog()), (err) => {
        assert.ok(isUnavailable(err));
        assert.match((err as Error).message, new RegExp(`redis://127\\.0\\.0\\.1:${port}`));
        return true;
      });
      assert.ok(performance.now() - t0 < 2000, 'start gave up within the connect timeout');
      assert.equal(broker.isReady(), false);
      await broker.close();
    });

    it('names no credentials in its errors', async () => {
      const port = await freePort();
      const broker = new RedisBroker({ addresses: [`redis://bob:s3cret@127.0.0.1:${port}`], prefix });
      await assert.rejects(broker.start(new EventLog()), (err) => {
        assert.ok(isUnavailable(err));
        assert.doesNotMatch((err as Error).message, /s3cret|bob/);
        return true;
      });
      await broker.close();
    });
  });
});

describe('Redis engine options', () => {
  it('fills in defaults and reads user, password, db and TLS from the URL', () => {
    const o = resolveRedisOptions({ addresses: ['rediss://al%40ce:p%3Ass@redis.local:6380/2'] });
    assert.equal(o.mode, 'standalone');
    assert.deepEqual(o.hosts, [{ host: 'redis.local', port: 6380 }]);
    assert.deepEqual([o.user, o.password, o.db, o.tls, o.prefix], ['al@ce', 'p:ss', 2, true, 'bulwark']);
    assert.equal(o.description, 'rediss://redis.local:6380');
    assert.deepEqual(resolveRedisOptions().hosts, [{ host: '127.0.0.1', port: 6379 }]);
  });

  it('rejects options that cannot work, naming them', () => {
    const bad: [Parameters<typeof resolveRedisOptions>[0], RegExp][] = [
      [{ addresses: ['redis://a:1'], cluster: { addresses: ['b:2'] } }, /addresses and cluster/],
      [{ addresses: ['redis://a:1', 'redis://b:2'] }, /exactly one/],
      [{ addresses: ['http://a:1'] }, /redis:\/\//],
      [{ prefix: 'a{b' }, /prefix/],
      [{ cluster: { addresses: ['a:1'] }, db: 1 }, /db must be 0/],
      [{ sentinel: { masterName: 'm', addresses: [] } }, /sentinel\.addresses/],
      [{ commandTimeoutMs: 0 }, /commandTimeoutMs/],
    ];
    for (const [opts, message] of bad) assert.throws(() => resolveRedisOptions(opts), { name: 'TypeError', message });
  });
});

describeIf('Redis engine when Redis restarts', redisServerMissing(), () => {
  let server: RedisServer | undefined;
  const closers: (() => Promise<void>)[] = [];
  before(async () => {
    server = await RedisServer.start();
  });
  after(async () => {
    await Promise.all(closers.map((close) => close()));
    await server?.destroy();
  });

  it('fails fast while Redis is down, then resubscribes and reports ready again', async () => {
    const srv = server!;
    const states: boolean[] = [];
    const errors: unknown[] = [];
    const opts = { addresses: [srv.url], prefix, onError: (err: unknown) => void errors.push(err) };
    const a = new RedisBroker({ ...opts, onStateChange: (up) => void states.push(up) });
    const b = new RedisBroker(opts);
    const presence = new RedisPresenceManager(opts);
    closers.push(
      () => a.close(),
      () => b.close(),
      () => presence.close(),
    );
    const log = new EventLog();
    await a.start(log);
    await b.start(new EventLog());
    await presence.start();
    await a.subscribe('kept');
    await a.subscribe('dropped');
    assert.equal(a.isReady(), true);
    assert.deepEqual(states, [true]);
    await b.publish('kept', asRaw('before'), hist());
    await waitFor(() => log.lines.length >= 1);

    await srv.kill();
    await waitFor(() => !a.isReady(), 2000);
    assert.deepEqual(states, [true, false]);
    const t0 = performance.now();
    await assert.rejects(a.publish('kept', asRaw('lost'), hist()), isUnavailable);
    await assert.rejects(a.publish('kept', asRaw('lost'), hist({ historySize: 0 })), isUnavailable);
    await assert.rejects(a.history('kept', { limit: -1, metaTtlMs: 1000 }), isUnavailable);
    await assert.rejects(a.publishControl(asRaw(1)), isUnavailable);
    await assert.rejects(a.subscribe('new'), isUnavailable);
    await assert.rejects(presence.addPresence('kept', { user: 'u', client: 'c' }, 1000), isUnavailable);
    await assert.rejects(presence.presenceStats('kept'), isUnavailable);
    await a.unsubscribe('dropped'); // never fails: the subscription died with the connection
    assert.ok(performance.now() - t0 < 3000, `calls failed within 3 s (took ${performance.now() - t0} ms)`);
    assert.equal(presence.isReady(), false);
    // Stay down across several reconnect attempts (100, 300, 700 ms): each connection reports
    // its first error of the outage, not one per attempt.
    await sleep(800);
    assert.ok(errors.length >= 1 && errors.length <= 5, `one report per connection, got ${errors.length}`);
    assert.ok(errors.every(isUnavailable), 'connection errors are reported as EngineUnavailableError');

    await srv.resume();
    await waitFor(() => a.isReady() && b.isReady() && presence.isReady(), 8000);
    assert.deepEqual(states, [true, false, true]);
    const raw = new Redis(srv.url);
    try {
      const numsub = await raw.pubsub('NUMSUB', `${prefix}.pub.{kept}`, `${prefix}.pub.{dropped}`, `${prefix}.control`);
      assert.deepEqual(numsub, [`${prefix}.pub.{kept}`, 1, `${prefix}.pub.{dropped}`, 0, `${prefix}.control`, 2]);
    } finally {
      raw.disconnect();
    }
    // Redis came back empty (no persistence): a new epoch, offsets from 1.
    const pos = await b.publish('kept', asRaw('after'), hist());
    assert.equal(pos.offset, 1);
    await waitFor(() => log.lines.length >= 2);
    assert.deepEqual(log.lines, ['pub kept 1 "before"', 'pub kept 1 "after"']);
    await presence.addPresence('kept', { user: 'u', client: 'c' }, 1000);
    assert.deepEqual(await presence.presenceStats('kept'), { numClients: 1, numUsers: 1 });
  });

  it('times out a command Redis does not answer: a publish with its outcome unknown, a read temporary', async () => {
    const srv = server!;
    const broker = new RedisBroker({ addresses: [srv.url], prefix, commandTimeoutMs: 200, onError: () => {} });
    closers.push(() => broker.close());
    await broker.start(new EventLog());
    const raw = new Redis(srv.url);
    try {
      await raw.client('PAUSE', 1500, 'WRITE'); // the server holds write commands unanswered
      const t0 = performance.now();
      // Sent, unanswered: Redis may run it when the pause ends. Not safe to retry blindly.
      await assert.rejects(
        broker.publish('paused', asRaw(1), hist()),
        (err: unknown) => err instanceof EngineOutcomeUnknownError && !err.temporary,
      );
      await assert.rejects(broker.history('paused', { limit: 1, reverse: false, metaTtlMs: 0 }), isUnavailable);
      assert.ok(performance.now() - t0 < 1000);
      await raw.client('UNPAUSE');
    } finally {
      raw.disconnect();
    }
  });
});

describeIf('Redis engine through Sentinel', redisServerMissing(), () => {
  let master: RedisServer | undefined;
  let sentinel: RedisServer | undefined;
  before(async () => {
    master = await RedisServer.start();
    sentinel = await RedisServer.start({
      config: `sentinel monitor bw-master 127.0.0.1 ${master.port} 1\n`,
      args: ['--sentinel'],
    });
  });
  after(async () => {
    await sentinel?.destroy();
    await master?.destroy();
  });

  it('finds the master through the sentinel and works as on a standalone Redis', async () => {
    const opts = { sentinel: { masterName: 'bw-master', addresses: [`127.0.0.1:${sentinel!.port}`] }, prefix };
    const broker = new RedisBroker(opts);
    const presence = new RedisPresenceManager(opts);
    try {
      const log = new EventLog();
      await broker.start(log);
      await presence.start();
      await broker.subscribe('via-sentinel');
      await broker.publish('via-sentinel', asRaw(1), hist());
      await waitFor(() => log.lines.length >= 1);
      assert.deepEqual(log.lines, ['pub via-sentinel 1 1']);
      await presence.addPresence('via-sentinel', { user: 'u', client: 'c' }, 1000);
      assert.deepEqual(await presence.presenceStats('via-sentinel'), { numClients: 1, numUsers: 1 });
      const raw = new Redis(master!.url);
      try {
        assert.equal(await raw.exists(`${prefix}.stream.{via-sentinel}`), 1, 'the data went to the master');
      } finally {
        raw.disconnect();
      }
    } finally {
      await Promise.all([broker.close(), presence.close()]);
    }
  });

  it('rejects start promptly when no sentinel answers', async () => {
    const port = await freePort();
    const broker = new RedisBroker({ sentinel: { masterName: 'bw-master', addresses: [`127.0.0.1:${port}`] }, prefix });
    const t0 = performance.now();
    await assert.rejects(broker.start(new EventLog()), isUnavailable);
    assert.ok(performance.now() - t0 < 3000);
    await broker.close();
  });
});

describeIf('Redis engine on a Redis Cluster', redisServerMissing(), () => {
  let cluster: RedisTestCluster | undefined;
  before(async () => {
    cluster = await RedisTestCluster.start(3);
  });
  after(async () => {
    await cluster?.destroy();
  });
  const clusterOpts = () => ({ cluster: { addresses: cluster!.addresses }, prefix, onError: () => {} });

  runBrokerSuite('RedisBroker conformance (cluster)', async () => {
    const broker = new RedisBroker(clusterOpts());
    return { broker, cleanup: () => broker.close() };
  });

  runPublishGuardSuite('RedisBroker publish guards (cluster)', async () => {
    const broker = new RedisBroker(clusterOpts());
    return { broker, cleanup: () => broker.close() };
  });

  runPresenceSuite('RedisPresenceManager conformance (cluster)', async () => {
    const presence = new RedisPresenceManager(clusterOpts());
    await presence.start();
    return { presence, cleanup: () => presence.close() };
  });

  it('keeps all keys of a channel in one slot, whatever braces its name has', async () => {
    const broker = new RedisBroker(clusterOpts());
    try {
      await broker.start(new EventLog());
      await broker.subscribe('odd}{name');
      const pos = await broker.publish('odd}{name', asRaw(1), hist());
      const h = await broker.history('odd}{name', {
        since: { offset: 0, epoch: pos.epoch },
        limit: -1,
        metaTtlMs: 1000,
      });
      assert.deepEqual(h.publications, [{ offset: 1, data: asRaw(1) }]);
    } finally {
      await broker.close();
    }
  });

  it('subscribes sharded channels again after their shard restarts', async () => {
    const a = new RedisBroker(clusterOpts());
    const b = new RedisBroker(clusterOpts());
    const log = new EventLog();
    try {
      await a.start(log);
      await b.start(new EventLog());
      const channels = ['s1', 's2', 's3', 's4', 's5', 's6'];
      for (const c of channels) await a.subscribe(c);
      await b.publish('s1', asRaw('before'), hist());
      await waitFor(() => log.lines.length >= 1);

      // Restart the shard that owns s1: its sharded subscription dies with it.
      const raw = new Cluster(
        cluster!.addresses.map((addr) => ({ host: '127.0.0.1', port: Number(addr.split(':')[1]) })),
      );
      const slot = (await raw.cluster('KEYSLOT', `${prefix}.pub.{s1}`)) as number;
      const shards = (await raw.cluster('SHARDS')) as unknown[];
      raw.disconnect();
      const owner = cluster!.nodes.find((n) => ownsSlot(shards, n.port, slot))!;
      await owner.kill();
      await sleep(300);
      await owner.resume();
      await cluster!.waitHealthy();

      // Publish until one arrives: the shard may refuse writes for a moment after its restart.
      const deadline = Date.now() + 10_000;
      while (!log.lines.some((l) => l.endsWith('"after"'))) {
        assert.ok(Date.now() < deadline, 'no publication reached the resubscribed node within 10 s');
        await b.publish('s1', asRaw('after'), hist()).catch(() => undefined);
        await sleep(100);
      }
      for (const c of channels.slice(1)) await b.publish(c, asRaw(c), hist());
      await waitFor(() => channels.slice(1).every((c) => log.lines.some((l) => l.startsWith(`pub ${c} `))));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

/** seeded returns a small deterministic PRNG (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** ownsSlot tells from a CLUSTER SHARDS reply whether the node on `port` serves `slot`. */
function ownsSlot(shards: unknown[], port: number, slot: number): boolean {
  for (const shard of shards) {
    const fields = shard as unknown[];
    const slots = fields[fields.indexOf('slots') + 1] as number[];
    const nodes = fields[fields.indexOf('nodes') + 1] as unknown[][];
    const hasPort = nodes.some((n) => n[n.indexOf('port') + 1] === port);
    for (let i = 0; i + 1 < slots.length; i += 2)
      if (hasPort && slot >= slots[i]! && slot <= slots[i + 1]!) return true;
  }
  return false;
}
