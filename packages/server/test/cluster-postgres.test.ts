/**
 * Real `bulwark start` processes on PostgreSQL alone (no Redis): three processes act as one
 * (an API publish on one reaches the clients of all, presence is shared), and a process killed
 * with SIGKILL and started again finds the board's history intact, so a client reconnecting
 * through it recovers what it missed (`recovered: true`); then every process is killed and a
 * fresh one still serves the whole history. Runs the built CLI; needs PostgreSQL at
 * BULWARK_TEST_POSTGRES_URL (skipped without it, unless BULWARK_REQUIRE_SERVICES=1).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import type { Centrifuge } from 'centrifuge';
import { signConnectionToken } from '../src/auth/token-signer.js';
import type { NodeInfo } from '../src/cluster/control.js';
import { describePostgres, dropTables, pgUrl, uniqueTablePrefix } from './helpers/postgres.js';
import { callApi, startBulwark, writeConfigFile, type BulwarkProcess } from './helpers/process.js';
import { baseNamespaces, connected, waitUntil } from './helpers/server.js';
import { range, track } from './helpers/tracked.js';

await describePostgres('bulwark processes on PostgreSQL alone', () => {
  it('3 processes act as one; a node killed with SIGKILL restarts with history intact and a client recovers', async (t) => {
    const secret = randomBytes(24).toString('hex');
    const apiKey = randomBytes(24).toString('hex');
    const prefix = uniqueTablePrefix();
    t.after(() => dropTables(prefix));
    const cfg = writeConfigFile({
      http_server: { address: '127.0.0.1' },
      log: { level: 'warn' },
      client: { token: { hmac_secret_key: secret } },
      http_api: { key: apiKey },
      engine: { type: 'postgresql', postgresql: { dsn: pgUrl, table_prefix: prefix, poll_interval: '200ms' } },
      node: { info_interval: '200ms' },
      drain: { window: '0s' },
      channel: { namespaces: baseNamespaces.filter((ns) => ns.name === 'chat') },
    });
    t.after(() => cfg.remove());
    const start = () => startBulwark(cfg.path, {}, t);
    const client = async (proc: BulwarkProcess, user: string): Promise<Centrifuge> => {
      const c = await connected(proc.url, { token: await signConnectionToken({ secret, user }) });
      t.after(() => c.disconnect());
      return c;
    };
    const api = (proc: BulwarkProcess, method: string, params: object) => callApi(proc.httpUrl, apiKey, method, params);
    const publish = async (proc: BulwarkProcess, n: number): Promise<void> => {
      const res = await api(proc, 'publish', { channel: ch, data: { n } });
      assert.equal(res.body.result?.offset, n, JSON.stringify(res.body));
    };
    const nodesOf = async (proc: BulwarkProcess, count: number): Promise<void> => {
      await waitUntil(
        () => {
          void api(proc, 'info', {}).then((r) => (seen = ((r.body?.result?.nodes ?? []) as NodeInfo[]).length));
          return seen === count;
        },
        5000,
        `${count} nodes in info`,
      );
    };
    let seen = 0;
    const ch = 'chat:board';

    // Started together: the first start migrates, the others wait on its advisory lock.
    const [p1, p2, p3] = await Promise.all([start(), start(), start()]);
    await nodesOf(p1, 3);
    const clients = await Promise.all([p1, p2, p3].map((p, i) => client(p, `user${i + 1}`)));
    const subs = await Promise.all(clients.map((c) => track(c, ch)));
    for (let n = 1; n <= 5; n++) await publish(p2, n);
    for (const [i, s] of subs.entries()) {
      await waitUntil(() => s.received.length >= 5, 3000, `5 publications on process ${i + 1}`);
      assert.deepEqual(s.received, range(1, 5), `process ${i + 1}: every publication once, in order`);
    }
    const presence = await api(p1, 'presence_stats', { channel: ch });
    assert.deepEqual(presence.body.result, { num_clients: 3, num_users: 3 }, 'presence is shared');

    // Process 3 crashes; its client is cut off and misses 6..8.
    const position = subs[2]!.subscribed[0]?.streamPosition;
    assert.ok(position?.epoch);
    await p3.kill();
    clients[2]!.disconnect();
    for (let n = 6; n <= 8; n++) await publish(p1, n);
    const p3b = await start();
    const back = await client(p3b, 'user3');
    const recovered = await track(back, ch, { since: { offset: 5, epoch: position.epoch } });
    assert.equal(recovered.subscribed[0]!.wasRecovering, true);
    assert.equal(recovered.subscribed[0]!.recovered, true);
    await waitUntil(() => recovered.received.length >= 3, 3000, 'the missed 3');
    await publish(p2, 9);
    await waitUntil(() => recovered.received.length >= 4, 3000, 'a live one through the restarted node');
    assert.deepEqual(recovered.received, range(6, 9));

    // Every process dies; a fresh one serves the whole board.
    await Promise.all([p1.kill(), p2.kill(), p3b.kill()]);
    const p4 = await start();
    const history = await api(p4, 'history', { channel: ch, limit: -1 });
    const pubs = (history.body.result?.publications ?? []) as { data: { n: number } }[];
    assert.deepEqual(
      pubs.map((p) => p.data.n),
      range(1, 9),
    );
    assert.equal(history.body.result?.epoch, position.epoch, 'same epoch: the stream survived');
  });
});
