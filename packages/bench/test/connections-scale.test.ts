/**
 * Tests of the connections-scale scenario: the capacity arithmetic (workers, load processes,
 * source addresses), error naming, the verdicts, the orphan guard, and the connection fleet
 * (forked load processes) against a small in-process WebSocket server whose behaviour is known:
 * it refuses the first upgrades with 503, refuses two users' subscriptions, then closes a few
 * connections and pings the rest.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  errorKind,
  FIRST_SOURCE_PORT,
  MAX_PER_SOURCE_ADDRESS,
  sourceEndpoint,
} from '../src/load/conn-worker-protocol.js';
import { ConnFleet, splitRange } from '../src/load/conn-fleet.js';
import { verifyHs256 } from '../src/harness/jwt.js';
import { OrphanGuard } from '../src/harness/orphans.js';
import { readRssBytes, readTreeRssBytes, treePids } from '../src/harness/proc.js';
import { waitFor } from '../src/harness/util.js';
import { fdCapacity, loadProcessesFor, sourceIpsFor } from '../src/scenarios/connections-scale/options.js';
import { judgeConnectionsScale, perConnection } from '../src/scenarios/connections-scale/verdict.js';
import { peakRate } from '../src/scenarios/connections-scale/report.js';
import { type ConnectionsScaleResult } from '../src/scenarios/connections-scale/types.js';

describe('capacity arithmetic', () => {
  it("computes Bulwark's per-worker cap from the open-file limit and the workers 100,000 need", () => {
    const c = fdCapacity(100_000, 20_000);
    assert.equal(c.perWorkerCap, 15_948); // floor(19,936 / 1.25)
    // 100,000 / (15,948 × 0.9) = 6.97 → 7 workers (6 would hold only 95,688).
    assert.equal(c.workersNeeded, 7);
    assert.equal(fdCapacity(40_000, 20_000).workersNeeded, 3);
    assert.equal(fdCapacity(5_000, 20_000).workersNeeded, 1);
    assert.equal(fdCapacity(100_000, 20_000, 2).perWorkerCap, 9_968);
  });

  it('sizes load processes at ≤ 18,000 sockets (at least 2) and source addresses at ≤ 20,000', () => {
    assert.equal(loadProcessesFor(5_000), 2);
    assert.equal(loadProcessesFor(36_000), 2);
    assert.equal(loadProcessesFor(36_001), 3);
    assert.equal(loadProcessesFor(100_000), 6);
    assert.equal(sourceIpsFor(5_000), 1);
    assert.equal(sourceIpsFor(100_000), 5);
    assert.equal(sourceIpsFor(100_001), 6);
  });

  it('splits indices into contiguous slices covering each index once', () => {
    assert.deepEqual(splitRange(10, 3), [
      [0, 4],
      [4, 7],
      [7, 10],
    ]);
    const slices = splitRange(100_000, 6);
    assert.equal(slices[0]?.[0], 0);
    assert.equal(slices[5]?.[1], 100_000);
    for (let k = 1; k < slices.length; k++) assert.equal(slices[k]?.[0], slices[k - 1]?.[1]);
  });

  it('spreads connections over source addresses round-robin, each with its own port', () => {
    assert.deepEqual(sourceEndpoint('127.9.8', 5, 0), { localAddress: '127.9.8.1', localPort: FIRST_SOURCE_PORT });
    assert.deepEqual(sourceEndpoint('127.9.8', 5, 4), { localAddress: '127.9.8.5', localPort: FIRST_SOURCE_PORT });
    assert.deepEqual(sourceEndpoint('127.9.8', 5, 5), { localAddress: '127.9.8.1', localPort: FIRST_SOURCE_PORT + 1 });
    // 100,000 over 5 addresses: the last port stays in range.
    assert.equal(sourceEndpoint('127.9.8', 5, 99_999)?.localPort, FIRST_SOURCE_PORT + 19_999);
    assert.ok(FIRST_SOURCE_PORT + MAX_PER_SOURCE_ADDRESS - 1 <= 65_535);
    assert.equal(sourceEndpoint('127.9.8', 0, 3), undefined);
  });

  it('computes per-connection growth and the peak of a rate series', () => {
    assert.equal(perConnection(100 * 1024, 1100 * 1024, 1000), 1024);
    assert.ok(Number.isNaN(perConnection(1, 2, 0)));
    assert.equal(
      peakRate({
        label: 'r',
        points: [
          [0, 3],
          [1, 9],
          [2, 4],
        ],
      }),
      9,
    );
    assert.equal(peakRate({ label: 'r', points: [] }), 0);
  });
});

describe('errorKind', () => {
  it('names errors without what differs between connections', () => {
    assert.equal(errorKind('could not open ws://127.0.0.1:1/x: Unexpected server response: 503'), 'HTTP 503');
    assert.equal(
      errorKind('could not open ws://h/x: connect EADDRNOTAVAIL 127.3.4.1 - Local (127.3.4.1:0)'),
      'EADDRNOTAVAIL',
    );
    assert.equal(errorKind('could not open ws://h/x: read ECONNRESET'), 'ECONNRESET');
    assert.equal(errorKind('timeout after 15000 ms waiting for reply 2'), 'timeout');
    assert.equal(errorKind('error 103: permission denied'), 'reply error 103');
    assert.equal(errorKind('connection closed: 3501 bad request'), 'closed 3501');
    assert.equal(errorKind('could not open ws://h/x: closed with 1006'), 'closed 1006');
    assert.equal(errorKind('something 12 odd 345'), 'something N odd N');
  });
});

function result(over: Partial<ConnectionsScaleResult['hold']> = {}, connected = 1000): ConnectionsScaleResult {
  const lat = { count: connected, mean: 50, p50: 40, p90: 90, p99: 200, p999: 300, max: 400 };
  return {
    requested: 1000,
    connected,
    failed: 1000 - connected,
    rejectedRetried: 0,
    errors: {},
    loadProcessDeaths: [],
    connectSeconds: 1,
    connectRate: connected,
    peakConnectRate: connected,
    handshakeMs: lat,
    server: {
      processes: 3,
      clientsPerWorker: [500, 500],
      rssBeforeBytes: 0,
      rssAfterConnectBytes: 0,
      rssAfterHoldBytes: 0,
      rssPerConnectionBytes: 12 * 1024,
      cpuMicrosPerConnect: 500,
      primaryCpuMicrosPerConnect: 100,
      cpuPercent: 50,
      holdCpuPercent: 5,
    },
    loadgen: { processes: 2, rssBeforeBytes: 0, rssBytes: [1, 1], rssPerConnectionBytes: 1, cpuMicrosPerConnect: 1 },
    hold: {
      seconds: 10,
      closedBefore: 0,
      openAtStart: connected,
      openAtEnd: connected,
      closedDuring: 0,
      closeCodes: {},
      pinged: 0,
      pings: 0,
      ...over,
    },
    teardown: { closeMs: 1, killedLoadProcesses: 0, killedServerProcesses: 0 },
    kernel: { tcpRetransSegs: 0, tcpLossProbes: 0, zeroWindow: 0, listenDrops: 0, backlogDrops: 0, softnetDrops: 0 },
  };
}

describe('judgeConnectionsScale', () => {
  const limits = { rssPerConnectionKiB: 16, handshakeP99Ms: 1000 };

  it('passes a run where everything connected and stayed open', () => {
    const checks = judgeConnectionsScale(result(), limits);
    assert.equal(checks.length, 4);
    assert.ok(checks.every((c) => c.pass));
  });

  it('fails on a missing connection, a close, memory and latency over the limits', () => {
    const fail = (r: ConnectionsScaleResult, l = limits) =>
      judgeConnectionsScale(r, l)
        .filter((c) => !c.pass)
        .map((c) => c.name);
    assert.deepEqual(fail(result({}, 999)), ['connections established']);
    assert.deepEqual(fail(result({ closedDuring: 1 })), ['established connections closed before the end of the hold']);
    assert.deepEqual(fail(result({ closedBefore: 2 })), ['established connections closed before the end of the hold']);
    assert.deepEqual(fail(result(), { rssPerConnectionKiB: 11.9, handshakeP99Ms: 1000 }), [
      'server RSS per idle connection (process tree)',
    ]);
    assert.deepEqual(fail(result(), { rssPerConnectionKiB: 16, handshakeP99Ms: 199 }), [
      'handshake p99 (open → subscribed)',
    ]);
  });

  it('requires every connection to answer a ping only when the hold outlasts the ping interval', () => {
    assert.equal(judgeConnectionsScale(result({ seconds: 27 }), limits).length, 4);
    const checks = judgeConnectionsScale(result({ seconds: 30, pinged: 998 }), limits);
    const ping = checks.find((c) => c.name === 'connections that answered a server ping');
    assert.equal(ping?.pass, false);
    assert.equal(
      judgeConnectionsScale(result({ seconds: 30, pinged: 1000 }), limits).every((c) => c.pass),
      true,
    );
  });
});

describe('process trees', () => {
  it('sums RSS over a tree and kills what is left of it after its root died', async () => {
    const root = spawn('sh', ['-c', 'sleep 30 & wait'], { stdio: 'ignore' });
    const pid = root.pid as number;
    assert.ok(await waitFor(() => treePids(pid).length === 2, 5000));
    assert.ok(readTreeRssBytes(pid) > readRssBytes(pid));
    const guard = new OrphanGuard(pid);
    assert.equal(guard.pids.length, 2);
    const exited = new Promise((resolve) => root.once('exit', resolve));
    root.kill('SIGKILL');
    await exited;
    // The root is gone (reaped); its child, reparented, still runs until the guard kills it.
    assert.deepEqual(guard.left(), guard.pids.slice(1));
    assert.equal(await guard.release(100), 1);
    assert.ok(await waitFor(() => guard.left().length === 0, 5000));
  });
});

/**
 * A tiny Centrifugo-like server: refuses the first `refuseFirst` upgrades with 503, answers
 * connect, and refuses subscribe for users in `deniedUsers` with error 103.
 */
class KnownServer {
  readonly sockets = new Set<WebSocket>();
  readonly byAddress: Record<string, number> = {};
  /** Source address:port of the accepted connections. */
  readonly sources = new Set<string>();
  pongs = 0;
  refused = 0;
  private readonly http = http.createServer();
  private readonly wss: WebSocketServer;

  constructor(
    private readonly secret: string,
    private readonly refuseFirst: number,
    private readonly deniedUsers: Set<string>,
  ) {
    this.wss = new WebSocketServer({
      server: this.http,
      verifyClient: (_info, cb) => {
        if (this.refused < this.refuseFirst) {
          this.refused++;
          cb(false, 503, 'Service Unavailable');
        } else cb(true);
      },
    });
    this.wss.on('connection', (ws, req) => {
      this.sources.add(`${req.socket.remoteAddress}:${req.socket.remotePort}`);
      this.onConnection(ws, req.socket.remoteAddress ?? '?');
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', resolve));
    return (this.http.address() as AddressInfo).port;
  }

  private onConnection(ws: WebSocket, address: string): void {
    let user = '';
    this.byAddress[address] = (this.byAddress[address] ?? 0) + 1;
    ws.on('message', (data: Buffer) => {
      const text = data.toString();
      if (text === '{}') {
        this.pongs++;
        return;
      }
      const msg = JSON.parse(text) as { id: number; connect?: { token: string }; subscribe?: object };
      if (msg.connect) {
        user = String(verifyHs256(msg.connect.token, this.secret)?.sub);
        ws.send(`{"id":${msg.id},"connect":{"client":"c"}}`);
      } else if (msg.subscribe) {
        if (this.deniedUsers.has(user)) {
          ws.send(`{"id":${msg.id},"error":{"code":103,"message":"permission denied"}}`);
        } else {
          this.sockets.add(ws);
          ws.send(`{"id":${msg.id},"subscribe":{}}`);
        }
      }
    });
    ws.on('close', () => this.sockets.delete(ws));
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}

describe('ConnFleet against a server with known behaviour', () => {
  const secret = 'fleet-test-secret';
  const server = new KnownServer(secret, 3, new Set(['user-7', 'user-77']));
  let port = 0;
  before(async () => {
    port = await server.listen();
  });
  after(() => server.close());

  it('opens, counts, snapshots and closes connections spread over processes and addresses', async () => {
    const prefix = `127.${1 + randomInt(254)}.${randomInt(256)}`;
    // Connection 0's assigned source port is taken: it must still connect (kernel-chosen port).
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(FIRST_SOURCE_PORT, `${prefix}.1`, resolve));
    const progressConnected: number[] = [];
    const fleet = await ConnFleet.start(
      {
        processes: 2,
        total: 200,
        url: `ws://127.0.0.1:${port}/`,
        tokenSecret: secret,
        concurrency: 20,
        channels: 10,
        sourcePrefix: prefix,
        sourceIps: 2,
        timeoutMs: 5000,
        retries: 3,
      },
      (p) => progressConnected.push(p.connected),
    );
    try {
      assert.equal(fleet.pids.length, 2);
      await fleet.done;
      // 200 connections: 2 refused subscriptions fail, 3 upgrades refused with 503 were retried.
      assert.equal(fleet.connected, 198);
      assert.equal(fleet.failed, 2);
      assert.deepEqual(fleet.errors, { 'reply error 103': 2 });
      assert.equal(fleet.rejected, 3);
      assert.equal(
        progressConnected.reduce((a, b) => a + b, 0),
        198,
      );
      // Round-robin over 127.0.0.1 and 127.0.0.2 (every upgrade accepted in the end).
      assert.deepEqual(server.byAddress, { [`${prefix}.1`]: 100, [`${prefix}.2`]: 100 });
      // Connection 2 got its assigned port; connection 0, whose port was taken, another one.
      assert.ok(server.sources.has(`${prefix}.1:${FIRST_SOURCE_PORT + 1}`));
      assert.ok(!server.sources.has(`${prefix}.1:${FIRST_SOURCE_PORT}`));
      assert.ok(server.sources.has(`${prefix}.2:${FIRST_SOURCE_PORT}`));
      assert.equal(server.sockets.size, 198);

      const s0 = await fleet.snapshot();
      assert.deepEqual(s0, { open: 198, closed: 0, closeCodes: {}, pinged: 0, pings: 0 });
      // The server closes five connections and pings every other one once.
      const all = [...server.sockets];
      for (const ws of all.slice(0, 5)) ws.close(3001, 'shutdown');
      for (const ws of all.slice(5)) ws.send('{}');
      assert.ok(await waitFor(() => server.pongs === 193, 5000), `pongs ${server.pongs}`);
      // The pongs can come back before the load processes have seen the five close frames.
      let s1 = await fleet.snapshot();
      for (const deadline = Date.now() + 5000; s1.closed < 5 && Date.now() < deadline;) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        s1 = await fleet.snapshot();
      }
      assert.deepEqual(s1, { open: 193, closed: 5, closeCodes: { 3001: 5 }, pinged: 193, pings: 193 });

      const closed = await fleet.close(5000);
      assert.equal(closed.killed, 0);
      assert.equal(fleet.running, 0);
      assert.ok(await waitFor(() => server.sockets.size === 0, 5000));
      assert.deepEqual(fleet.deaths, []);
    } finally {
      fleet.kill();
      squatter.close();
    }
  });
});
