/**
 * Tests of the raw reader's protocol side: the Protobuf push scan against frames the server's
 * own codec encodes (it must report exactly what readReplies reports), the mergeable latency
 * histogram, and round trips against the real servers — raw-ws, Socket.IO, Bulwark JSON and
 * Protobuf (with 1 s pings answered) — where the raw reader and the `ws` reader must receive the
 * same publications.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bucketOf, LatencyHistogram, upperEdge } from '../src/harness/latency-histogram.js';
import { connectionToken } from '../src/harness/jwt.js';
import { startServer, type TargetName } from '../src/harness/targets.js';
import { waitFor } from '../src/harness/util.js';
import { benchData } from '../src/load/lean-client.js';
import { readReplies, type ReplyEvents } from '../src/load/protobuf-client.js';
import { scanProtobufFrame } from '../src/load/protobuf-push-scan.js';
import { RawSessionClient } from '../src/load/raw-session-client.js';
import { makeReaderClient, makeSessionClient, type SessionClient } from '../src/load/session-clients.js';

interface ServerCodec {
  reply(id: number, reply: unknown): Buffer;
  error(id: number, err: { code: number; message: string }): Buffer;
  push(push: unknown): Buffer;
  ping: Buffer;
}
const codecUrl = new URL('../../../server/dist/src/protocol/protobuf-codec.js', import.meta.url);
const { protobufCodec: codec } = (await import(codecUrl.href)) as { protobufCodec: ServerCodec };

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

const pubPush = (ch: number, seq: number, ts: number) => ({
  type: 'pub',
  channel: `bench:ch${ch}`,
  pub: { offset: 9, data: benchData(ch, seq, ts, 'pad'), info: { user: 'u', client: 'c' }, tags: { k: 'v' } },
});

describe('scanProtobufFrame', () => {
  it('reports what readReplies reports, for every kind of Reply the server encodes', () => {
    const frame = Buffer.concat([
      codec.push(pubPush(3, 17, 1_765_000_000_123_456)),
      codec.ping,
      codec.reply(1, { method: 'connect', result: { client: 'c1', version: '0', ping: 25, pong: true } }),
      codec.push(pubPush(4, 1, 5)),
      codec.error(3, { code: 103, message: 'permission denied' }),
      codec.push({ type: 'join', channel: 'a', info: { user: 'u', client: 'c' } }),
      codec.push({ type: 'pub', channel: 'a', pub: { offset: 1, data: '{"other":1}' } }),
      codec.reply(4, { method: 'publish', result: {} }),
    ]);
    const whole = recorder();
    readReplies(frame, whole);
    const scanned = recorder();
    // Inside a bigger buffer, to check that the byte range is honoured.
    const padded = Buffer.concat([Buffer.from([0xff, 0xff]), frame, Buffer.from([0xff])]);
    scanProtobufFrame(padded, 2, 2 + frame.length, scanned.onPush, (s, e) =>
      readReplies(padded.subarray(s, e), scanned),
    );
    assert.deepEqual(scanned.log, whole.log);
    assert.deepEqual(whole.log[0], { push: [3, 17, 1_765_000_000_123_456] });
  });

  it('throws on truncated frames', () => {
    const one = codec.push(pubPush(1, 1, 1));
    assert.throws(
      () =>
        scanProtobufFrame(
          one,
          0,
          one.length - 3,
          () => undefined,
          () => undefined,
        ),
      /truncated/,
    );
    assert.throws(() =>
      scanProtobufFrame(
        Buffer.from([3, 0x22, 10, 0]),
        0,
        4,
        () => undefined,
        () => undefined,
      ),
    );
    assert.throws(() =>
      scanProtobufFrame(
        Buffer.from([0xff]),
        0,
        1,
        () => undefined,
        () => undefined,
      ),
    );
  });
});

describe('LatencyHistogram', () => {
  it('has contiguous buckets within 1/64 of their value', () => {
    for (let v = 0; v < 300_000; v += 1 + Math.floor(v / 50)) {
      const i = bucketOf(v);
      assert.ok(upperEdge(i) >= v && (i === 0 || upperEdge(i - 1) < v), `value ${v} bucket ${i}`);
      assert.ok(upperEdge(i) - v <= v / 64, `value ${v} edge ${upperEdge(i)}`);
    }
    assert.equal(bucketOf(-5), 0);
    assert.equal(bucketOf(2 ** 40), bucketOf(2 ** 32 - 1));
  });

  it('merges into the same percentiles as one histogram, close to the exact ones', () => {
    const all = new LatencyHistogram();
    const parts = [new LatencyHistogram(), new LatencyHistogram(), new LatencyHistogram()];
    const values: number[] = [];
    for (let k = 0; k < 30_000; k++) {
      const v = ((k * 7919) % 10_007) * 3 + (k % 5 === 0 ? 40_000 : 0);
      values.push(v);
      all.add(v);
      parts[k % 3]?.add(v);
    }
    const merged = new LatencyHistogram();
    for (const p of parts) merged.merge(p.snapshot());
    assert.deepEqual(merged.summary(), all.summary());
    values.sort((a, b) => a - b);
    for (const p of [50, 90, 99, 99.9]) {
      const exact = values[Math.ceil((p / 100) * values.length) - 1] as number;
      const got = merged.percentileMicros(p);
      assert.ok(got >= exact && got <= exact * (1 + 1 / 64), `p${p}: ${got} vs ${exact}`);
    }
    assert.equal(merged.summary().max, (values.at(-1) as number) / 1000);
    assert.equal(merged.count, 30_000);
  });
});

describe('RawSessionClient against the real servers', () => {
  const cases: Array<[TargetName, 'json' | 'protobuf']> = [
    ['raw', 'json'],
    ['socketio', 'json'],
    ['bulwark', 'json'],
    ['bulwark', 'protobuf'],
  ];
  for (const [target, kind] of cases) {
    it(`${target} ${kind}: the raw and the ws reader receive the same publications`, async () => {
      const server = await startServer(target, {
        bulwarkConfig: { client: { ping_interval: '1s', pong_timeout: '500ms' } },
      });
      const got = { raw: [] as number[], ws: [] as number[] };
      const clients: SessionClient[] = [];
      try {
        const raw = makeReaderClient(server, kind, 'raw', { onPush: (_c, s) => got.raw.push(s) });
        assert.ok(raw instanceof RawSessionClient);
        const ws = makeReaderClient(server, kind, 'ws', { onPush: (_c, s) => got.ws.push(s) });
        assert.ok(!(ws instanceof RawSessionClient));
        const pub = makeSessionClient(server, kind);
        clients.push(raw, ws, pub);
        for (const [i, c] of [raw, ws, pub].entries()) {
          await c.open();
          const token = connectionToken(`user-${i}`, server.tokenSecret);
          if (server.protocol === 'centrifugo') await c.connect(token);
          if (c !== pub)
            await (server.protocol === 'centrifugo' ? c.subscribe('bench:ch0') : c.subscribe('bench:ch0', token));
        }
        for (let seq = 1; seq <= 200; seq++) pub.publish('bench:ch0', benchData(0, seq, seq * 10, 'p'.repeat(seq)));
        assert.ok(
          await waitFor(() => got.raw.length === 200 && got.ws.length === 200, 5000),
          JSON.stringify(got).slice(0, 300),
        );
        assert.deepEqual(got.raw, got.ws);
        assert.deepEqual(
          got.raw,
          Array.from({ length: 200 }, (_, i) => i + 1),
        );
        if (target === 'bulwark') {
          // Pings every second; a missed pong would close the connection with 3012 after 500 ms.
          assert.ok(await waitFor(() => (raw as RawSessionClient).pings >= 2, 5000), 'two pings answered');
        }
        assert.equal(raw.closeCode, undefined);
        assert.equal((raw as RawSessionClient).lastError, undefined);
        if (server.protocol === 'centrifugo') await assert.rejects(raw.subscribe('nonamespace:x'), /error \d+/);
      } finally {
        for (const c of clients) c.terminate();
        await server.stop();
      }
    });
  }
});
