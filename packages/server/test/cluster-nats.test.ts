/**
 * Real `bulwark start` processes with history on PostgreSQL and fan-out over NATS
 * (`broker.enabled`, `broker.type` nats): three processes act as one (an API publish on one
 * reaches clients on all, in order; node info travels on the NATS control subject), a process
 * killed with SIGKILL and started again lets a client recover what it missed; and a process
 * whose NATS is down at start stays up but not ready, naming broker.nats.url, until NATS comes.
 * Runs the built CLI; needs NATS, PostgreSQL (skipped without them, unless
 * BULWARK_REQUIRE_SERVICES=1) and, for the outage, `nats-server`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { it } from 'node:test';
import type { Centrifuge } from 'centrifuge';
import { signConnectionToken } from '../src/auth/token-signer.js';
import type { NodeInfo } from '../src/cluster/control.js';
import { describeNats, NatsServer, natsServerMissing, natsUrl, uniqueNatsPrefix } from './helpers/nats.js';
import { dropTables, pgAvailable, pgUrl, uniqueTablePrefix } from './helpers/postgres.js';
import { callApi, startBulwark, writeConfigFile, type BulwarkProcess } from './helpers/process.js';
import { baseNamespaces, connected, waitUntil } from './helpers/server.js';
import { range, track } from './helpers/tracked.js';

const secret = randomBytes(24).toString('hex');
const apiKey = randomBytes(24).toString('hex');

/** config writes a config with history on PostgreSQL (`tablePrefix`) and fan-out on NATS at `url`. */
function config(tablePrefix: string, url: string, prefix: string) {
  return writeConfigFile({
    http_server: { address: '127.0.0.1' },
    log: { level: 'warn' },
    client: { token: { hmac_secret_key: secret } },
    http_api: { key: apiKey },
    engine: { type: 'postgresql', postgresql: { dsn: pgUrl, table_prefix: tablePrefix, poll_interval: '200ms' } },
    broker: { enabled: true, type: 'nats', nats: { url, prefix, reconnect_max_delay: '200ms' } },
    node: { info_interval: '200ms' },
    drain: { window: '0s' },
    channel: { namespaces: baseNamespaces.filter((ns) => ns.name === 'chat') },
  });
}

await describeNats(
  'bulwark processes on NATS + PostgreSQL',
  () => {
    it('3 processes act as one over NATS; a node killed with SIGKILL restarts and a client recovers', async (t) => {
      const tablePrefix = uniqueTablePrefix();
      t.after(() => dropTables(tablePrefix));
      const cfg = config(tablePrefix, natsUrl, uniqueNatsPrefix());
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
      // Node info is a control message: three nodes in info means control travels over NATS.
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
      // Publishes through every process at once: each client still sees offset order.
      await Promise.all(
        [6, 7, 8, 9, 10, 11].map((n, i) => api([p1, p2, p3][i % 3]!, 'publish', { channel: ch, data: { n } })),
      );
      for (const [i, s] of subs.entries()) {
        await waitUntil(() => s.received.length >= 11, 3000, `11 publications on process ${i + 1}`);
        assert.equal(s.received.length, 11, `process ${i + 1}: each once`);
      }
      for (const [i, s] of subs.entries()) assert.deepEqual(s.offsets, range(1, 11), `process ${i + 1}: offset order`);

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

    it('NATS down at start: the process stays up, not ready, naming broker.nats.url; ready once NATS is there', async (t) => {
      const missing = natsServerMissing();
      if (missing !== undefined) {
        // As describeIf does: in CI (BULWARK_REQUIRE_SERVICES=1) a missing nats-server fails.
        if (process.env['BULWARK_REQUIRE_SERVICES'] === '1')
          throw new Error(`BULWARK_REQUIRE_SERVICES=1 but ${missing}`);
        t.skip(missing);
        return;
      }
      const server = await NatsServer.start();
      await server.kill();
      t.after(() => server.kill());
      const tablePrefix = uniqueTablePrefix();
      t.after(() => dropTables(tablePrefix));
      const cfg = config(tablePrefix, server.url, uniqueNatsPrefix());
      t.after(() => cfg.remove());
      const proc = await startBulwark(cfg.path, {}, t);
      const ready = async (): Promise<number> => (await fetch(`${proc.httpUrl}/ready`)).status;
      assert.equal(await ready(), 503);
      await waitUntil(
        () => /broker\.nats\.url/.test(proc.stdout + proc.stderr),
        3000,
        'an error naming broker.nats.url',
      );
      await server.resume();
      const t0 = performance.now();
      let status = 0;
      await waitUntil(
        () => {
          void ready().then((s) => (status = s));
          return status === 200;
        },
        5000,
        '/ready 200 once NATS is there',
      );
      console.log(`# ready ${(performance.now() - t0).toFixed(0)} ms after NATS came (reconnect_max_delay 200 ms)`);
    });
  },
  [pgAvailable()],
);
