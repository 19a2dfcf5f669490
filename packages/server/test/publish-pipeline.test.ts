/**
 * One connection's publishes in flight together on the Redis engine (client/publish-pipeline.ts,
 * issue 18). Node A reaches the real Redis through a TCP relay that can hold Redis' answers;
 * node B reaches it directly and has a subscriber. While A's answers are held, a client of A
 * sends a run of publishes: started one after another without waiting, every one reaches Redis
 * and B's subscriber gets them all, in order — one at a time, only the first would. Released,
 * A answers every publish ok, in command order, and a history read sent after them sees them
 * all. A publisher faster than Redis answers is not read past half of max_pending_commands in
 * flight, instead of being refused. A node whose Redis connection comes back loads the publish
 * scripts again before anything else. Needs Redis at BULWARK_TEST_REDIS_URL (skipped without it, unless
 * BULWARK_REQUIRE_SERVICES=1).
 *
 * @module
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { it, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { publishScript } from '../src/engine/redis/scripts.js';
import { describeRedis, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';
import { rawClient, sleep, startTestServer, waitUntil, type RawClient, type ServerMessage } from './helpers/server.js';

/** HoldingRelay forwards TCP to Redis; while `held`, Redis' bytes wait in the relay. */
class HoldingRelay {
  held = false;
  readonly #server: net.Server;
  readonly #waiting: { socket: net.Socket; chunk: Buffer }[] = [];
  readonly #sockets = new Set<net.Socket>();

  constructor(target: URL) {
    this.#server = net.createServer((client) => {
      const upstream = net.connect(Number(target.port || 6379), target.hostname);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => (client.destroy(), upstream.destroy()));
      }
      client.on('data', (chunk) => upstream.write(chunk));
      upstream.on('data', (chunk) => {
        if (this.held) this.#waiting.push({ socket: client, chunk });
        else client.write(chunk);
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `redis://127.0.0.1:${(this.#server.address() as net.AddressInfo).port}`;
  }

  /** drop cuts every connection through the relay (it keeps listening: clients reconnect). */
  drop(): void {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  release(): void {
    this.held = false;
    for (const { socket, chunk } of this.#waiting.splice(0)) socket.write(chunk);
  }

  close(): void {
    for (const s of this.#sockets) s.destroy();
    this.#server.close();
  }
}

const board = {
  name: 'board',
  history_size: 100,
  history_ttl: '300s',
  allow_subscribe_for_client: true,
  allow_publish_for_client: true,
  allow_history_for_client: true,
};

/** The run of publishes: a game server's connection publishing a burst. */
const run = 30;

interface Setup {
  relay: HoldingRelay;
  writer: RawClient;
  /** The `n` of every board:run publication node B's subscriber received, in order (≥ 0: the run's). */
  received(): number[];
  /** The writer's replies to the run's commands (ids from 100). */
  replies(): ServerMessage[];
}

/**
 * setUp starts node A through the relay (with `protection` for A) and node B directly, a
 * subscriber of board:run on B and a connected writer on A; a first publish has loaded the
 * publish script into Redis (a NOSCRIPT answer held in the relay would keep every publish from
 * being applied, pipelined or not).
 */
async function setUp(t: TestContext, protection: Record<string, unknown> = {}): Promise<Setup> {
  const prefix = uniquePrefix();
  const relay = new HoldingRelay(new URL(redisUrl));
  const viaRelay = await relay.listen();
  const config = (address: string) => ({
    engine: { type: 'redis' as const, redis: { address: [address], prefix } },
    channel: { namespaces: [board] },
  });
  const a = await startTestServer({ ...config(viaRelay), protection });
  const b = await startTestServer(config(redisUrl));
  t.after(async () => {
    relay.release();
    await Promise.all([a.close(), b.close()]);
    relay.close();
    await removeKeys(prefix);
  });
  const reader = await rawClient(b.url);
  const writer = await rawClient(a.url);
  t.after(() => (reader.close(), writer.close()));
  assert.ok((await reader.connect(await b.token('reader'))).connect);
  assert.ok((await reader.call('subscribe', { channel: 'board:run' })).subscribe);
  assert.ok((await writer.connect(await a.token('writer'))).connect);
  const all = (): number[] =>
    reader.messages.flatMap((m) => {
      const push = (m as { push?: { channel?: string; pub?: { data?: { n?: number } } } }).push;
      return push?.channel === 'board:run' && typeof push.pub?.data?.n === 'number' ? [push.pub.data.n] : [];
    });
  writer.send({ id: 2, publish: { channel: 'board:run', data: { n: -1 } } });
  await waitUntil(() => all().length === 1, 5000, 'the first publication');
  return {
    relay,
    writer,
    received: () => all().filter((n) => n >= 0),
    replies: () => writer.messages.filter((m) => m.id !== undefined && m.id >= 100),
  };
}

const inOrder = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

await describeRedis('Redis engine: a connection publishes with its publishes in flight together', () => {
  it('sends a run of publishes to Redis without waiting, in order, and answers them in order', async (t) => {
    const { relay, writer, received, replies } = await setUp(t);
    relay.held = true;
    // Half in one frame, half a frame each: the run spans frames as an SDK's bursts do.
    const commands = inOrder(run).map((n) => ({ id: 100 + n, publish: { channel: 'board:run', data: { n } } }));
    writer.send(
      commands
        .slice(0, run / 2)
        .map((c) => JSON.stringify(c))
        .join('\n'),
    );
    for (const c of commands.slice(run / 2)) writer.send(c);
    // A history read after the run must wait for all of it.
    writer.send({ id: 100 + run, history: { channel: 'board:run', limit: -1 } });

    // One publish at a time, only the first would reach Redis while its answer is held.
    await waitUntil(() => received().length === run, 5000, `all ${run} publications reach Redis unanswered`);
    assert.deepEqual(received(), inOrder(run), 'applied in the order sent');
    await sleep(50);
    assert.equal(replies().length, 0, 'nothing answered while Redis answers are held');

    relay.release();
    await waitUntil(() => replies().length === run + 1, 5000, 'every command answered');
    assert.deepEqual(
      replies().map((m) => m.id),
      inOrder(run + 1, 100),
      'answered in command order',
    );
    for (const m of replies().slice(0, run)) assert.equal(m.error, undefined, JSON.stringify(m));
    const history = replies()[run]?.history as { publications?: { data: { n: number } }[] } | undefined;
    assert.deepEqual(
      history?.publications?.map((p) => p.data.n),
      inOrder(run + 1, -1),
      'the history read sent after the run sees all of it',
    );
  });

  it('stops reading a publisher with half of max_pending_commands in flight, instead of refusing it', async (t) => {
    // 40 waiting at most: the connection is paused at 20 publishes in flight, and what waits
    // in its socket meanwhile (25) arrives at once when it is read again, under the 40. A
    // backend's publisher, so without the per-connection publish rate meant for players.
    const { relay, writer, received, replies } = await setUp(t, {
      rate_limit: { max_pending_commands: 40, connection: { publish: { rate: 0 } }, user: { publish: { rate: 0 } } },
    });
    relay.held = true;
    const sent = 45;
    for (let n = 0; n < sent; n++) {
      writer.send({ id: 100 + n, publish: { channel: 'board:run', data: { n } } });
      await sleep(15); // one frame per read, as a steady publisher's arrive
    }
    await sleep(100);
    // Read and started: the first 20, and what arrived in the same read as the 20th.
    const started = received().length;
    assert.ok(started >= 20 && started < 30, `${started} publishes reached Redis while reading was paused`);
    assert.equal(replies().length, 0, 'none refused (111) while the rest waited in the socket');
    assert.ok(writer.open);

    relay.release();
    await waitUntil(() => replies().length === sent, 5000, 'every publish answered');
    assert.deepEqual(
      replies().map((m) => m.id),
      inOrder(sent, 100),
    );
    for (const m of replies()) assert.equal(m.error, undefined, JSON.stringify(m));
    await waitUntil(() => received().length === sent, 5000, 'every publication delivered');
    assert.deepEqual(received(), inOrder(sent), 'applied in the order sent');
  });

  it('loads the publish scripts again first thing when its Redis connection comes back', async (t) => {
    const { relay } = await setUp(t);
    const redis = new Redis(redisUrl);
    t.after(() => redis.disconnect());
    const loaded = async () => ((await redis.script('EXISTS', publishScript.sha)) as number[])[0] === 1;
    assert.ok(await loaded(), 'loaded by the first publish');
    // As after a Redis restart: the scripts are gone, and the node's connections are cut.
    await redis.script('FLUSH');
    relay.drop();
    const until = Date.now() + 5000;
    while (!(await loaded()) && Date.now() < until) await sleep(20);
    assert.ok(await loaded(), 'loaded again on reconnect, before any publish asked for it');
  });
});
