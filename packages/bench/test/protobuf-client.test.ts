/**
 * Tests of the Protobuf load client's wire handling: its commands decode with the server's own
 * Protobuf decoder, the replies and pushes the server's own Protobuf codec encodes are read right
 * (bench markers in place, several messages per frame, pings, errors, unknown fields skipped),
 * malformed frames throw, and a round trip against a real Bulwark (connect, subscribe, publish,
 * ping answered with a pong).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { ServerApi } from '../src/harness/api.js';
import { LeanClient, benchData } from '../src/load/lean-client.js';
import {
  connectCommand,
  ProtobufClient,
  publishCommand,
  readReplies,
  subscribeCommand,
  type ReplyEvents,
} from '../src/load/protobuf-client.js';
import { connectionToken } from '../src/harness/jwt.js';
import { startServer } from '../src/harness/targets.js';
import { waitFor } from '../src/harness/util.js';

/** The server's Protobuf codec, as much of it as these tests use (loaded from its build). */
interface ServerCodec {
  decode(frame: Buffer): { commands: Array<{ id: number; method?: string; req?: Record<string, unknown> }> };
  reply(id: number, reply: unknown): Buffer;
  error(id: number, err: { code: number; message: string; temporary?: boolean }): Buffer;
  push(push: unknown): Buffer;
  ping: Buffer;
}

// Compiled to packages/bench/dist/test/: the server's build is packages/server/dist/.
const codecUrl = new URL('../../../server/dist/src/protocol/protobuf-codec.js', import.meta.url);
const { protobufCodec: codec } = (await import(codecUrl.href)) as { protobufCodec: ServerCodec };

/** Records every event readReplies reports. */
function recorder(): ReplyEvents & { log: unknown[] } {
  const log: unknown[] = [];
  return {
    log,
    onPush: (channel, seq, sentAtMicros) => log.push({ push: [channel, seq, sentAtMicros] }),
    onOtherPush: () => log.push('other'),
    onPing: () => log.push('ping'),
    onReply: (id, error, pong) => log.push({ id, error, pong }),
  };
}

const pubPush = (ch: number, seq: number, ts: number, offset = 7) => ({
  type: 'pub',
  channel: `bench:ch${ch}`,
  pub: {
    offset,
    data: benchData(ch, seq, ts, 'pad'),
    info: { user: 'u', client: 'c' },
    tags: { k: 'v' },
    time: 1_700_000_000_000,
  },
});

describe('Protobuf commands', () => {
  it('decode with the server’s own decoder', () => {
    const frame = Buffer.concat([
      connectCommand(1, 'tok'),
      subscribeCommand(2, 'bench:ch3'),
      publishCommand(3, 'bench:ch3', benchData(3, 9, 42)),
    ]);
    const { commands } = codec.decode(frame);
    assert.equal(commands.length, 3);
    assert.deepEqual([commands[0]?.id, commands[0]?.method, commands[0]?.req?.token], [1, 'connect', 'tok']);
    assert.equal(commands[0]?.req?.name, 'bench');
    assert.deepEqual([commands[1]?.id, commands[1]?.method, commands[1]?.req?.channel], [2, 'subscribe', 'bench:ch3']);
    assert.deepEqual([commands[2]?.id, commands[2]?.method], [3, 'publish']);
    assert.deepEqual(commands[2]?.req?.data, { bch: 3, bseq: 9, bts: 42 });
    // The pong is an empty command: one zero byte.
    assert.deepEqual(codec.decode(Buffer.from([0])).commands, [{ id: 0, method: 'pong', req: {} }]);
  });

  it('carry a tags filter the server decodes and compiles as it was written (fanout --tags-filter)', async () => {
    const tf = {
      op: 'and',
      nodes: [
        { key: 'region', cmp: 'in', vals: ['eu', 'us'] },
        { op: 'not', nodes: [{ key: 'tier', cmp: 'lt', val: '2' }] },
      ],
    };
    const { commands } = codec.decode(Buffer.from(subscribeCommand(5, 'bench:ch1', tf)));
    const filterUrl = new URL('../../../server/dist/src/protocol/tags-filter.js', import.meta.url);
    const { compileFilter, matches } = (await import(filterUrl.href)) as {
      compileFilter(raw: unknown, limits: object): unknown;
      matches(f: unknown, tags: Record<string, string>): boolean;
    };
    const limits = { maxDepth: 8, maxNodes: 64, maxValues: 64, maxValueLength: 64 };
    const f = compileFilter(commands[0]?.req?.tf, limits);
    assert.equal(matches(f, { region: 'us', tier: '3' }), true);
    assert.equal(matches(f, { region: 'us', tier: '1' }), false);
    assert.equal(matches(f, { region: 'asia', tier: '3' }), false);
  });
});

describe('readReplies', () => {
  it('reads the bench markers of publications the server encodes, several per frame', () => {
    const ev = recorder();
    readReplies(Buffer.concat([codec.push(pubPush(3, 17, 123456789)), codec.push(pubPush(4, 1, 5, 0))]), ev);
    assert.deepEqual(ev.log, [{ push: [3, 17, 123456789] }, { push: [4, 1, 5] }]);
  });

  it('reports pings, replies with errors and pong, and pushes without markers', () => {
    const ev = recorder();
    const frame = Buffer.concat([
      codec.ping,
      codec.reply(1, { method: 'connect', result: { client: 'c1', version: '0', ping: 25, pong: true } }),
      codec.reply(2, { method: 'subscribe', result: {} }),
      codec.error(3, { code: 103, message: 'permission denied' }),
      codec.reply(4, { method: 'publish', result: {} }),
      codec.push({ type: 'join', channel: 'a', info: { user: 'u', client: 'c' } }),
      codec.push({ type: 'pub', channel: 'a', pub: { offset: 1, data: '{"other":1}' } }),
    ]);
    assert.deepEqual([...codec.ping], [0]);
    readReplies(frame, ev);
    assert.deepEqual(ev.log, [
      'ping',
      { id: 1, error: undefined, pong: true },
      { id: 2, error: undefined, pong: undefined },
      { id: 3, error: { code: 103, message: 'permission denied' }, pong: undefined },
      { id: 4, error: undefined, pong: undefined },
      'other',
      'other',
    ]);
  });

  it('skips unknown fields of every wire type', () => {
    const w = new BinaryWriter().fork();
    w.tag(99, WireType.Varint).uint32(5);
    w.tag(98, WireType.Bit64).fixed64(1n);
    w.tag(97, WireType.Bit32).fixed32(1);
    w.tag(4, WireType.LengthDelimited).fork(); // push
    w.tag(96, WireType.LengthDelimited).string('future');
    w.tag(4, WireType.LengthDelimited).fork(); // pub
    w.tag(95, WireType.Varint).uint32(1);
    w.tag(4, WireType.LengthDelimited).string(benchData(1, 2, 3));
    w.join().join();
    const ev = recorder();
    readReplies(Buffer.from(w.join().finish()), ev);
    assert.deepEqual(ev.log, [{ push: [1, 2, 3] }]);
  });

  it('throws on a truncated frame or a field longer than its message', () => {
    const one = codec.push(pubPush(1, 1, 1));
    assert.throws(() => readReplies(one.subarray(0, one.length - 3), recorder()), /truncated|premature|range/i);
    // Reply of 3 bytes whose push field claims 10.
    assert.throws(() => readReplies(Buffer.from([3, 0x22, 10, 0]), recorder()), /truncated/);
    assert.throws(() => readReplies(Buffer.from([0xff]), recorder()));
  });
});

describe('ProtobufClient against Bulwark', () => {
  it('connects, subscribes, receives publications in order and answers pings', async () => {
    const server = await startServer('bulwark', {
      bulwarkConfig: { client: { ping_interval: '1s', pong_timeout: '500ms' } },
    });
    const clients: ProtobufClient[] = [];
    try {
      const got: number[] = [];
      const sub = new ProtobufClient({
        url: server.wsUrl,
        onPush: (ch, seq) => {
          assert.equal(ch, 0);
          got.push(seq);
        },
      });
      const pub = new ProtobufClient({ url: server.wsUrl });
      clients.push(sub, pub);
      await Promise.all([sub.open(), pub.open()]);
      assert.deepEqual(await sub.connect(connectionToken('user-1', server.tokenSecret)), { pong: true });
      await pub.connect(connectionToken('user-2', server.tokenSecret));
      await sub.subscribe('bench:ch0');
      for (let seq = 1; seq <= 50; seq++) pub.publish('bench:ch0', benchData(0, seq, 1, 'pad'));
      assert.ok(
        await waitFor(() => got.length === 50 && pub.publishAcks === 50, 5000),
        `got ${got.length}, acks ${pub.publishAcks}, errors ${pub.publishErrors} ${pub.lastError} ${sub.lastError} ${sub.otherPushes}`,
      );
      assert.deepEqual(
        got,
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      assert.equal(pub.publishErrors, 0);
      // Pings every second; a missed pong would close the connection with 3012 after 500 ms.
      assert.ok(await waitFor(() => sub.pings >= 2, 5000), 'two pings');
      assert.equal(sub.closeCode, undefined);
      assert.equal(sub.lastError, undefined);
      await assert.rejects(sub.subscribe('nonamespace:x'), /error \d+/);
    } finally {
      for (const c of clients) c.terminate();
      await server.stop();
    }
  });

  it('fanout --tags-filter: JSON and Protobuf subscribers get only what their tags filter lets through', async () => {
    const server = await startServer('bulwark');
    const api = new ServerApi(server);
    const got = { json: [] as number[], protobuf: [] as number[] };
    const tagsFilter = { key: 'region', cmp: 'eq', val: 'eu' };
    const json = new LeanClient({
      url: server.wsUrl,
      protocol: 'centrifugo',
      tagsFilter,
      onPush: (_c, s) => got.json.push(s),
    });
    const pb = new ProtobufClient({ url: server.wsUrl, tagsFilter, onPush: (_c, s) => got.protobuf.push(s) });
    try {
      await Promise.all([json.open(), pb.open()]);
      await json.connect(connectionToken('user-1', server.tokenSecret));
      await pb.connect(connectionToken('user-2', server.tokenSecret));
      await json.subscribe('bench:ch0');
      await pb.subscribe('bench:ch0');
      for (let seq = 1; seq <= 6; seq++) {
        await api.publish('bench:ch0', benchData(0, seq, 1), { region: seq % 2 === 0 ? 'eu' : 'us' });
      }
      assert.ok(await waitFor(() => got.json.length === 3 && got.protobuf.length === 3, 5000), JSON.stringify(got));
      assert.deepEqual(got, { json: [2, 4, 6], protobuf: [2, 4, 6] });
    } finally {
      json.terminate();
      pb.terminate();
      api.close();
      await server.stop();
    }
  });
});
