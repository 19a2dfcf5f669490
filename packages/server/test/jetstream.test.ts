/**
 * The JetStream consumer (docs/JETSTREAM.md) against the shared NATS with JetStream, each run
 * on a stream of its own (deleted after): messages published to the stream reach a real
 * `centrifuge` subscriber once each, in stream order per channel, while bad messages (not
 * JSON, no channel, unknown namespace, bad channel name, too large) are terminated with their
 * reason and the ones behind them flow; two nodes sharing the durable consumer (one of them
 * shut down mid-stream) publish 400 messages over 4 channels exactly once, in order; a
 * `bulwark start` consumer killed with SIGKILL mid-stream and started again still publishes
 * each message exactly once (contiguous offsets, each id once, in order); a node that sheds
 * load pulls nothing. The last three use the PostgreSQL engine so every node sees one history
 * and one set of idempotency keys. Needs NATS (BULWARK_TEST_NATS_URL) and PostgreSQL; the
 * envelope parser and the config rules are checked without them.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { loadConfig } from '../src/config/load.js';
import type { ConfigInput } from '../src/config/schema.js';
import { parseCommand } from '../src/jetstream/message.js';
import { describeNats, jetstreamAvailable, natsUrl } from './helpers/nats.js';
import { dropTables, pgAvailable, pgUrl, uniqueTablePrefix } from './helpers/postgres.js';
import { callApi, startBulwark, writeConfigFile } from './helpers/process.js';
import { connected, sleep, startTestServer, waitUntil, type TestServer } from './helpers/server.js';
import { track } from './helpers/tracked.js';

describe('jetstream consumer: message format and config rules', () => {
  const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
  it('reads a publish command, with or without method and idempotency_key, and a broadcast', () => {
    assert.deepEqual(parseCommand(enc({ method: 'publish', payload: { channel: 'a', data: { n: 1 } } })), {
      method: 'publish',
      channels: ['a'],
      data: '{"n":1}',
      idempotencyKey: undefined,
    });
    assert.deepEqual(parseCommand(enc({ payload: { channel: 'a', data: 'x', idempotency_key: 'k' } })), {
      method: 'publish',
      channels: ['a'],
      data: '"x"',
      idempotencyKey: 'k',
    });
    assert.deepEqual(parseCommand(enc({ method: 'broadcast', payload: { channels: ['a', 'b'], data: [1] } })), {
      method: 'broadcast',
      channels: ['a', 'b'],
      data: '[1]',
      idempotencyKey: undefined,
    });
  });
  it('names the reason of a bad message', () => {
    const reason = (v: unknown) => {
      const r = parseCommand(v instanceof Uint8Array ? v : enc(v));
      return 'reason' in r ? r.reason : 'ok';
    };
    assert.equal(reason('{nope'), 'bad_data');
    assert.equal(reason(new Uint8Array([0x7b, 0xff, 0x7d])), 'bad_data'); // not UTF-8
    assert.equal(reason([1]), 'bad_data');
    assert.equal(reason({ method: 'history', payload: { channel: 'a' } }), 'bad_data');
    assert.equal(reason({ method: 'broadcast', payload: { channel: 'a', data: 1 } }), 'bad_channel');
    assert.equal(reason({ method: 'broadcast', payload: { channels: [], data: 1 } }), 'bad_channel');
    assert.equal(reason({ method: 'broadcast', payload: { channels: ['a', 7], data: 1 } }), 'bad_channel');
    assert.equal(reason({ method: 'broadcast', payload: { channels: ['a'] } }), 'bad_data');
    assert.equal(reason({ payload: { channel: 'a' } }), 'bad_data');
    assert.equal(reason({ payload: { channel: 'a', data: 1, idempotency_key: 7 } }), 'bad_data');
    assert.equal(reason({ payload: { data: 1 } }), 'bad_channel');
    assert.equal(reason({ payload: { channel: '', data: 1 } }), 'bad_channel');
  });
  it('needs stream_name, ack_wait under channel.idempotent_result_ttl, and fetch_expires of 1s or more', () => {
    const base = { client: { insecure: true }, http_api: { insecure: true } };
    const problems = (jetstream: object, channel: object = {}) => {
      try {
        loadConfig({ object: { ...base, channel, consumers: { jetstream: { enabled: true, ...jetstream } } } });
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    };
    assert.match(problems({}), /consumers\.jetstream\.stream_name/);
    assert.equal(problems({ stream_name: 'GAME' }), '');
    assert.match(problems({ stream_name: 'GAME', ack_wait: '5m' }), /consumers\.jetstream\.ack_wait/);
    assert.equal(problems({ stream_name: 'GAME', ack_wait: '5m' }, { idempotent_result_ttl: '10m' }), '');
    assert.match(problems({ stream_name: 'GAME', fetch_expires: '500ms' }), /fetch_expires/);
  });
});

await describeNats(
  'jetstream consumer',
  () => {
    const id = randomBytes(5).toString('hex');
    const stream = `BWTEST_${id}`;
    const subject = `bwtest.${id}.events`;
    const prefix = uniqueTablePrefix();
    let nc: NatsConnection;
    let jsm: JetStreamManager;
    const board = {
      name: 'board',
      history_size: 1000,
      history_ttl: '300s',
      allow_subscribe_for_client: true,
      allow_history_for_client: true,
    };
    let durable = 0;
    /** config gives each test a durable consumer of its own, reading the stream from its start. */
    const config = (over: ConfigInput = {}, pgEngine = false): ConfigInput => ({
      client: { insecure: true },
      ...(pgEngine
        ? { engine: { type: 'postgresql', postgresql: { dsn: pgUrl, table_prefix: prefix, poll_interval: '200ms' } } }
        : {}),
      consumers: {
        jetstream: {
          enabled: true,
          url: natsUrl,
          stream_name: stream,
          subjects: [`${subject}.${durable}`],
          durable_consumer_name: `bulwark_${id}_${durable}`,
          deliver_policy: 'all',
          ack_wait: '2s',
          fetch_expires: '1s',
          retry_interval: '100ms',
        },
      },
      channel: { namespaces: [board] },
      ...over,
    });

    before(async () => {
      nc = await connect({ servers: natsUrl });
      jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: stream, subjects: [`${subject}.>`] });
    });
    after(async () => {
      await jsm.streams.delete(stream).catch(() => undefined);
      await nc.close();
      await dropTables(prefix).catch(() => undefined);
    });

    /** send publishes messages to the stream: [channel, n] as a publish command, or a raw body. */
    const send = async (msgs: ([string, number] | { raw: string })[]): Promise<void> => {
      const js = jetstream(nc);
      for (const m of msgs) {
        const body =
          'raw' in m ? m.raw : JSON.stringify({ method: 'publish', payload: { channel: m[0], data: { n: m[1] } } });
        await js.publish(`${subject}.${durable}`, body);
      }
    };
    /** numbered builds `count` messages over `channels` channels: n → board:<tag><n % channels>. */
    const numbered = (tag: string, count: number, channels: number) => {
      const expected = new Map<string, number[]>();
      const msgs: [string, number][] = [];
      for (let n = 1; n <= count; n++) {
        const ch = `board:${tag}${n % channels}`;
        if (!expected.has(ch)) expected.set(ch, []);
        expected.get(ch)!.push(n);
        msgs.push([ch, n]);
      }
      return { expected, msgs };
    };
    const pending = async (): Promise<number> => {
      const info = await jsm.consumers.info(stream, `bulwark_${id}_${durable}`).catch(() => undefined);
      return info === undefined ? Infinity : info.num_pending + info.num_ack_pending; // not created yet: all pending
    };
    const historyOf = async (httpUrl: string, apiKey: string, channel: string) => {
      const res = await callApi(httpUrl, apiKey, 'history', { channel, limit: -1 });
      return (res.body.result?.publications ?? []) as { offset: number; data: { n: number } }[];
    };
    const assertExactlyOnce = (pubs: { offset: number; data: { n: number } }[], ns: number[], label: string) => {
      assert.deepEqual(
        pubs.map((p) => p.offset),
        ns.map((_, i) => i + 1),
        `${label}: offsets contiguous`,
      );
      assert.deepEqual(
        pubs.map((p) => p.data.n),
        ns,
        `${label}: every message once, in stream order`,
      );
    };

    it('publishes messages and broadcasts once each in stream order per channel, and terminates bad ones with their reason', async () => {
      durable++;
      const server = await startTestServer(config({ protection: { publication_max_size: 2000 } }));
      try {
        const client = await connected(server.url);
        const a = await track(client, 'board:a');
        const b = await track(client, 'board:b');
        await send([
          ['board:a', 1],
          ['board:b', 1],
          { raw: 'not json' },
          { raw: JSON.stringify({ method: 'publish', payload: { data: { n: 0 } } }) },
          ['nope:x', 0],
          ['board:has space', 0],
          ['board:a', 2],
          {
            raw: JSON.stringify({
              method: 'publish',
              payload: { channel: 'board:a', data: { pad: 'x'.repeat(3000) } },
            }),
          },
          {
            raw: JSON.stringify({ method: 'broadcast', payload: { channels: ['board:a', 'board:b'], data: { n: 9 } } }),
          },
          // One bad channel: the broadcast publishes nowhere, as the server API's broadcast.
          {
            raw: JSON.stringify({ method: 'broadcast', payload: { channels: ['board:a', 'nope:y'], data: { n: 0 } } }),
          },
          { raw: JSON.stringify({ method: 'history', payload: { channel: 'board:a' } }) },
          ['board:b', 2],
          ['board:a', 3],
        ]);
        await waitUntil(() => a.received.length === 4 && b.received.length === 3, 5000, '7 publications');
        assert.deepEqual(a.received, [1, 2, 9, 3]);
        assert.deepEqual(a.offsets, [1, 2, 3, 4]);
        assert.deepEqual(b.received, [1, 9, 2]);
        await waitUntilAsync(async () => (await pending()) === 0, 3000, 'the stream consumed');
        const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
        assert.match(metrics, /bulwark_jetstream_terminated_total\{reason="bad_data"[^}]*\} 2/);
        assert.match(metrics, /bulwark_jetstream_terminated_total\{reason="bad_channel"[^}]*\} 4/);
        assert.match(metrics, /bulwark_jetstream_terminated_total\{reason="too_large"[^}]*\} 1/);
        assert.match(metrics, /bulwark_jetstream_published_total\{[^}]*\} 6/);
        assert.match(metrics, /bulwark_jetstream_pending\{[^}]*\} 0/);
        client.disconnect();
      } finally {
        await server.close();
      }
    });

    it('2 nodes sharing the consumer, one shut down mid-stream, publish 400 messages exactly once, in order', async () => {
      durable++;
      const servers: TestServer[] = [];
      try {
        for (let i = 0; i < 2; i++) servers.push(await startTestServer(config({}, true)));
        const { expected, msgs } = numbered('n', 400, 4);
        const t0 = Date.now();
        await send(msgs);
        await waitUntilAsync(async () => (await pending()) < 300, 10_000, 'consuming began');
        await servers[0]!.close();
        await waitUntilAsync(async () => (await pending()) === 0, 20_000, 'the stream consumed');
        const took = Date.now() - t0;
        const s = servers[1]!;
        for (const [ch, ns] of expected) assertExactlyOnce(await historyOf(s.httpUrl, s.apiKey, ch), ns, ch);
        const text = await (await fetch(`${s.httpUrl}/metrics`)).text();
        const second = Number(/bulwark_jetstream_published_total\{[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
        assert.ok(second > 0 && second <= 400, `the second node published ${second} (400 in ${took} ms)`);
      } finally {
        await Promise.all(servers.slice(1).map((s) => s.close()));
      }
    });

    it('a consumer killed with SIGKILL mid-stream and started again publishes every message exactly once', async (t) => {
      durable++;
      const apiKey = 'jetstream-test-key';
      const cfg = writeConfigFile({
        ...config({}, true),
        http_server: { address: '127.0.0.1' },
        http_api: { key: apiKey },
        log: { level: 'warn' },
        drain: { window: '0s' },
      } as ConfigInput);
      t.after(() => cfg.remove());
      const { expected, msgs } = numbered('k', 600, 6);
      await send(msgs);
      const first = await startBulwark(cfg.path, {}, t);
      await waitUntilAsync(async () => (await pending()) < 500, 10_000, 'consuming began');
      await first.kill();
      assert.ok((await pending()) > 0, 'killed before the stream was consumed');
      const second = await startBulwark(cfg.path, {}, t);
      await waitUntilAsync(async () => (await pending()) === 0, 20_000, 'the stream consumed');
      for (const [ch, ns] of expected) assertExactlyOnce(await historyOf(second.httpUrl, apiKey, ch), ns, ch);
      await second.kill();
    });

    it('pulls nothing while the node sheds load, and resumes after', async () => {
      durable++;
      const server = await startTestServer(config());
      try {
        const shedder = server.node.shedder as unknown as { connect: boolean };
        Object.defineProperty(shedder, 'connect', { get: () => true, configurable: true });
        await sleep(150);
        await send([['board:p', 1]]);
        await sleep(400);
        assert.ok((await pending()) > 0, 'not consumed while shedding');
        assert.deepEqual(await historyOf(server.httpUrl, server.apiKey, 'board:p'), [], 'nothing published');
        const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
        assert.match(metrics, /bulwark_jetstream_paused\{reason="shedding"[^}]*\} 1/);
        delete (shedder as { connect?: boolean }).connect;
        await waitUntilAsync(async () => (await pending()) === 0, 3000, 'consumed after shedding');
        assert.deepEqual(
          (await historyOf(server.httpUrl, server.apiKey, 'board:p')).map((p) => p.data.n),
          [1],
        );
      } finally {
        await server.close();
      }
    });
  },
  [jetstreamAvailable(), pgAvailable()],
);

/** waitUntilAsync polls an async predicate every 50 ms until it holds, or fails after `ms`. */
async function waitUntilAsync(predicate: () => Promise<boolean>, ms: number, label: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
    await sleep(50);
  }
}
