/**
 * Real `bulwark start` processes sharing one Redis: three separate processes act as one
 * (publications reach every process's clients, a client that moves to another process
 * recovers what it missed), and `--workers 2` runs two nodes on one port that drain and stop
 * on SIGTERM. Runs the built CLI (dist/src/cli/main.js); needs Redis at BULWARK_TEST_REDIS_URL
 * (skipped without it, unless BULWARK_REQUIRE_SERVICES=1).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { describe, it, type TestContext } from 'node:test';
import type { Centrifuge, ConnectingContext } from 'centrifuge';
import { signConnectionToken } from '../src/auth/token-signer.js';
import type { NodeInfo } from '../src/cluster/control.js';
import type { ConfigInput } from '../src/config/schema.js';
import { callApi, isAlive, runBulwark, startBulwark, writeConfigFile, type BulwarkProcess } from './helpers/process.js';
import { describeRedis, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';
import { baseNamespaces, connected, waitUntil, withTimeout } from './helpers/server.js';
import { range, track } from './helpers/tracked.js';

/** Secrets and a Redis prefix of one test's processes. */
interface Deployment {
  secret: string;
  apiKey: string;
  prefix: string;
}

function deployment(t: TestContext): Deployment {
  const d = {
    secret: randomBytes(24).toString('hex'),
    apiKey: randomBytes(24).toString('hex'),
    prefix: uniquePrefix(),
  };
  t.after(() => removeKeys(d.prefix).then(() => undefined));
  return d;
}

/** configOf is a config file's contents: the test namespaces (chat: history and forced recovery) on Redis. */
function configOf(d: Deployment, over: ConfigInput = {}): ConfigInput {
  return {
    http_server: { address: '127.0.0.1' },
    log: { level: 'warn' },
    client: { token: { hmac_secret_key: d.secret } },
    http_api: { key: d.apiKey },
    engine: { type: 'redis', redis: { address: [redisUrl], prefix: d.prefix } },
    node: { info_interval: '200ms' },
    drain: { window: '0s' },
    channel: { namespaces: baseNamespaces.filter((ns) => ns.name === 'chat') },
    ...over,
  };
}

/** client connects a real SDK client to `proc` as `user`, disconnected when the test ends. */
async function client(
  t: TestContext,
  d: Deployment,
  proc: BulwarkProcess,
  user: string,
): Promise<{ c: Centrifuge; connecting: ConnectingContext[] }> {
  const c = await connected(proc.url, { token: await signConnectionToken({ secret: d.secret, user }) });
  t.after(() => c.disconnect());
  const connecting: ConnectingContext[] = [];
  c.on('connecting', (ctx) => connecting.push(ctx));
  return { c, connecting };
}

/** infoUntil polls a process's info API until `pred` accepts the node list; fails with the last one. */
async function infoUntil(
  d: Deployment,
  proc: BulwarkProcess,
  pred: (nodes: NodeInfo[]) => boolean,
  ms = 5000,
): Promise<NodeInfo[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const res = await callApi(proc.httpUrl, d.apiKey, 'info');
    const nodes = (res.body?.result?.nodes ?? []) as NodeInfo[];
    if (pred(nodes)) return nodes;
    if (Date.now() > deadline) assert.fail(`info never matched: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function publish(d: Deployment, proc: BulwarkProcess, channel: string, n: number): Promise<void> {
  const res = await callApi(proc.httpUrl, d.apiKey, 'publish', { channel, data: { n } });
  assert.deepEqual(res.body.result?.offset, n, JSON.stringify(res.body));
}

await describeRedis('bulwark processes on one Redis', () => {
  it('3 processes act as one: an API publish on one reaches all; a client moving to another recovers', async (t) => {
    const d = deployment(t);
    const cfg = writeConfigFile(configOf(d));
    t.after(() => cfg.remove());
    const start = () => startBulwark(cfg.path, {}, t);
    const [p1, p2, p3] = await Promise.all([start(), start(), start()]);
    assert.equal(new Set([p1.port, p2.port, p3.port]).size, 3, 'separate ports');
    await infoUntil(d, p1, (nodes) => nodes.length === 3);

    const ch = 'chat:procs';
    const users = await Promise.all([p1, p2, p3].map((p, i) => client(t, d, p, `user${i + 1}`)));
    const subs = await Promise.all(users.map((u) => track(u.c, ch)));
    for (let n = 1; n <= 10; n++) await publish(d, p2, ch, n);
    for (const [i, s] of subs.entries()) {
      await waitUntil(() => s.received.length >= 10, 3000, `10 publications on process ${i + 1}`);
      assert.deepEqual(s.received, range(1, 10), `process ${i + 1}: every publication once, in order`);
    }

    // Process 3 stops (SIGTERM, as in a rolling restart): its client is told to reconnect
    // (3001) and comes back through process 2, while publications go on through process 1.
    const mover = users[2]!;
    const position = subs[2]!.subscribed[0]?.streamPosition;
    assert.ok(position?.epoch);
    assert.deepEqual(await p3.stop(), { code: 0, signal: null });
    await waitUntil(() => mover.connecting.some((c) => c.code === 3001), 3000, 'the 3001 disconnect');
    mover.c.disconnect();
    await infoUntil(d, p1, (nodes) => nodes.length === 2, 2000);

    for (let n = 11; n <= 15; n++) await publish(d, p1, ch, n);
    const back = await client(t, d, p2, 'user3');
    const recovered = await track(back.c, ch, { since: { offset: 10, epoch: position.epoch } });
    const ctx = recovered.subscribed[0]!;
    assert.equal(ctx.wasRecovering, true);
    assert.equal(ctx.recovered, true);
    await publish(d, p1, ch, 16);
    await waitUntil(() => recovered.received.length >= 6, 3000, 'the missed 5 and a live one');
    assert.deepEqual(recovered.received, range(11, 16), 'exactly the missed ones, then live');
    for (const s of subs.slice(0, 2)) {
      await waitUntil(() => s.received.length >= 16, 3000, 'the rest on processes 1 and 2');
      assert.deepEqual(s.received, range(1, 16));
    }
  });

  it('--workers 2: two nodes on one port serve clients together and stop with the primary on SIGTERM', async (t) => {
    const d = deployment(t);
    const drainMs = 1000;
    const cfg = writeConfigFile(
      configOf(d, { node: { name: 'wk', info_interval: '200ms' }, log: { level: 'info' }, drain: { window: '1s' } }),
    );
    t.after(() => cfg.remove());
    const primary = await startBulwark(cfg.path, { args: ['--workers', '2'] }, t);
    const workers = primary.childPids();
    assert.equal(workers.length, 2, 'the primary forked 2 workers');
    const nodes = await infoUntil(d, primary, (n) => n.length === 2);
    assert.deepEqual(nodes.map((n) => n.name).sort(), ['wk#1', 'wk#2']);

    const ch = 'chat:workers';
    const clients = [];
    for (let i = 0; i < 4; i++) {
      const cl = await client(t, d, primary, `w${i}`);
      clients.push({ ...cl, tr: await track(cl.c, ch) });
    }
    // The primary hands connections to the workers in turn: both have clients.
    const spread = await infoUntil(d, primary, (n) => n.reduce((sum, x) => sum + x.num_clients, 0) === 4);
    assert.ok(
      spread.every((n) => n.num_clients > 0),
      `clients on both workers: ${spread.map((n) => n.num_clients)}`,
    );
    await publish(d, primary, ch, 1);
    for (const { tr } of clients) await waitUntil(() => tr.received.length === 1, 3000, 'the publication');

    const t0 = performance.now();
    const exit = await primary.stop(drainMs + 5000);
    const tookMs = performance.now() - t0;
    t.diagnostic(`primary and workers stopped ${tookMs.toFixed(0)} ms after SIGTERM (drain window ${drainMs} ms)`);
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(tookMs < drainMs + 3000, `stopped after ${tookMs} ms`);
    assert.deepEqual(
      workers.filter((pid) => isAlive(pid)),
      [],
      'no worker outlived the primary',
    );
    // Each worker drained its clients (3001) and finished its own graceful shutdown.
    for (const { connecting } of clients) assert.equal(connecting[0]?.code, 3001);
    const stopped = primary.stdout.split('\n').filter((line) => line.includes('"msg":"bulwark stopped"'));
    assert.equal(stopped.length, 2, `each worker logged its stop:\n${primary.stdout.slice(-2000)}`);
  });

  it('--workers 2: a worker that dies during the drain makes the primary exit non-zero', async (t) => {
    const d = deployment(t);
    const cfg = writeConfigFile(configOf(d, { drain: { window: '2s' } }));
    t.after(() => cfg.remove());
    const primary = await startBulwark(cfg.path, { args: ['--workers', '2'] }, t);
    const workers = primary.childPids();
    assert.equal(workers.length, 2);
    // Clients on both workers, so that each one's drain lasts about a second.
    for (let i = 0; i < 4; i++) await client(t, d, primary, `d${i}`);

    process.kill(primary.pid, 'SIGTERM');
    await waitUntil(() => primary.stderr.includes('SIGTERM: draining'), 3000, 'the primary began stopping');
    process.kill(workers[0]!, 'SIGKILL'); // a crash in the middle of its drain
    const exit = await withTimeout(primary.exited, 5000, 'the primary to exit');
    assert.equal(exit.code, 1, 'an orchestrator must see that the stop was not clean');
  });
});

describe('bulwark start --workers', () => {
  it('refuses the memory engine: exit code 2 naming engine.type redis', async (t) => {
    const cfg = writeConfigFile({
      http_server: { address: '127.0.0.1' },
      log: { level: 'warn' },
      client: { token: { hmac_secret_key: randomBytes(24).toString('hex') } },
      http_api: { key: randomBytes(24).toString('hex') },
    });
    t.after(() => cfg.remove());
    const { exit, stderr } = await runBulwark(['start', '-c', cfg.path, '-p', '0', '--workers', '2']);
    assert.deepEqual(exit, { code: 2, signal: null });
    assert.match(stderr, /--workers needs engine\.type "redis"/);
  });
});
