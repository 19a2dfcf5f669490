/**
 * Tests of the raw reader's hand-rolled WebSocket framing (ws-frame-reader.ts, raw-ws-socket.ts)
 * on real bytes: the stream a real `ws` server writes (7-, 16- and 64-bit lengths, a fragmented
 * message with a ping between its fragments, a close) parsed whole, byte by byte and in many
 * splits; the client's masked frames, pong and close echo accepted by a real `ws` server; a
 * refused or forged upgrade; a protocol violation.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { RawWebSocket } from '../src/load/raw-ws-socket.js';
import { acceptFor, FrameReader } from '../src/load/ws-frame-reader.js';
import { waitFor } from '../src/harness/util.js';

/** What a FrameReader reported, in order, as comparable values. */
type Event = ['text' | 'binary', string] | ['ping', string] | ['close', number, string] | ['error', string];

function collector(): { events: Event[]; reader: FrameReader } {
  const events: Event[] = [];
  const reader = new FrameReader({
    onMessage: (binary, buf, start, end) =>
      events.push(
        binary ? ['binary', buf.subarray(start, end).toString('hex')] : ['text', buf.toString('utf8', start, end)],
      ),
    onPing: (p) => events.push(['ping', p.toString()]),
    onClose: (code, reason) => events.push(['close', code, reason]),
    onError: (m) => events.push(['error', m]),
  });
  return { events, reader };
}

async function wsServer(onConnection: (ws: WebSocket) => void): Promise<{ wss: WebSocketServer; port: number }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await once(wss, 'listening');
  wss.on('connection', onConnection);
  return { wss, port: (wss.address() as net.AddressInfo).port };
}

const big = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff));
const expected: Event[] = [
  ['text', 'hello'],
  ['text', 'x'.repeat(300)],
  ['binary', big.toString('hex')],
  ['ping', 'p1'],
  ['text', 'frag-afrag-bfrag-c'],
  ['close', 4001, 'bye'],
];

/** Records the bytes a real ws server writes after the upgrade until its close frame has arrived. */
async function recordServerStream(): Promise<Buffer> {
  const { wss, port } = await wsServer((ws) => {
    ws.send('hello');
    ws.send('x'.repeat(300));
    ws.send(big);
    ws.send('frag-a', { fin: false });
    ws.ping('p1');
    ws.send('frag-b', { fin: false });
    ws.send('frag-c', { fin: true });
    ws.close(4001, 'bye');
  });
  try {
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const sock = net.connect(port, '127.0.0.1');
    sock.write(
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const chunks: Buffer[] = [];
    const live = collector();
    let head = true;
    let pending = Buffer.alloc(0);
    sock.on('data', (c: Buffer) => {
      if (head) {
        pending = Buffer.concat([pending, c]);
        const at = pending.indexOf('\r\n\r\n');
        if (at === -1) return;
        // The RFC 6455 §1.3 example key and its accept value.
        assert.equal(acceptFor(key), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
        assert.ok(pending.toString('latin1', 0, at).includes(`Sec-WebSocket-Accept: ${acceptFor(key)}`));
        head = false;
        c = pending.subarray(at + 4);
      }
      chunks.push(c);
      live.reader.push(c);
      if (live.events.some((e) => e[0] === 'close')) sock.destroy();
    });
    assert.ok(await waitFor(() => sock.destroyed, 5000), 'the server stream ended with a close frame');
    assert.deepEqual(live.events, expected);
    return Buffer.concat(chunks);
  } finally {
    wss.close();
  }
}

/**
 * Feeds `stream` to a fresh reader in pieces of the given sizes (the rest in one piece), each
 * read into the same scratch memory, which is scribbled over after every push — as net's
 * `onread` reuses one buffer — so a reader that kept a reference to a chunk would fail.
 */
function replay(stream: Buffer, sizes: Iterable<number>): Event[] {
  const { events, reader } = collector();
  const scratch = Buffer.alloc(stream.length + 16);
  const feed = (from: number, to: number) => {
    stream.copy(scratch, 8, from, to);
    reader.push(scratch, 8, 8 + to - from);
    scratch.fill(0xa5);
  };
  let pos = 0;
  for (const n of sizes) {
    if (pos >= stream.length) break;
    feed(pos, Math.min(stream.length, pos + n));
    pos += n;
  }
  if (pos < stream.length) feed(pos, stream.length);
  return events;
}

describe('FrameReader on a real ws server’s byte stream', () => {
  it('parses 7-, 16- and 64-bit lengths, fragments, ping and close, whole or split anywhere', async () => {
    const stream = await recordServerStream();
    assert.deepEqual(replay(stream, []), expected, 'whole');
    assert.deepEqual(replay(stream, Array(stream.length).fill(1) as number[]), expected, 'byte by byte');
    // Every split point of the first frames and around the 64-bit frame's header, in two pieces.
    const bigAt = stream.indexOf(Buffer.from([0x82, 127]));
    assert.ok(bigAt > 0);
    const points = [...Array(400).keys(), ...Array.from({ length: 30 }, (_, i) => bigAt - 5 + i)];
    for (const p of points) assert.deepEqual(replay(stream, [p]), expected, `split at ${p}`);
    // Deterministic pseudo-random chunk sizes (an LCG), 1 … 3000 bytes.
    for (let seed = 1; seed <= 20; seed++) {
      let x = seed;
      const sizes = function* () {
        for (;;) {
          x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
          yield 1 + (x % 3000);
        }
      };
      assert.deepEqual(replay(stream, sizes()), expected, `seed ${seed}`);
    }
  });

  it('hands back several frames of one chunk in place, without copying', () => {
    const chunk = Buffer.from([0x81, 2, 0x61, 0x62, 0x82, 1, 0xff]);
    const seen: Array<[boolean, Buffer, number, number]> = [];
    const reader = new FrameReader({
      onMessage: (binary, buf, start, end) => seen.push([binary, buf, start, end]),
      onPing: () => assert.fail('no ping'),
      onClose: () => assert.fail('no close'),
      onError: (m) => assert.fail(m),
    });
    reader.push(chunk);
    assert.deepEqual(
      seen.map(([b, buf, s, e]) => [b, buf === chunk, s, e]),
      [
        [false, true, 2, 4],
        [true, true, 6, 7],
      ],
    );
  });

  it('fails on a masked server frame, set RSV bits and a stray continuation', () => {
    for (const bytes of [
      [0x81, 0x81, 1, 2, 3, 4, 0x61],
      [0xc1, 1, 0x61],
      [0x80, 1, 0x61],
    ]) {
      const { events, reader } = collector();
      reader.push(Buffer.from(bytes));
      reader.push(Buffer.from([0x81, 1, 0x61])); // ignored after the error
      assert.equal(events.length, 1);
      assert.equal(events[0]?.[0], 'error');
    }
  });
});

describe('RawWebSocket against a real ws server', () => {
  it('sends masked text and binary frames of every length class, answers a ping, echoes the close', async () => {
    const got: Array<[boolean, string]> = [];
    let pong = '';
    let serverCloseCode = 0;
    const { wss, port } = await wsServer((ws) => {
      ws.on('message', (data: Buffer, isBinary) => {
        got.push([isBinary, isBinary ? data.toString('hex') : data.toString()]);
        if (got.length === 4) ws.ping('pp');
      });
      ws.on('pong', (p) => {
        pong = p.toString();
        ws.send('bye-soon');
        ws.close(4002, 'done');
      });
      ws.on('close', (code) => (serverCloseCode = code));
    });
    try {
      const messages: string[] = [];
      let closed: [number, string] | undefined;
      const c = new RawWebSocket({
        url: `ws://127.0.0.1:${port}/path?q=1`,
        onMessage: (_b, buf, s, e) => messages.push(buf.toString('utf8', s, e)),
        onClose: (code, reason) => (closed = [code, reason]),
      });
      await c.opened;
      assert.equal(c.isOpen, true);
      c.send('a');
      c.send('b'.repeat(200));
      c.send(new Uint8Array(big));
      c.send('');
      assert.ok(await waitFor(() => closed !== undefined, 5000));
      assert.deepEqual(got, [
        [false, 'a'],
        [false, 'b'.repeat(200)],
        [true, big.toString('hex')],
        [false, ''],
      ]);
      assert.equal(pong, 'pp');
      assert.equal(c.pings, 1);
      assert.deepEqual(messages, ['bye-soon']);
      assert.deepEqual(closed, [4002, 'done']);
      assert.ok(await waitFor(() => serverCloseCode !== 0, 2000));
      assert.equal(serverCloseCode, 4002, 'the client echoed the close code');
    } finally {
      wss.close();
    }
  });

  it('refuses an upgrade answered with another status or a forged Sec-WebSocket-Accept', async () => {
    const refuse = http.createServer((_req, res) => res.writeHead(403).end());
    refuse.listen(0, '127.0.0.1');
    await once(refuse, 'listening');
    const forge = net.createServer((s) => {
      s.once('data', () =>
        s.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n',
        ),
      );
    });
    forge.listen(0, '127.0.0.1');
    await once(forge, 'listening');
    try {
      for (const [srv, re] of [
        [refuse, /Unexpected server response: 403/],
        [forge, /invalid Sec-WebSocket-Accept/],
      ] as const) {
        let closeCode = 0;
        const c = new RawWebSocket({
          url: `ws://127.0.0.1:${(srv.address() as net.AddressInfo).port}/`,
          onMessage: () => assert.fail('no message'),
          onClose: (code) => (closeCode = code),
        });
        await assert.rejects(c.opened, re);
        assert.equal(closeCode, 1006);
      }
    } finally {
      refuse.close();
      forge.close();
    }
  });
});
