/**
 * The Redis map broker: the MapBroker conformance suite on a real Redis (real clock, a fast
 * cleanup loop), then what is specific to Redis: two brokers (two nodes) on one Redis deliver
 * each other's changes and race fairly, key expiry run by several nodes removes each key once,
 * and a malformed pub/sub message is reported without crashing. Needs Redis at
 * BULWARK_TEST_REDIS_URL (skipped without it, unless BULWARK_REQUIRE_SERVICES=1).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisMapBroker, type RedisMapBrokerOptions } from '../src/engine/redis/map-broker-redis.js';
import { mapPubsubChannel } from '../src/engine/redis/map-scripts.js';
import { asRaw } from '../src/protocol/types.js';
import { Recorder, sleep, waitFor } from './conformance/broker.case.js';
import { del, readAll, runMapBrokerSuite, set } from './conformance/map.case.js';
import { describeRedis, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';

/** Every key this run writes starts with this; removed at the end. */
const prefix = uniquePrefix();

const broker = (over: RedisMapBrokerOptions = {}): RedisMapBroker =>
  new RedisMapBroker({ addresses: [redisUrl], prefix, cleanupIntervalMs: 25, ...over });

await describeRedis('Redis map broker', () => {
  after(async () => {
    await removeKeys(prefix);
  });

  runMapBrokerSuite('RedisMapBroker conformance', async () => {
    const map = broker();
    return { map, cleanup: () => map.close() };
  });

  describe('several nodes on one Redis', () => {
    const started: RedisMapBroker[] = [];
    const node = async (rec: Recorder, over: RedisMapBrokerOptions = {}): Promise<RedisMapBroker> => {
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
      const channel = `two-${uniquePrefix()}`;
      await Promise.all([a.subscribe(channel), b.subscribe(channel)]);
      for (let i = 1; i <= 10; i++) await (i % 2 === 0 ? a : b).publish(channel, `k${i % 3}`, set(i));
      await (await node(new Recorder())).remove(channel, 'k0', del());
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
      const channel = `race-${uniquePrefix()}`;
      for (let slot = 0; slot < 20; slot++) {
        const results = await Promise.all(
          [a, b, a, b].map((n, i) => n.publish(channel, `slot${slot}`, set(i, { keyMode: 'if_new' }))),
        );
        assert.equal(results.filter((r) => r.suppressed === undefined).length, 1);
      }
      assert.deepEqual(await a.stats(channel), { numKeys: 20 });
    });

    it('removes an expired key once, whichever nodes run the cleanup', async () => {
      const recs = [new Recorder(), new Recorder(), new Recorder()];
      const nodes = await Promise.all(recs.map((r) => node(r, { cleanupIntervalMs: 5 })));
      const channel = `expire-${uniquePrefix()}`;
      await Promise.all(nodes.map((n) => n.subscribe(channel)));
      for (let i = 0; i < 30; i++) await nodes[i % 3]!.publish(channel, `k${i}`, set(i, { keyTtlMs: 100 }));
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
      assert.deepEqual((await readAll(nodes[0]!, channel, 100)).entries, []);
    });

    it('reports a malformed pub/sub message and keeps delivering', async () => {
      const errors: unknown[] = [];
      const rec = new Recorder();
      const n = await node(rec, { onError: (err) => errors.push(err) });
      const channel = `bad-${uniquePrefix()}`;
      await n.subscribe(channel);
      const raw = new Redis(redisUrl);
      try {
        for (const bad of [
          'garbage',
          'p\n1\n',
          'p\nx\ne\n\n1',
          'p\n1\ne\n{"key":5}\n1',
          'j\n{"user":"u","client":"c"}',
        ]) {
          await raw.publish(mapPubsubChannel(prefix, channel), bad);
        }
      } finally {
        raw.disconnect();
      }
      await n.publish(channel, 'ok', set('fine'));
      await waitFor(() => rec.pubs.length >= 1);
      assert.deepEqual(
        rec.pubs.map((d) => [d.pub.key, d.pub.data]),
        [['ok', asRaw('fine')]],
      );
      assert.equal(errors.length, 5);
    });
  });
});
