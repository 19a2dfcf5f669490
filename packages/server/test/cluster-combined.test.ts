/**
 * Real `bulwark start` processes on engines combined (docs/ENGINES.md): history on PostgreSQL
 * (`engine.type` postgresql), fan-out over Redis pub/sub (`broker.type` redis) and presence in
 * Redis (`presence_manager.type` redis). Three processes act as one: node info travels on the
 * fan-out's control channel, an API publish on one reaches `centrifuge` clients on all in
 * order, publishes through all three at once still arrive in offset order, presence is shared
 * and lives in Redis, not in PostgreSQL; a process killed with SIGKILL and started again lets a
 * client recover what it missed. A process whose fan-out Redis is unreachable stays up, not
 * ready, naming broker.redis. Runs the built CLI; needs Redis and PostgreSQL (skipped without
 * them, unless BULWARK_REQUIRE_SERVICES=1).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { it } from 'node:test';
import type { Centrifuge } from 'centrifuge';
import { Redis } from 'ioredis';
import { signConnectionToken } from '../src/auth/token-signer.js';
import type { NodeInfo } from '../src/cluster/control.js';
import { dropTables, pgAvailable, pgUrl, sql, uniqueTablePrefix } from './helpers/postgres.js';
import { callApi, startBulwark, writeConfigFile, type BulwarkProcess } from './helpers/process.js';
import { describeIf, freePort, redisAvailable, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';
import { baseNamespaces, connected, waitUntil } from './helpers/server.js';
import { range, track } from './helpers/tracked.js';

const secret = randomBytes(24).toString('hex');
const apiKey = randomBytes(24).toString('hex');

/** config writes a config: history on PostgreSQL, fan-out on Redis at `fanoutUrl`, presence on Redis. */
function config(tablePrefix: string, redisPrefix: string, fanoutUrl = redisUrl) {
  return writeConfigFile({
    http_server: { address: '127.0.0.1' },
    log: { level: 'warn' },
    client: { token: { hmac_secret_key: secret } },
    http_api: { key: apiKey },
    engine: { type: 'postgresql', postgresql: { dsn: pgUrl, table_prefix: tablePrefix, poll_interval: '200ms' } },
    broker: {
      enabled: true,
      type: 'redis',
      redis: { address: [fanoutUrl], prefix: redisPrefix, connect_timeout: '300ms', reconnect_max_delay: '200ms' },
    },
    presence_manager: { enabled: true, type: 'redis', redis: { address: [redisUrl], prefix: redisPrefix } },
    node: { info_interval: '200ms' },
    drain: { window: '0s' },
    channel: { namespaces: baseNamespaces.filter((ns) => ns.name === 'chat') },
  });
}

const missing = (await Promise.all([redisAvailable(), pgAvailable()])).filter((r) => r !== undefined);

describeIf(
  'bulwark processes on PostgreSQL history + Redis fan-out + Redis presence',
  missing.length === 0 ? undefined : missing.join('; '),
  () => {
    it('3 processes act as one; presence lives in Redis; a node killed with SIGKILL restarts and a client recovers', async (t) => {
      const tablePrefix = uniqueTablePrefix();
      const redisPrefix = uniquePrefix();
      t.after(() => Promise.all([dropTables(tablePrefix), removeKeys(redisPrefix)]));
      const cfg = config(tablePrefix, redisPrefix);
      t.after(() => cfg.remove());
      const start = () => startBulwark(cfg.path, {}, t);
      const client = async (proc: BulwarkProcess, user: string): Promise<Centrifuge> => {
        const c = await connected(proc.url, { token: await signConnectionToken({ secret, user }) });
        t.after(() => c.disconnect());
        return c;
      };
      const api = (proc: BulwarkProcess, method: string, params: object) =>
        callApi(proc.httpUrl, apiKey, method, params);
      const publish = async (proc: BulwarkProcess, n: number): Promise<void> => {
        const res = await api(proc, 'publish', { channel: ch, data: { n } });
        assert.equal(res.body.result?.offset, n, JSON.stringify(res.body));
      };
      let seen = 0;
      const ch = 'chat:board';

      const [p1, p2, p3] = await Promise.all([start(), start(), start()]);
      // Node info is a control message: three nodes in info means control travels over the fan-out.
      await waitUntil(
        () => {
          void api(p1, 'info', {}).then((r) => (seen = ((r.body?.result?.nodes ?? []) as NodeInfo[]).length));
          return seen === 3;
        },
        5000,
        '3 nodes in info',
      );
      const clients = await Promise.all([p1, p2, p3].map((p, i) => client(p, `user${i + 1}`)));
      const subs = await Promise.all(clients.map((c) => track(c, ch)));
      const t0 = performance.now();
      for (let n = 1; n <= 5; n++) await publish(p2, n);
      for (const [i, s] of subs.entries()) {
        await waitUntil(() => s.received.length >= 5, 3000, `5 publications on process ${i + 1}`);
        assert.deepEqual(s.received, range(1, 5), `process ${i + 1}: every publication once, in order`);
      }
      console.log(`# 5 API publishes on one process received on all 3 in ${(performance.now() - t0).toFixed(0)} ms`);
      await Promise.all(
        [6, 7, 8, 9, 10, 11].map((n, i) => api([p1, p2, p3][i % 3]!, 'publish', { channel: ch, data: { n } })),
      );
      for (const [i, s] of subs.entries()) {
        await waitUntil(() => s.received.length >= 11, 3000, `11 publications on process ${i + 1}`);
        assert.equal(s.received.length, 11, `process ${i + 1}: each once`);
      }
      for (const [i, s] of subs.entries()) assert.deepEqual(s.offsets, range(1, 11), `process ${i + 1}: offset order`);

      // Presence is shared by the three, and kept by the presence manager, not by the engine.
      const stats = await api(p3, 'presence_stats', { channel: ch });
      assert.deepEqual(stats.body.result, { num_clients: 3, num_users: 3 }, 'presence is shared');
      const rows = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${tablePrefix}_presence`);
      assert.equal(rows[0]!.n, 0, 'no presence in PostgreSQL');
      const redis = new Redis(redisUrl);
      try {
        assert.equal(await redis.hlen(`${redisPrefix}.presence.data.{${ch}}`), 3, 'presence in Redis');
      } finally {
        redis.disconnect();
      }

      // Process 3 crashes; its client is cut off and misses 12..14.
      const position = subs[2]!.subscribed[0]?.streamPosition;
      assert.ok(position?.epoch);
      await p3.kill();
      clients[2]!.disconnect();
      for (let n = 12; n <= 14; n++) await publish(p1, n);
      const p3b = await start();
      const back = await client(p3b, 'user3');
      const recovered = await track(back, ch, { since: { offset: 11, epoch: position.epoch } });
      assert.equal(recovered.subscribed[0]!.wasRecovering, true);
      assert.equal(recovered.subscribed[0]!.recovered, true);
      await waitUntil(() => recovered.received.length >= 3, 3000, 'the missed 3');
      await publish(p2, 15);
      await waitUntil(() => recovered.received.length >= 4, 3000, 'a live one through the restarted node');
      assert.deepEqual(recovered.received, range(12, 15));
    });

    it('fan-out Redis unreachable at start: the process stays up, not ready, naming broker.redis', async (t) => {
      const tablePrefix = uniqueTablePrefix();
      t.after(() => dropTables(tablePrefix));
      const nowhere = `redis://127.0.0.1:${await freePort()}`;
      const cfg = config(tablePrefix, uniquePrefix(), nowhere);
      t.after(() => cfg.remove());
      const proc = await startBulwark(cfg.path, {}, t);
      assert.equal((await fetch(`${proc.httpUrl}/ready`)).status, 503);
      await waitUntil(
        () => /Redis runs at redis:\/\/127\.0\.0\.1:\d+ and broker\.redis\.\* is right/.test(proc.stdout + proc.stderr),
        3000,
        'an error naming broker.redis',
      );
      assert.doesNotMatch(proc.stdout + proc.stderr, /engine\.redis|engine\.postgresql\.\* is right/);
    });
  },
);
