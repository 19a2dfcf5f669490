/**
 * Tests of the hug scenario's measurement parts: reading Retry-After and the back-off a good
 * client applies, the arrival schedule (ramp steps, arrivals due, which phase an arrival or an
 * attempt belongs to), the /ready probe summary, failure classes, the verdict, and an open
 * attempt against small servers of known behaviour (one refusing with 503 + Retry-After, one
 * accepting, none listening).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { classifyFailure, openAttempt } from '../src/load/admission-attempt.js';
import {
  arrivalsDue,
  hugSchedule,
  phaseAt,
  phaseOfArrival,
  plannedArrivals,
  rampMultipliers,
} from '../src/load/arrival-schedule.js';
import { summarizeProbes } from '../src/harness/http-probe.js';
import { parseRetryAfter, retryDelayMs } from '../src/load/retry-advice.js';
import { heldOnServer } from '../src/harness/server-watch.js';
import { freePort } from '../src/harness/targets.js';
import { hugChecks, type HugMeasures, type HugThresholds } from '../src/scenarios/hug/verdict.js';

describe('parseRetryAfter', () => {
  it('reads delay-seconds, with surrounding whitespace', () => {
    assert.equal(parseRetryAfter('7'), 7);
    assert.equal(parseRetryAfter(' 10 '), 10);
    assert.equal(parseRetryAfter('0'), 0);
  });

  it('reads an HTTP-date as seconds from now (never negative)', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', now), 30);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', now), 0);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:20:00 GMT', now), 0);
  });

  it('refuses what a client cannot follow', () => {
    for (const bad of [undefined, '', '  ', '-1', '1.5', '5s', 'soon', '2015-10-21T07:28:00Z', ['1', '2']]) {
      assert.equal(parseRetryAfter(bad), undefined, `${JSON.stringify(bad)}`);
    }
  });
});

describe('retryDelayMs', () => {
  it('waits exactly Retry-After when the jitter draws 0', () => {
    assert.equal(
      retryDelayMs(5, 1, () => 0),
      5000,
    );
  });

  it('adds full jitter whose range doubles with each refusal in a row, up to the cap', () => {
    const policy = { baseMs: 1000, capMs: 3000 };
    const half = () => 0.5;
    assert.equal(retryDelayMs(2, 1, half, policy), 2500);
    assert.equal(retryDelayMs(2, 2, half, policy), 3000);
    assert.equal(retryDelayMs(2, 3, half, policy), 3500); // 4000 capped to 3000
    assert.equal(retryDelayMs(2, 10, half, policy), 3500);
  });

  it('without advice, backs off on jitter alone', () => {
    assert.equal(
      retryDelayMs(undefined, 2, () => 0.25),
      500,
    );
  });
});

describe('arrival schedule', () => {
  it('ramps evenly from 1x to the top', () => {
    assert.deepEqual(rampMultipliers(10, 10), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(rampMultipliers(5, 10), [1, 3.25, 5.5, 7.75, 10]);
    assert.deepEqual(rampMultipliers(1, 10), [10]);
    assert.deepEqual(rampMultipliers(0, 10), []);
  });

  const phases = hugSchedule({ rate: 100, warmupSeconds: 6, steps: 10, stepSeconds: 1.5, top: 10, tailSeconds: 6 });

  it('lays out warm-up, steps and tail back to back', () => {
    assert.deepEqual(
      phases.map((p) => p.label),
      ['warm-up', '1x', '2x', '3x', '4x', '5x', '6x', '7x', '8x', '9x', '10x', 'tail'],
    );
    for (let i = 1; i < phases.length; i++) assert.equal(phases[i]?.startMs, phases[i - 1]?.endMs);
    assert.equal(phases[0]?.rate, 100);
    assert.equal(phases[10]?.rate, 1000);
    assert.equal(phases[11]?.rate, 0);
    assert.equal(phases[11]?.endMs, 6000 + 15_000 + 6000);
  });

  it('omits phases of zero length', () => {
    const p = hugSchedule({ rate: 10, warmupSeconds: 0, steps: 2, stepSeconds: 1, top: 3, tailSeconds: 0 });
    assert.deepEqual(
      p.map((x) => [x.label, x.startMs, x.endMs, x.rate]),
      [
        ['1x', 0, 1000, 10],
        ['3x', 1000, 2000, 30],
      ],
    );
  });

  it('calls for arrivals at the integral of the rate, the first one gap after the start', () => {
    assert.equal(arrivalsDue(phases, 0), 0);
    assert.equal(arrivalsDue(phases, 9.99), 0);
    assert.equal(arrivalsDue(phases, 10), 1);
    assert.equal(arrivalsDue(phases, 6000), 600);
    // 1.5 s into the 1x step, then 0.5 s into 2x (200/s): 600 + 150 + 100.
    assert.equal(arrivalsDue(phases, 8000), 850);
    // 6 s at 100/s plus 1.5 s × 100/s × (1 + … + 10).
    assert.equal(plannedArrivals(phases), 600 + 8250);
    assert.equal(arrivalsDue(phases, 10 ** 9), plannedArrivals(phases));
  });

  it('never calls for fewer arrivals later', () => {
    let prev = 0;
    for (let t = 0; t <= 27_000; t += 7) {
      const n = arrivalsDue(phases, t);
      assert.ok(n >= prev, `t=${t}`);
      prev = n;
    }
  });

  it('finds the phase of a time and of an arrival', () => {
    assert.equal(phaseAt(phases, 0), 0);
    assert.equal(phaseAt(phases, 5999), 0);
    assert.equal(phaseAt(phases, 6000), 1);
    assert.equal(phaseAt(phases, 26_999), 11);
    assert.equal(phaseAt(phases, 99_999), 11);
    assert.equal(phaseOfArrival(phases, 0), 0);
    assert.equal(phaseOfArrival(phases, 599), 0);
    assert.equal(phaseOfArrival(phases, 600), 1);
    assert.equal(phaseOfArrival(phases, 749), 1);
    assert.equal(phaseOfArrival(phases, 750), 2);
    assert.equal(phaseOfArrival(phases, plannedArrivals(phases) - 1), 10);
  });
});

describe('summarizeProbes', () => {
  it('counts only 200 as ok and summarises the latency of answered probes', () => {
    const s = summarizeProbes([
      { atMs: 0, latencyMs: 2, status: 200 },
      { atMs: 500, latencyMs: 40, status: 503 },
      { atMs: 1000, latencyMs: 2000, status: 0 },
      { atMs: 1500, latencyMs: 4, status: 200 },
    ]);
    assert.equal(s.probes, 4);
    assert.equal(s.ok, 2);
    assert.equal(s.failed, 2);
    assert.equal(s.latencyMs.count, 3);
    assert.equal(s.latencyMs.max, 40);
  });
});

describe('heldOnServer', () => {
  it('is opened minus closed WebSocket connections on a server without the admission gauge', () => {
    const text = [
      'bulwark_connections_opened_total{node="a"} 1500',
      'bulwark_connections_closed_total{node="a"} 320',
      'bulwark_connections{node="a"} 1100',
    ].join('\n');
    assert.equal(heldOnServer(text), 1180);
  });

  it("prefers admission's own gauge when the server exposes it", () => {
    const text = [
      'bulwark_connections_opened_total{node="a"} 1500',
      'bulwark_connections_closed_total{node="a"} 320',
      'bulwark_admission_connections{node="a"} 1184',
      'bulwark_admission_connection_limit{node="a"} 1200',
    ].join('\n');
    assert.equal(heldOnServer(text), 1184);
  });
});

describe('classifyFailure', () => {
  it('groups the load generator error messages', () => {
    assert.equal(classifyFailure('could not open ws://x: Opening handshake has timed out'), 'timeout');
    assert.equal(classifyFailure('timeout after 10000 ms waiting for reply 1'), 'timeout');
    assert.equal(classifyFailure('could not open ws://x: read ECONNRESET'), 'reset');
    assert.equal(classifyFailure('could not open ws://x: socket hang up'), 'reset');
    assert.equal(classifyFailure('could not open ws://x: connect ECONNREFUSED 127.0.0.1:1'), 'tcp-refused');
    assert.equal(classifyFailure('error 109: token expired'), 'error-reply');
    assert.equal(classifyFailure('connection closed: 3501 bad request'), 'closed');
    assert.equal(classifyFailure('something else'), 'other');
  });
});

describe('hugChecks', () => {
  const good: HugMeasures = {
    serverAlive: true,
    readyFailed: 0,
    refused: 5000,
    refusedWithoutAdvice: 0,
    admittedP99Ms: 120,
    peakRssBytes: 200 * 2 ** 20,
    peakHeld: 8000,
    connectionLimit: 8000,
    unexpectedCloses: 0,
    attempts: 40_000,
    failed: 10,
    notSent: 0,
  };
  const t: HugThresholds = { p99LimitMs: 500, maxRssMiB: 512, maxFailedPercent: 1, maxNotSentPercent: 1 };
  const failing = (m: Partial<HugMeasures>) =>
    hugChecks({ ...good, ...m }, t)
      .filter((c) => !c.pass)
      .map((c) => c.name);

  it('passes a run within every threshold', () => {
    const checks = hugChecks(good, t);
    assert.equal(checks.length, 10);
    assert.deepEqual(
      checks.filter((c) => !c.pass),
      [],
    );
  });

  it('fails exactly the check whose measure is out of bounds', () => {
    assert.deepEqual(failing({ serverAlive: false }), ['server process alive at the end (1 = yes)']);
    assert.deepEqual(failing({ readyFailed: 1 }), ['/ready probes unanswered or not 200']);
    assert.deepEqual(failing({ refused: 0 }), ['attempts refused (the ramp must exceed capacity)']);
    assert.deepEqual(failing({ refusedWithoutAdvice: 1 }), ['refusals without a readable Retry-After']);
    assert.deepEqual(failing({ admittedP99Ms: 501 }), ['admitted handshake p99 after the warm-up']);
    assert.deepEqual(failing({ peakRssBytes: 513 * 2 ** 20 }), ['peak server RSS']);
    assert.deepEqual(failing({ peakHeld: 8001 }), ['peak connections held']);
    assert.deepEqual(failing({ unexpectedCloses: 1 }), ['admitted players closed by the server']);
    assert.deepEqual(failing({ failed: 401 }), ['attempts failed without a refusal']);
    assert.deepEqual(failing({ notSent: 400 }), []); // 400 of 40,400 tried: 0.99 %
    assert.deepEqual(failing({ notSent: 405 }), ['attempts the load generator could not send (its caps)']);
  });

  it('compares unrounded values at the boundary', () => {
    assert.deepEqual(failing({ failed: 400 }), []); // exactly 1 %
    assert.deepEqual(failing({ peakRssBytes: 512 * 2 ** 20 + 1 }), ['peak server RSS']);
    assert.deepEqual(failing({ admittedP99Ms: 500.01 }), ['admitted handshake p99 after the warm-up']);
  });

  it('fails the p99 check when nobody was admitted after the warm-up (NaN)', () => {
    assert.deepEqual(failing({ admittedP99Ms: Number.NaN }), ['admitted handshake p99 after the warm-up']);
  });
});

describe('openAttempt', () => {
  let refusing: http.Server;
  let accepting: http.Server;
  let wss: WebSocketServer;
  let refusingUrl = '';
  let acceptingUrl = '';

  before(async () => {
    // Refuses every upgrade the way Bulwark's admission does: a raw 503 with Retry-After.
    refusing = http.createServer();
    refusing.on('upgrade', (_req, socket: net.Socket) => {
      socket.end(
        'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\nRetry-After: 7\r\n\r\n',
      );
    });
    accepting = http.createServer();
    wss = new WebSocketServer({ server: accepting });
    await Promise.all(
      [refusing, accepting].map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))),
    );
    const port = (s: http.Server) => (s.address() as net.AddressInfo).port;
    refusingUrl = `ws://127.0.0.1:${port(refusing)}/`;
    acceptingUrl = `ws://127.0.0.1:${port(accepting)}/`;
  });

  after(async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    await Promise.all([refusing, accepting].map((s) => new Promise((resolve) => s.close(resolve))));
  });

  it('reports a refusal with its status and Retry-After', async () => {
    const out = await openAttempt({ url: refusingUrl, protocol: 'raw' });
    assert.deepEqual(out, { kind: 'refused', status: 503, retryAfter: '7' });
  });

  it('hands back an open client when the upgrade succeeds', async () => {
    const out = await openAttempt({ url: acceptingUrl, protocol: 'raw' });
    assert.equal(out.kind, 'open');
    if (out.kind === 'open') {
      assert.equal(out.client.isOpen, true);
      out.client.terminate();
    }
  });

  it('reports a failure when nothing listens', async () => {
    const out = await openAttempt({ url: `ws://127.0.0.1:${await freePort()}/`, protocol: 'raw' });
    assert.equal(out.kind, 'failed');
    if (out.kind === 'failed') assert.equal(classifyFailure(out.error), 'tcp-refused');
  });
});
