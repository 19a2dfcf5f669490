/**
 * Tests of the load generator's wire handling: the JSON.parse-free push decoder, the HS256
 * token helper, the ramp verdict, the Socket.IO packet handling, and round trips against the
 * raw-ws and Socket.IO reference servers.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import {
  benchData,
  LeanClient,
  parseBenchPush,
  parseSocketIoBenchPush,
  parseSocketIoPacket,
} from '../src/load/lean-client.js';
import { connectionToken, signHs256, verifyHs256 } from '../src/harness/jwt.js';
import { startServer } from '../src/harness/targets.js';
import { waitFor } from '../src/harness/util.js';
import type { PhaseResult } from '../src/scenarios/fanout/types.js';
import { judge } from '../src/scenarios/fanout/verdict.js';

describe('parseBenchPush', () => {
  it('decodes a Centrifugo push with the bench markers', () => {
    const line = `{"push":{"channel":"bench:ch3","pub":{"data":${benchData(3, 17, 123456789, 'xx')},"offset":5}}}`;
    assert.deepEqual(parseBenchPush(Buffer.from(line)), { channel: 3, seq: 17, sentAtMicros: 123456789 });
  });

  it('decodes one line of a multi-message frame without reading past it', () => {
    const a = `{"push":{"channel":"bench:ch1","pub":{"data":${benchData(1, 2, 30)}}}}`;
    const b = `{"push":{"channel":"bench:ch9","pub":{"data":${benchData(9, 8, 70)}}}}`;
    const buf = Buffer.from(`${a}\n${b}`);
    assert.deepEqual(parseBenchPush(buf, 0, a.length), { channel: 1, seq: 2, sentAtMicros: 30 });
    assert.deepEqual(parseBenchPush(buf, a.length + 1, buf.length), { channel: 9, seq: 8, sentAtMicros: 70 });
    // A line without markers must not borrow them from the next line.
    const c = '{"push":{"channel":"x","pub":{"data":{"other":1}}}}';
    const buf2 = Buffer.from(`${c}\n${b}`);
    assert.equal(parseBenchPush(buf2, 0, c.length), undefined);
  });

  it('rejects replies, pings and pushes without markers', () => {
    assert.equal(parseBenchPush(Buffer.from('{"id":1,"publish":{}}')), undefined);
    assert.equal(parseBenchPush(Buffer.from('{}')), undefined);
    assert.equal(parseBenchPush(Buffer.from('{"push":{"channel":"a","join":{"info":{}}}}')), undefined);
    assert.equal(parseBenchPush(Buffer.from('{"push":{"pub":{"data":{"bch":1,"bseq":"x","bts":3}}}}')), undefined);
  });
});

describe('HS256 tokens', () => {
  const secret = 'test-secret';

  it('round-trips and checks signature and expiry', () => {
    const token = connectionToken('user-1', secret);
    assert.equal(verifyHs256(token, secret)?.sub, 'user-1');
    assert.equal(verifyHs256(token, 'other-secret'), undefined);
    assert.equal(verifyHs256(signHs256({ sub: 'u', exp: 1000 }, secret), secret), undefined);
    assert.equal(verifyHs256(`${token}x`, secret), undefined);
    assert.equal(verifyHs256('a.b', secret), undefined);
    assert.equal(verifyHs256(undefined, secret), undefined);
  });

  it('produces a standard compact JWT (header alg HS256, base64url parts)', () => {
    const [h, p, s] = signHs256({ sub: 'u', exp: 2_000_000_000 }, secret).split('.');
    assert.deepEqual(JSON.parse(Buffer.from(h as string, 'base64url').toString()), { alg: 'HS256', typ: 'JWT' });
    assert.deepEqual(JSON.parse(Buffer.from(p as string, 'base64url').toString()), { sub: 'u', exp: 2_000_000_000 });
    assert.match(s as string, /^[A-Za-z0-9_-]{43}$/);
  });
});

describe('LeanClient against the raw-ws reference server', () => {
  it('subscribes with a token, receives publications in order, and is refused a bad token', async () => {
    const server = await startServer('raw');
    const clients: LeanClient[] = [];
    try {
      const got: number[] = [];
      const sub = new LeanClient({
        url: server.wsUrl,
        protocol: 'raw',
        onPush: (ch, seq) => {
          assert.equal(ch, 0);
          got.push(seq);
        },
      });
      const pub = new LeanClient({ url: server.wsUrl, protocol: 'raw' });
      clients.push(sub, pub);
      await Promise.all([sub.open(), pub.open()]);
      await sub.subscribe('bench:ch0', connectionToken('user-1', server.tokenSecret));
      for (let seq = 1; seq <= 50; seq++) pub.publish('bench:ch0', benchData(0, seq, 1));
      assert.ok(await waitFor(() => got.length === 50, 5000));
      assert.deepEqual(
        got,
        Array.from({ length: 50 }, (_, i) => i + 1),
      );

      const bad = new LeanClient({ url: server.wsUrl, protocol: 'raw' });
      clients.push(bad);
      await bad.open();
      await assert.rejects(bad.subscribe('bench:ch0', 'not-a-token'), /closed: 3500 invalid token/);
      assert.equal(bad.closeCode, 3500);
    } finally {
      for (const c of clients) c.terminate();
      await server.stop();
    }
  });
});

describe('Socket.IO packets', () => {
  it('decodes the bench markers of a push event frame in place', () => {
    const frame = `42["push","bench:ch3",${benchData(3, 17, 123456789, 'xx')}]`;
    assert.deepEqual(parseSocketIoBenchPush(Buffer.from(frame)), { channel: 3, seq: 17, sentAtMicros: 123456789 });
  });

  it('rejects acks, pings, other events and pushes without markers', () => {
    assert.equal(parseSocketIoBenchPush(Buffer.from(`431[${benchData(1, 2, 3)}]`)), undefined);
    assert.equal(parseSocketIoBenchPush(Buffer.from('2')), undefined);
    assert.equal(parseSocketIoBenchPush(Buffer.from(`42["pushed","c",${benchData(1, 2, 3)}]`)), undefined);
    assert.equal(parseSocketIoBenchPush(Buffer.from('42["push","c",{"other":1}]')), undefined);
    assert.equal(parseSocketIoBenchPush(Buffer.from('42["push","c",{"bch":1,"bseq":"x","bts":3}]')), undefined);
  });

  it('parses packet type, namespace, ack id and payload', () => {
    assert.deepEqual(parseSocketIoPacket('0{"sid":"abc"}'), { type: 0, nsp: '/', data: { sid: 'abc' } });
    assert.deepEqual(parseSocketIoPacket('312["bench:ch0"]'), { type: 3, nsp: '/', ackId: 12, data: ['bench:ch0'] });
    assert.deepEqual(parseSocketIoPacket('2["push","c",1]'), { type: 2, nsp: '/', data: ['push', 'c', 1] });
    assert.deepEqual(parseSocketIoPacket('2/admin,7["x"]'), { type: 2, nsp: '/admin', ackId: 7, data: ['x'] });
    assert.deepEqual(parseSocketIoPacket('1'), { type: 1, nsp: '/' });
    assert.throws(() => parseSocketIoPacket('51-["bin",{"_placeholder":true,"num":0}]'), /unsupported/);
    assert.throws(() => parseSocketIoPacket('2["unterminated'));
  });

  it('connects to the namespace after the Engine.IO open packet and answers pings with pongs', async () => {
    // A scripted Engine.IO server: open packet, expect "40", confirm, ping, expect the pong.
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    const port = (wss.address() as { port: number }).port;
    const received: string[] = [];
    const pong = new Promise<void>((resolve) => {
      wss.on('connection', (ws) => {
        ws.send('0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}');
        ws.on('message', (data: Buffer) => {
          const text = data.toString();
          received.push(text);
          if (text === '40') {
            ws.send('40{"sid":"n1"}');
            ws.send('2');
          } else if (text === '3') resolve();
        });
      });
    });
    const client = new LeanClient({
      url: `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`,
      protocol: 'socketio',
    });
    try {
      await client.open();
      await pong;
      assert.deepEqual(received, ['40', '3']);
      assert.equal(client.pings, 1);
    } finally {
      client.terminate();
      for (const ws of wss.clients) ws.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
  });
});

describe('LeanClient against the Socket.IO reference server', () => {
  it('subscribes with a token, receives publications in order, and is refused a bad token', async () => {
    const server = await startServer('socketio');
    const clients: LeanClient[] = [];
    try {
      assert.equal(server.protocol, 'socketio');
      const got: number[] = [];
      const sub = new LeanClient({
        url: server.wsUrl,
        protocol: 'socketio',
        onPush: (ch, seq) => {
          assert.equal(ch, 0);
          got.push(seq);
        },
      });
      const other = new LeanClient({
        url: server.wsUrl,
        protocol: 'socketio',
        onPush: () => assert.fail('wrong room'),
      });
      const pub = new LeanClient({ url: server.wsUrl, protocol: 'socketio' });
      clients.push(sub, other, pub);
      // The server's push frames, to check that each one takes the in-place decoding path.
      const frames: Buffer[] = [];
      sub.ws.on('message', (data: Buffer) => frames.push(data));
      await Promise.all([sub.open(), other.open(), pub.open()]);
      await sub.subscribe('bench:ch0', connectionToken('user-1', server.tokenSecret));
      await other.subscribe('bench:ch1', connectionToken('user-2', server.tokenSecret));
      for (let seq = 1; seq <= 50; seq++) pub.publish('bench:ch0', benchData(0, seq, 1, 'pad'));
      assert.ok(await waitFor(() => got.length === 50, 5000));
      assert.deepEqual(
        got,
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      assert.equal(sub.otherPushes, 0);
      const pushes = frames.filter((f) => f.toString().startsWith('42'));
      assert.equal(pushes.length, 50);
      pushes.forEach((f, i) =>
        assert.deepEqual(parseSocketIoBenchPush(f), { channel: 0, seq: i + 1, sentAtMicros: 1 }),
      );

      const bad = new LeanClient({ url: server.wsUrl, protocol: 'socketio' });
      clients.push(bad);
      await bad.open();
      await assert.rejects(bad.subscribe('bench:ch0', 'not-a-token'), /invalid token/);
      assert.ok(await waitFor(() => bad.closeCode !== undefined, 5000), 'the server closes a refused connection');
    } finally {
      for (const c of clients) c.terminate();
      await server.stop();
    }
  });
});

describe('ramp verdict', () => {
  const base = {
    targetRate: 1000,
    achievedRate: 999,
    latencyMs: { count: 1, mean: 1, p50: 1, p90: 1, p99: 50, p999: 60, max: 70 },
    loss: {
      expected: 10,
      missing: 0,
      subscribersWithLoss: 0,
      maxMissingPerSubscriber: 0,
      duplicates: 0,
      outOfOrder: 0,
      stale: 0,
    },
    disconnects: 0,
    publishErrors: 0,
    wrongChannel: 0,
  } as unknown as PhaseResult;

  it('passes only with p99 under the limit, zero loss and the target rate reached', () => {
    assert.deepEqual(judge(base, 100), { pass: true, reason: '' });
    assert.equal(judge({ ...base, latencyMs: { ...base.latencyMs, p99: 100 } }, 100).pass, false);
    assert.match(judge({ ...base, loss: { ...base.loss, missing: 1 } }, 100).reason, /loss 1/);
    assert.match(judge({ ...base, achievedRate: 900 }, 100).reason, /publisher reached only 900/);
    assert.equal(judge({ ...base, disconnects: 2 }, 100).pass, false);
  });
});
