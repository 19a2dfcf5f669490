/**
 * When a connection's deadlines close it, as a raw TCP client sees it (issue 12, item 6): the
 * close frame of a stale connection (3502), a missing pong (3012) and an expired token (3005)
 * arrives within one timer-wheel step (100 ms) after the deadline, and the TCP connection ends
 * right after it when the peer answers the close handshake, or `closeHandshakeTimeoutMs`
 * (5 s) later when it does not. The client here speaks WebSocket framing itself, so it can
 * refuse to answer the close frame as a hostile client would.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { closeHandshakeTimeoutMs } from '../src/transport/transport-ws.js';
import { startTestServer, waitUntil, type TestServer } from './helpers/server.js';

/** The node's timer wheel step (node.ts). */
const step = 100;
/** What a shared, busy test machine may add to a timer (event-loop delay, scheduling). */
const slack = 80;

/** Observed is what a raw client saw, in Date.now() ms. */
interface Observed {
  open: number;
  connectReply?: number;
  ping?: number;
  closeFrame?: number;
  closeCode?: number;
  tcpEnd?: number;
}

/** frame builds one masked client frame. */
function frame(opcode: number, payload: Buffer | string): Buffer {
  const p = Buffer.from(payload);
  const mask = randomBytes(4);
  const masked = Buffer.alloc(p.length);
  for (let i = 0; i < p.length; i++) masked[i] = p[i]! ^ mask[i % 4]!;
  if (p.length > 0xffff) throw new Error('frames under 64 KiB only');
  const head =
    p.length < 126
      ? Buffer.from([0x80 | opcode, 0x80 | p.length])
      : Buffer.from([0x80 | opcode, 0x80 | 126, p.length >> 8, p.length & 0xff]);
  return Buffer.concat([head, mask, masked]);
}

/**
 * rawTcpClient upgrades a TCP connection, sends `connect` with `token` (if given), answers
 * pings only if `pong`, the close frame only if `answerClose`, and records when things happen.
 */
function rawTcpClient(port: number, opts: { token?: string; answerClose: boolean; pong?: boolean }): Promise<Observed> {
  return new Promise((resolve, reject) => {
    const seen: Observed = { open: 0 };
    const sock = tcpConnect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    sock.on('connect', () => {
      sock.write(
        'GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    sock.on('data', (data: Buffer) => {
      buf = Buffer.concat([buf, data]);
      if (seen.open === 0) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!buf.subarray(0, 12).toString().includes('101')) return reject(new Error(buf.toString()));
        seen.open = Date.now();
        buf = buf.subarray(end + 4);
        if (opts.token !== undefined) sock.write(frame(1, JSON.stringify({ id: 1, connect: { token: opts.token } })));
      }
      while (buf.length >= 2) {
        const opcode = buf[0]! & 0x0f;
        const len = buf[1]! & 0x7f;
        const off = len === 126 ? 4 : 2;
        const size = len === 126 ? buf.readUInt16BE(2) : len;
        if (buf.length < off + size) return;
        const payload = buf.subarray(off, off + size);
        buf = buf.subarray(off + size);
        if (opcode === 8) {
          seen.closeFrame = Date.now();
          seen.closeCode = payload.readUInt16BE(0);
          if (opts.answerClose) sock.write(frame(8, payload.subarray(0, 2)));
        } else if (opcode === 1) {
          const text = payload.toString();
          if (text === '{}') {
            seen.ping ??= Date.now();
            if (opts.pong === true) sock.write(frame(1, '{}'));
          } else if (text.includes('"connect"')) seen.connectReply = Date.now();
        }
      }
    });
    sock.on('end', () => sock.end());
    sock.on('close', () => {
      seen.tcpEnd = Date.now();
      resolve(seen);
    });
    sock.on('error', () => undefined); // close follows
  });
}

/** assertOnTime checks that `at` is not before `due` and at most one step (+ slack) after it. */
function assertOnTime(what: string, at: number | undefined, due: number): void {
  assert.ok(at !== undefined, `${what}: never happened`);
  const late = at - due;
  // -20: the client's clock reading of the upgrade trails the server's by a little.
  assert.ok(late >= -20 && late <= step + slack, `${what}: ${late} ms after it was due (bound ${step} ms)`);
}

describe('deadlines close on time, over real sockets', () => {
  let srv: TestServer;

  before(async () => {
    srv = await startTestServer({
      client: {
        stale_close_delay: '500ms',
        ping_interval: '600ms',
        pong_timeout: '300ms',
        expired_close_delay: '200ms',
      },
      protection: { shedding: { enabled: false } },
    });
  });
  after(() => srv.close());

  it('stale (3502), no pong (3012) and expiry (3005): the close frame within one step; TCP per the handshake', async () => {
    const expireAtSec = Math.ceil(Date.now() / 1000) + 1;
    const expiring = await srv.token('exp', { expireAt: expireAtSec });
    const token = await srv.token('silent');
    const [staleOk, staleHostile, pongOk, pongHostile, expired] = await Promise.all([
      rawTcpClient(srv.port, { answerClose: true }),
      rawTcpClient(srv.port, { answerClose: false }),
      rawTcpClient(srv.port, { token, answerClose: true }),
      rawTcpClient(srv.port, { token, answerClose: false }),
      rawTcpClient(srv.port, { token: expiring, answerClose: true, pong: true }),
    ]);

    for (const [name, s] of [
      ['stale', staleOk],
      ['stale, hostile', staleHostile],
    ] as const) {
      assert.equal(s.closeCode, 3502, name);
      assertOnTime(`${name}: close frame`, s.closeFrame, s.open + 500);
    }
    for (const [name, s] of [
      ['no pong', pongOk],
      ['no pong, hostile', pongHostile],
    ] as const) {
      assert.equal(s.closeCode, 3012, name);
      assert.ok(s.connectReply !== undefined && s.ping !== undefined, `${name}: connected and pinged`);
      assertOnTime(`${name}: ping`, s.ping, s.connectReply + 600);
      assertOnTime(`${name}: close frame`, s.closeFrame, s.ping + 300);
    }
    assert.equal(expired.closeCode, 3005, 'expired');
    assertOnTime('expired: close frame', expired.closeFrame, expireAtSec * 1000 + 200);

    // The peer that answers the close handshake sees the TCP connection end with it.
    for (const s of [staleOk, pongOk, expired]) {
      assert.ok(s.tcpEnd! - s.closeFrame! <= 50, `TCP ended ${s.tcpEnd! - s.closeFrame!} ms after the close frame`);
    }
    // The one that ignores it: the server destroys the socket closeHandshakeTimeoutMs later.
    for (const s of [staleHostile, pongHostile]) {
      const wait = s.tcpEnd! - s.closeFrame!;
      assert.ok(
        wait >= closeHandshakeTimeoutMs - 20 && wait <= closeHandshakeTimeoutMs + slack,
        `TCP ended ${wait} ms after an unanswered close frame (bound ${closeHandshakeTimeoutMs} ms)`,
      );
    }
    await waitUntil(() => srv.node.hub.numClients === 0, 1000, 'sessions gone');
  });
});
