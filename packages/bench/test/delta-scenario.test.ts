/**
 * Tests of the delta scenario's parts: the board it publishes, the frame-header arithmetic of
 * its byte counts, its subscriber against a scripted server (JSON: replies settle, pings are
 * answered, publications and deltas counted, bytes summed), and its checks.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { BoardSubscriber, wsHeaderBytes } from '../src/load/board-subscriber.js';
import { Board } from '../src/scenarios/delta/run.js';
import type { DeltaResult, DeltaRun } from '../src/scenarios/delta/types.js';
import { deltaChecks } from '../src/scenarios/delta/verdict.js';
import { waitFor } from '../src/harness/util.js';

describe('delta scenario', () => {
  it('a board is about 2 KB of JSON and each edit changes little of it', () => {
    const board = new Board(3, 16);
    const a = board.edit();
    const b = board.edit();
    assert.ok(a.length > 1800 && a.length < 2600, `board is ${a.length} bytes`);
    type Cells = { step: number; cells: unknown[] };
    const [pa, pb] = [JSON.parse(a) as Cells, JSON.parse(b) as Cells];
    assert.equal(pb.step, pa.step + 1);
    const changed = pa.cells.filter((c, i) => JSON.stringify(c) !== JSON.stringify(pb.cells[i]));
    assert.equal(changed.length, 1, 'one cell edited');
    assert.notEqual(a, b);
  });

  it('counts frame headers as the server writes them (unmasked)', () => {
    assert.equal(wsHeaderBytes(0), 2);
    assert.equal(wsHeaderBytes(125), 2);
    assert.equal(wsHeaderBytes(126), 4);
    assert.equal(wsHeaderBytes(65_535), 4);
    assert.equal(wsHeaderBytes(65_536), 10);
  });

  it('the JSON subscriber asks for delta, answers pings and counts publications, deltas and bytes', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    const sent: string[] = [];
    const commands: unknown[] = [];
    wss.on('connection', (ws) => {
      const send = (text: string) => {
        sent.push(text);
        ws.send(text);
      };
      ws.on('message', (raw) => {
        const text = raw.toString();
        if (text === '{}') {
          commands.push('pong');
          return;
        }
        const cmd = JSON.parse(text) as { id: number; connect?: object; subscribe?: object };
        commands.push(cmd);
        if (cmd.connect) send(`{"id":${cmd.id},"connect":{"client":"c","version":"x","pong":true}}`);
        if (cmd.subscribe) {
          send(`{"id":${cmd.id},"subscribe":{"delta":true}}`);
          send('{}');
          send(
            '{"push":{"channel":"board:ch0","pub":{"data":"{\\"a\\":1}","offset":1}}}\n' +
              '{"push":{"channel":"board:ch0","pub":{"data":"3\\n1:2...","offset":2,"delta":true}}}',
          );
          send('{"push":{"channel":"board:ch0","join":{"info":{"user":"u","client":"c"}}}}');
        }
      });
    });
    const port = (wss.address() as AddressInfo).port;
    const s = new BoardSubscriber(`ws://127.0.0.1:${port}/connection/websocket`, 'json');
    try {
      await s.start('token', 'board:ch0', true);
      assert.ok(await waitFor(() => s.pubs === 2 && commands.includes('pong'), 2000, 5));
      assert.equal(s.deltas, 1);
      assert.deepEqual(commands[1], { id: 2, subscribe: { channel: 'board:ch0', delta: 'fossil' } });
      await waitFor(() => sent.length === 5, 2000, 5);
      const expected = sent.reduce((a, t) => a + Buffer.byteLength(t) + wsHeaderBytes(Buffer.byteLength(t)), 0);
      assert.ok(await waitFor(() => s.bytes === expected, 2000, 5), `${s.bytes} bytes, expected ${expected}`);
    } finally {
      s.terminate();
      wss.close();
    }
  });
});

describe('deltaChecks', () => {
  const run = (label: string, delta: boolean, delivered: number): DeltaRun => ({
    label,
    format: 'json',
    delta,
    published: 10,
    dataBytes: 2000,
    expectedDeliveries: 100,
    delivered,
    deltaDeliveries: delta ? 90 : 0,
    wireBytesPerDelivery: delta ? 300 : 2100,
    serverCpuMicrosPerDelivery: 10,
    serverCpuPercent: 10,
    loadgenCpuPercent: 10,
    disconnects: 0,
  });
  const outcome = (result: DeltaResult) => ({ bulwark: { result } });

  it('passes when every delivery arrived and deltas at most halve the bytes', () => {
    const checks = deltaChecks(
      outcome({
        runs: [run('JSON, full', false, 100), run('JSON, delta', true, 100)],
        comparisons: [{ format: 'json', bytesRatio: 0.14, cpuRatio: 1.2 }],
      }),
    );
    assert.equal(checks.length, 3);
    assert.ok(checks.every((c) => c.pass));
  });

  it('fails on a missing delivery, or deltas that save too little', () => {
    const checks = deltaChecks(
      outcome({
        runs: [run('JSON, full', false, 100), run('JSON, delta', true, 99)],
        comparisons: [{ format: 'json', bytesRatio: 0.7, cpuRatio: 1 }],
      }),
    );
    assert.deepEqual(
      checks.map((c) => c.pass),
      [true, false, false],
    );
  });
});
