/**
 * Tests of the rolling-restart scenario's measurements: the SDK backoff, the load balancer
 * stand-in, reading a push's stream offset, the reconnect rate (sliding peak and buckets),
 * exact completeness with unconfirmed publications, the verdicts, and the tiny Redis protocol
 * reader used to clean up.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { AddressPool } from '../src/load/address-pool.js';
import { reconnectDelayMs } from '../src/load/backoff.js';
import { benchData } from '../src/load/lean-client.js';
import { isTerminalClose, readPubOffset, RecoveringClient } from '../src/load/recovering-client.js';
import { SeqTracker, type LatencySummary } from '../src/harness/stats.js';
import { waitFor } from '../src/harness/util.js';
import { judgeCompleteness, peakPerWindow, rollingChecks, spanOf } from '../src/scenarios/rolling-restart/verdict.js';
import { rateSeries } from '../src/scenarios/rolling-restart/report.js';
import { type RestartResult, type RollingOptions, type RollingResult } from '../src/scenarios/rolling-restart/types.js';

describe('reconnectDelayMs (centrifuge-js backoff with full jitter)', () => {
  it('first attempt: 500 ms plus up to 500 ms of jitter', () => {
    assert.equal(
      reconnectDelayMs(0, 500, 20_000, () => 0),
      500,
    );
    assert.equal(
      reconnectDelayMs(0, 500, 20_000, () => 0.999999),
      1000,
    );
    assert.equal(
      reconnectDelayMs(0, 500, 20_000, () => 0.5),
      750,
    );
  });

  it('the jitter ceiling doubles per failed attempt', () => {
    assert.equal(
      reconnectDelayMs(1, 500, 20_000, () => 0.999999),
      1500,
    );
    assert.equal(
      reconnectDelayMs(2, 500, 20_000, () => 0.999999),
      2500,
    );
    assert.equal(
      reconnectDelayMs(3, 500, 20_000, () => 0.999999),
      4500,
    );
  });

  it('never exceeds the maximum, even for huge steps', () => {
    assert.equal(
      reconnectDelayMs(10, 500, 20_000, () => 0.999999),
      20_000,
    );
    assert.equal(
      reconnectDelayMs(1000, 500, 20_000, () => 0.999999),
      20_000,
    );
    assert.equal(
      reconnectDelayMs(1000, 500, 20_000, () => 0),
      500,
    );
  });
});

describe('AddressPool', () => {
  it('hands out addresses round-robin and follows membership changes', () => {
    const pool = new AddressPool(['a', 'b']);
    assert.deepEqual([pool.pick(), pool.pick(), pool.pick()], ['a', 'b', 'a']);
    pool.remove('a');
    assert.deepEqual([pool.pick(), pool.pick()], ['b', 'b']);
    pool.add('c');
    pool.add('c');
    assert.deepEqual(pool.urls, ['b', 'c']);
    const two = [pool.pick(), pool.pick()].sort();
    assert.deepEqual(two, ['b', 'c']);
    pool.remove('b');
    pool.remove('c');
    assert.equal(pool.pick(), undefined);
  });
});

describe('readPubOffset', () => {
  const line = (s: string) => Buffer.from(s);

  it('reads the offset of an API publication push', () => {
    const push = '{"push":{"channel":"rr:ch3","pub":{"data":{"bch":3,"bseq":17,"bts":123456},"offset":42}}}';
    assert.equal(readPubOffset(line(push)), 42);
  });

  it('reads it after a client info and stops at the next field', () => {
    const push =
      '{"push":{"channel":"c","pub":{"data":{"bch":0,"bseq":1,"bts":5},"info":{"user":"u","client":"x"},"offset":7,"tags":{"a":"1"}}}}';
    assert.equal(readPubOffset(line(push)), 7);
  });

  it('is 0 without an offset, and only looks inside [start, end)', () => {
    assert.equal(readPubOffset(line('{"push":{"channel":"c","pub":{"data":{"bch":0}}}}')), 0);
    const a = '{"push":{"channel":"c","pub":{"data":{}}}}';
    const b = '{"push":{"channel":"c","pub":{"data":{},"offset":9}}}';
    const buf = Buffer.from(`${a}\n${b}`);
    assert.equal(readPubOffset(buf, 0, a.length), 0);
    assert.equal(readPubOffset(buf, a.length + 1, buf.length), 9);
  });
});

describe('isTerminalClose', () => {
  it('follows the protocol: 3500–3999, 4500–4999 and 1009 are final, the rest reconnect', () => {
    for (const code of [3500, 3501, 3999, 4500, 4999, 1009]) assert.equal(isTerminalClose(code), true, String(code));
    for (const code of [1000, 1006, 3000, 3001, 3008, 3499, 4000, 4499]) {
      assert.equal(isTerminalClose(code), false, String(code));
    }
  });
});

describe('peakPerWindow', () => {
  it('finds the busiest 1 s interval even when fixed buckets would split it', () => {
    // 3 events just before 1 s and 3 just after: buckets [0,1) and [1,2) hold 3 each; [0.9, 1.9) holds 6.
    const times = [900, 950, 990, 1010, 1050, 1100, 5000];
    assert.equal(peakPerWindow(times, 1000), 6);
  });

  it('treats the window as half-open and handles unsorted input and no events', () => {
    assert.equal(peakPerWindow([1000, 0], 1000), 1, 'events exactly 1 s apart are not in one window');
    assert.equal(peakPerWindow([3, 1, 2], 1000), 3);
    assert.equal(peakPerWindow([], 1000), 0);
  });
});

describe('rateSeries', () => {
  it('turns event times into per-second rates per bucket', () => {
    const s = rateSeries([100, 200, 600, 1400, 2600], 0, 3000, 500, 'r');
    assert.equal(s.label, 'r');
    assert.deepEqual(s.points, [
      [0, 4],
      [0.5, 2],
      [1, 2],
      [1.5, 0],
      [2, 0],
      [2.5, 2],
    ]);
  });

  it('leaves out events before the start and at or after the end', () => {
    const s = rateSeries([-1, 0, 999, 1000], 0, 1000, 1000, 'r');
    assert.deepEqual(s.points, [[0, 2]]);
  });
});

describe('spanOf', () => {
  it('gives first and last in seconds after the origin, null when empty', () => {
    assert.deepEqual(spanOf([1500, 1100, 4000], 1000), { first: 0.1, last: 3 });
    assert.equal(spanOf([], 0), null);
  });
});

/** tracker returns a SeqTracker that received `seqs`. */
function tracker(seqs: number[]): SeqTracker {
  const t = new SeqTracker(1);
  for (const s of seqs) t.record(s);
  return t;
}

describe('judgeCompleteness', () => {
  it('counts every owed publication that never arrived, per player and channel', () => {
    const c = judgeCompleteness(
      [
        { channel: 0, subscribed: true, tracker: tracker([1, 2, 3, 4]) },
        { channel: 0, subscribed: true, tracker: tracker([1, 3, 4]) },
        { channel: 1, subscribed: true, tracker: tracker([1]) },
      ],
      [4, 2],
      [new Set(), new Set()],
    );
    assert.equal(c.expected, 4 + 4 + 2);
    assert.equal(c.missing, 2, 'seq 2 on channel 0 and seq 2 on channel 1');
    assert.equal(c.clientsWithLoss, 2);
    assert.equal(c.unconfirmed, 0);
  });

  it('owes nobody a publication whose API call failed, whether it arrived or not', () => {
    const c = judgeCompleteness(
      [
        { channel: 0, subscribed: true, tracker: tracker([1, 2, 4]) },
        { channel: 0, subscribed: true, tracker: tracker([1, 2, 3, 4]) },
      ],
      [4],
      [new Set([3])],
    );
    assert.equal(c.expected, 6);
    assert.equal(c.missing, 0);
    assert.equal(c.clientsWithLoss, 0);
    assert.equal(c.unconfirmed, 1);
  });

  it('counts what players that never came back missed apart', () => {
    const c = judgeCompleteness(
      [
        { channel: 0, tracker: tracker([1]), subscribed: false },
        { channel: 0, tracker: tracker([1, 2]), subscribed: true },
      ],
      [3],
      [new Set()],
    );
    assert.equal(c.missing, 1);
    assert.equal(c.clientsWithLoss, 1);
    assert.equal(c.missingAway, 2);
  });

  it('still counts other losses next to an unconfirmed publication, and duplicates and reordering', () => {
    const t = tracker([1, 4, 3, 3]);
    const c = judgeCompleteness([{ channel: 0, tracker: t, subscribed: true }], [5], [new Set([2])]);
    assert.equal(c.missing, 1, 'seq 5');
    assert.equal(c.duplicates, 1);
    assert.equal(c.outOfOrder, 1, 'seq 3 after seq 4 (the second 3 is a duplicate)');
  });
});

const noLatency: LatencySummary = { count: 0, mean: NaN, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN };

function restart(over: Partial<RestartResult> = {}): RestartResult {
  return {
    label: 'drain A → B',
    affected: 100,
    drained: 100,
    back: 100,
    disconnectsS: { first: 0, last: 9.9 },
    allBackS: 11,
    reconnectPeakPerSec: 20,
    expectedPerSec: 10,
    failedAttempts: {},
    offlineMs: noLatency,
    resubscribes: 100,
    notRecovered: 0,
    recoveredPublications: 500,
    nodeCounters: {},
    exit: '0/null',
    ...over,
  };
}

function result(over: Partial<RollingResult> = {}): RollingResult {
  return {
    restarts: [restart()],
    published: 1000,
    apiFailures: 0,
    liveDeliveries: 9000,
    recoveredDeliveries: 1000,
    completeness: {
      expected: 10_000,
      missing: 0,
      missingAway: 0,
      clientsWithLoss: 0,
      duplicates: 0,
      outOfOrder: 0,
      unconfirmed: 0,
    },
    offsetRegressions: 0,
    missingExamples: [],
    notRecoveredExamples: [],
    notSubscribedAtEnd: 0,
    gaveUp: 0,
    failedAttemptsOutsideRestarts: {},
    closeCodes: { 3001: 100 },
    liveLatencyMs: { outside: noLatency, during: noLatency },
    recoveredAgeMs: noLatency,
    ...over,
  };
}

const opts: RollingOptions = {
  clients: 100,
  channels: 10,
  rate: 100,
  drainWindowMs: 10_000,
  probeDelayMs: 1000,
  restarts: 1,
  steadySeconds: 1,
  slackMs: 5000,
  maxPeakFactor: 3,
  historySize: 1000,
  redisUrl: 'redis://127.0.0.1:6379',
  connectConcurrency: 10,
  bucketMs: 1000,
};

describe('rollingChecks', () => {
  const failing = (r: RollingResult) =>
    rollingChecks(r, opts)
      .filter((c) => !c.pass)
      .map((c) => c.name);

  it('passes a clean restart', () => {
    assert.deepEqual(failing(result()), []);
  });

  it('fails on a missing publication, a duplicate, an offset regression or recovered: false', () => {
    const base = result().completeness;
    assert.deepEqual(failing(result({ completeness: { ...base, missing: 1 } })), [
      'missing publications at players back (not live, not recovered)',
    ]);
    assert.deepEqual(failing(result({ completeness: { ...base, duplicates: 2 } })), ['duplicate deliveries']);
    assert.deepEqual(failing(result({ offsetRegressions: 1 })), ['deliveries out of stream-offset order']);
    assert.deepEqual(failing(result({ restarts: [restart({ notRecovered: 1 })] })), [
      'resubscribes answered recovered: false',
    ]);
  });

  it('fails a drained node that did not exit with code 0', () => {
    assert.deepEqual(failing(result({ restarts: [restart({ exit: 'null/SIGKILL' })] })), [
      'drained nodes not exiting cleanly (code 0)',
    ]);
  });

  it('fails when a player did not come back, with no all-back time', () => {
    const r = result({ notSubscribedAtEnd: 1, restarts: [restart({ back: 99, allBackS: null })] });
    assert.deepEqual(failing(r), [
      'players not subscribed at the end',
      'restart 1: players back',
      'restart 1: drain start → all back',
    ]);
  });

  it('limits the restart to drain.window + slack and the peak to factor × players / window', () => {
    assert.deepEqual(failing(result({ restarts: [restart({ allBackS: 15 })] })), []);
    assert.deepEqual(failing(result({ restarts: [restart({ allBackS: 15.01 })] })), [
      'restart 1: drain start → all back',
    ]);
    assert.deepEqual(failing(result({ restarts: [restart({ reconnectPeakPerSec: 30 })] })), []);
    assert.deepEqual(failing(result({ restarts: [restart({ reconnectPeakPerSec: 31 })] })), [
      'restart 1: peak reconnects in 1 s',
    ]);
  });

  it('has one set of restart checks per restart', () => {
    const names = rollingChecks(result({ restarts: [restart(), restart({ label: "drain B → A'" })] }), opts).map(
      (c) => c.name,
    );
    assert.ok(names.includes('restart 2: players back'));
    assert.ok(names.includes('restart 2: peak reconnects in 1 s'));
  });
});

/**
 * A scripted server with known behaviour: connection 1 accepts, sends three publications and
 * closes with 3001; upgrade 2 is refused with HTTP 503 (a draining node); connection 3 expects a
 * recovering subscribe from offset 3 of epoch E, answers with publications 4 and 5 and pushes 6;
 * then it closes with 3501, after which the client must give up.
 */
describe('RecoveringClient against a scripted server', () => {
  it('reconnects through a refused upgrade and recovers exactly from its last offset', async () => {
    let upgrades = 0;
    const subscribes: Array<Record<string, unknown>> = [];
    const wss = new WebSocketServer({
      port: 0,
      host: '127.0.0.1',
      verifyClient: (_info, cb) => {
        upgrades++;
        if (upgrades === 2) cb(false, 503, 'draining');
        else cb(true);
      },
    });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const port = (wss.address() as { port: number }).port;
    const pub = (seq: number, offset: number) =>
      `{"push":{"channel":"rr:ch2","pub":{"data":${benchData(2, seq, 1)},"offset":${offset}}}}`;
    wss.on('connection', (sock) => {
      const n = upgrades;
      sock.on('message', (raw) => {
        const msg = JSON.parse(raw.toString()) as {
          id: number;
          connect?: unknown;
          subscribe?: Record<string, unknown>;
        };
        if (msg.connect) sock.send(`{"id":${msg.id},"connect":{"client":"c${n}","version":"test"}}`);
        if (!msg.subscribe) return;
        subscribes.push(msg.subscribe);
        if (n === 1) {
          sock.send(`{"id":${msg.id},"subscribe":{"recoverable":true,"epoch":"E","positioned":true}}`);
          sock.send(`${pub(1, 1)}\n${pub(2, 2)}`);
          sock.send(pub(3, 3), () => sock.close(3001, 'shutdown'));
        } else {
          const rec = `{"data":${benchData(2, 4, 1)},"offset":4},{"data":${benchData(2, 5, 1)},"offset":5}`;
          sock.send(
            `{"id":${msg.id},"subscribe":{"recoverable":true,"epoch":"E","publications":[${rec}],"recovered":true,"offset":3,"positioned":true,"was_recovering":true}}`,
          );
          sock.send(pub(6, 6), () => setTimeout(() => sock.close(3501, 'bad request'), 20));
        }
      });
    });

    const got: Array<[number, number, boolean]> = [];
    const outcomes: Array<{ recovering: boolean; sentOffset: number; sentEpoch: string; recovered: boolean }> = [];
    const closes: number[] = [];
    const failures: string[] = [];
    const url = `ws://127.0.0.1:${port}/`;
    const client = new RecoveringClient({
      id: 0,
      token: 't',
      channel: 'rr:ch2',
      channelIndex: 2,
      pool: new AddressPool([url]),
      minReconnectDelayMs: 1,
      maxReconnectDelayMs: 5,
      events: {
        publication: (_c, seq, _ts, offset, recovered) => got.push([seq, offset, recovered]),
        subscribed: (_c, o) => outcomes.push(o),
        disconnected: (_c, code) => closes.push(code),
        attemptFailed: (_c, why) => failures.push(why),
      },
    });
    try {
      await client.start(url);
      assert.ok(await waitFor(() => client.state === 'failed', 5000), `state ${client.state}`);
    } finally {
      client.stop();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
    assert.deepEqual(got, [
      [1, 1, false],
      [2, 2, false],
      [3, 3, false],
      [4, 4, true],
      [5, 5, true],
      [6, 6, false],
    ]);
    assert.deepEqual(subscribes, [{ channel: 'rr:ch2' }, { channel: 'rr:ch2', recover: true, offset: 3, epoch: 'E' }]);
    assert.deepEqual(
      outcomes.map((o) => [o.recovering, o.sentOffset, o.sentEpoch, o.recovered]),
      [
        [false, 0, '', false],
        [true, 3, 'E', true],
      ],
    );
    assert.deepEqual(closes, [3001, 3501]);
    assert.equal(failures.length, 1);
    assert.match(failures[0] as string, /503/);
    assert.equal(client.offset, 6);
    assert.equal(client.subscribes, 2);
    assert.match(client.failure ?? '', /3501/);
  });
});

describe('RecoveringClient.start', () => {
  /** A server that refuses its first `refusals` upgrades with 503, then accepts connect and subscribe. */
  async function refusingServer(refusals: number): Promise<{ url: string; close: () => Promise<void> }> {
    let upgrades = 0;
    const wss = new WebSocketServer({
      port: 0,
      host: '127.0.0.1',
      verifyClient: (_info, cb) => (++upgrades <= refusals ? cb(false, 503, 'overloaded') : cb(true)),
    });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    wss.on('connection', (sock) =>
      sock.on('message', (raw) => {
        const msg = JSON.parse(raw.toString()) as { id: number; connect?: unknown };
        sock.send(msg.connect ? `{"id":${msg.id},"connect":{"client":"c"}}` : `{"id":${msg.id},"subscribe":{}}`);
      }),
    );
    return {
      url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`,
      close: () => new Promise<void>((resolve) => wss.close(() => resolve())),
    };
  }

  const quiet = { publication: () => undefined, subscribed: () => undefined, disconnected: () => undefined };

  for (const [retries, ok] of [
    [1, true],
    [0, false],
  ] as const) {
    it(`${ok ? 'retries' : 'gives up on'} a refused first upgrade with ${retries} retries`, async () => {
      const srv = await refusingServer(1);
      const failures: string[] = [];
      const client = new RecoveringClient({
        id: 0,
        token: 't',
        channel: 'rr:ch0',
        channelIndex: 0,
        pool: new AddressPool(),
        minReconnectDelayMs: 1,
        maxReconnectDelayMs: 5,
        events: { ...quiet, attemptFailed: (_c, why) => failures.push(why) },
      });
      try {
        if (ok) {
          await client.start(srv.url, retries);
          assert.equal(client.state, 'subscribed');
        } else {
          await assert.rejects(client.start(srv.url, retries), /503/);
          assert.equal(client.state, 'failed');
        }
        assert.equal(failures.length, 1);
      } finally {
        client.stop();
        await srv.close();
      }
    });
  }
});
