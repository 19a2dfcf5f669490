/**
 * Tests of the jetstream scenario's pure parts: its options (defaults, quick values, refusals),
 * the phase plan and the run's time bound, the message it publishes (the documented envelope,
 * whose data the lean client decodes), the phase verdict and the saturated-side verdict, finding
 * the local nats-server; and
 * that no scenario's flag shares a name with a global flag.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFlags } from '../src/harness/flags.js';
import { globalFlags } from '../src/harness/global-flags.js';
import type { LatencySummary } from '../src/harness/stats.js';
import { parseBenchPush } from '../src/load/lean-client.js';
import { registry } from '../src/scenarios/index.js';
import { channelName, envelope, localNatsPid } from '../src/scenarios/jetstream/backend.js';
import { bulwarkConfig } from '../src/scenarios/jetstream/index.js';
import { jetstreamTable } from '../src/scenarios/jetstream/report.js';
import { jetstreamFlags, maxRunSeconds, phasePlan, readOptions } from '../src/scenarios/jetstream/options.js';
import { judgePhase, limitOf, saturatedSide, type PhaseResult } from '../src/scenarios/jetstream/verdict.js';

const latency = (p50: number, p99: number): LatencySummary => ({
  count: 1000,
  mean: p50,
  p50,
  p90: p99,
  p99,
  p999: p99,
  max: p99,
});

/** phase is a passing phase at 1000 msg/s; `over` changes what a test looks at. */
const phase = (over: Partial<PhaseResult> = {}): PhaseResult => ({
  label: 'fixed',
  targetRate: 1000,
  published: 10_000,
  publishErrors: 0,
  publishedPerSec: 1000,
  consumedPerSec: 990,
  tailMs: 20,
  expected: 20_000,
  missing: 0,
  duplicates: 0,
  outOfOrder: 0,
  latencyMs: latency(5, 40),
  maxLag: 12,
  lagAfterDrain: 0,
  drainMs: 30,
  serverCpuPercent: 40,
  loadgenCpuPercent: 30,
  natsCpuPercent: 20,
  ...over,
});

describe('jetstream scenario options', () => {
  it('reads defaults, quick values and given flags', () => {
    const o = readOptions(readFlags({}, false));
    assert.equal(o.rate, 500);
    assert.equal(o.maxAckPending, 1);
    assert.equal(o.storage, 'file');
    assert.equal(o.natsUrl, 'nats://127.0.0.1:4222');
    const q = readOptions(readFlags({}, true));
    assert.deepEqual([q.rate, q.durationSeconds, q.rampSteps, q.channels, q.subscribersPerChannel], [200, 3, 1, 4, 1]);
    const given = readOptions(readFlags({ rate: '50', 'max-ack-pending': '100', 'js-storage': 'memory' }, false));
    assert.deepEqual([given.rate, given.maxAckPending, given.storage], [50, 100, 'memory']);
  });

  it('refuses a bad storage, a rate of 0 and a ramp factor of 1', () => {
    assert.throws(() => readOptions(readFlags({ 'js-storage': 'disk' }, false)), /--js-storage must be file or memory/);
    assert.throws(() => readOptions(readFlags({ rate: '0' }, false)), /--rate must be a number ≥ 1/);
    assert.throws(() => readOptions(readFlags({ 'ramp-factor': '1' }, false)), /--ramp-factor/);
  });

  it('plans the fixed rate then the ramp, and bounds the run', () => {
    const o = readOptions(readFlags({}, false));
    assert.deepEqual(
      phasePlan(o).map((p) => [p.label, p.rate, p.seconds]),
      [
        ['fixed', 500, 10],
        ['ramp 1', 1000, 5],
        ['ramp 2', 2000, 5],
        ['ramp 3', 4000, 5],
        ['ramp 4', 8000, 5],
      ],
    );
    assert.equal(maxRunSeconds(o), 10 + 4 * 5 + 5 * 15);
    assert.deepEqual(
      phasePlan({ ...o, rampSteps: 0 }).map((p) => p.label),
      ['fixed'],
    );
  });

  it('gives the consumer the run’s own stream, subjects and durable name', () => {
    const o = readOptions(readFlags({ 'max-ack-pending': '8', batch: '50' }, false));
    const c = bulwarkConfig(o, { stream: 'S', subject: 'bench.x.events', durable: 'd' }) as {
      consumers: { jetstream: Record<string, unknown> };
    };
    assert.deepEqual(c.consumers.jetstream, {
      enabled: true,
      url: 'nats://127.0.0.1:4222',
      stream_name: 'S',
      subjects: ['bench.x.events.>'],
      durable_consumer_name: 'd',
      deliver_policy: 'all',
      max_ack_pending: 8,
      batch_size: 50,
      fetch_expires: '1s',
      retry_interval: '100ms',
    });
  });
});

describe('no scenario flag shares a name with a global flag', () => {
  it('holds for every registered scenario', () => {
    const globals = new Set(Object.values(globalFlags).map((f) => f.name));
    // connections-scale's --workers is the global one on purpose: the same Bulwark workers.
    const shared = new Set(['connections-scale --workers']);
    const clashes = registry.flatMap((s) =>
      s.flags
        .filter((f) => globals.has(f.name) && !shared.has(`${s.name} --${f.name}`))
        .map((f) => `${s.name} --${f.name}`),
    );
    assert.deepEqual(clashes, []);
    assert.ok(registry.some((s) => s.name === 'jetstream'));
    for (const f of Object.values(jetstreamFlags)) assert.ok(!globals.has(f.name), f.name);
  });
});

describe('the jetstream message', () => {
  it('is a publish command whose data the lean client decodes from the push', () => {
    const body = envelope(3, 17, 123456);
    const msg = JSON.parse(body) as { method: string; payload: { channel: string; data: unknown } };
    assert.equal(msg.method, 'publish');
    assert.equal(msg.payload.channel, channelName(3));
    assert.equal(channelName(3), 'board:j3');
    const push = Buffer.from(
      JSON.stringify({ push: { channel: 'board:j3', pub: { data: msg.payload.data, offset: 1 } } }),
    );
    assert.deepEqual(parseBenchPush(push), { channel: 3, seq: 17, sentAtMicros: 123456 });
  });
});

describe('the jetstream verdicts', () => {
  it('passes a phase that delivered everything once, held the rate and stayed under the p99 limit', () => {
    assert.deepEqual(judgePhase(phase(), 250), { pass: true, reason: '' });
  });

  it('fails a phase for loss, duplicates, disorder, publish errors, a late drain, a slow side or latency', () => {
    const reason = (over: Partial<PhaseResult>) => judgePhase(phase(over), 250).reason;
    assert.equal(reason({ missing: 3 }), '3 deliveries lost');
    assert.equal(reason({ duplicates: 2 }), '2 duplicate deliveries');
    assert.equal(reason({ outOfOrder: 1 }), '1 deliveries out of order');
    assert.equal(reason({ publishErrors: 4, missing: 4 }), '4 JetStream publishes failed');
    assert.equal(reason({ lagAfterDrain: 9, missing: 9 }), '9 messages still in the consumer after the drain');
    assert.equal(reason({ publishedPerSec: 900 }), 'the backend published 900 of 1000 msg/s');
    assert.match(reason({ tailMs: 800 }), /fell behind: its last message came 800 ms after publishing stopped/);
    assert.equal(reason({ latencyMs: latency(5, 300) }), 'p99 300 ms > 250 ms');
    assert.equal(reason({ latencyMs: latency(Number.NaN, Number.NaN) }), 'p99 NaN ms > 250 ms');
  });

  it('names the side that saturated: the bench process first, then the publish side, Bulwark CPU, the consumer loop', () => {
    const side = (over: Partial<PhaseResult>) => saturatedSide(phase(over), 1, 250);
    assert.match(
      side({ loadgenCpuPercent: 95, serverCpuPercent: 95, publishedPerSec: 500 }),
      /^load generator CPU \(95%/,
    );
    assert.match(
      side({ publishedPerSec: 500, serverCpuPercent: 95 }),
      /^JetStream publish side: .* 500 of 1000 msg\/s/,
    );
    assert.equal(side({ serverCpuPercent: 97, natsCpuPercent: 99, tailMs: 900 }), 'Bulwark CPU (97%)');
    assert.equal(side({ natsCpuPercent: 99, tailMs: 900 }), 'NATS server CPU (99%)');
    assert.match(
      side({ tailMs: 900 }),
      /^Bulwark's JetStream consumer below CPU saturation \(server 40%\).*max_ack_pending 1$/,
    );
    assert.match(side({ latencyMs: latency(5, 400) }), /^latency\/loss below CPU saturation .*NATS 20%\)$/);
    assert.match(side({ latencyMs: latency(5, 400), natsCpuPercent: Number.NaN }), /NATS NaN%\)$/);
  });

  it('reports the highest passing rate and what limited the first failing phase', () => {
    const passed = { ...phase(), pass: true, reason: '' };
    const failed = {
      ...phase({ label: 'ramp 1', targetRate: 2000, publishedPerSec: 2000, tailMs: 900 }),
      pass: false,
      reason: 'x',
    };
    assert.deepEqual(limitOf([passed], 1, 250), { maxPassingRate: 1000, limitedBy: 'not reached' });
    const limit = limitOf([passed, failed], 1, 250);
    assert.equal(limit.maxPassingRate, 1000);
    assert.match(limit.limitedBy, /JetStream consumer below CPU saturation/);
  });
});

describe('the jetstream table', () => {
  it('has a cell under every heading, and says what limited the run', () => {
    const o = readOptions(readFlags({}, false));
    const phases = [
      { ...phase(), pass: true, reason: '' },
      { ...phase({ label: 'ramp 1', natsCpuPercent: Number.NaN }), pass: false, reason: 'p99 300 ms > 250 ms' },
    ];
    const lines = jetstreamTable(o, { phases, maxPassingRate: 1000, limitedBy: 'Bulwark CPU (97%)' }).split('\n');
    const cells = (line: string) => line.trim().split(/\s{2,}/).length;
    assert.equal(lines.length, 5);
    assert.equal(cells(lines[1]!), 11);
    assert.equal(cells(lines[2]!), 11);
    assert.match(lines[3]!, /^ramp 1 .* - +FAIL: p99 300 ms > 250 ms$/);
    assert.equal(lines[4], 'highest passing rate: 1,000 msg/s; limited by: Bulwark CPU (97%)');
  });
});

describe('localNatsPid', () => {
  it('looks only behind a loopback URL', () => {
    assert.equal(localNatsPid('nats://nats.internal:4222'), undefined);
    assert.equal(localNatsPid('tls://127.0.0.1:4222'), undefined);
    const pid = localNatsPid('nats://127.0.0.1:4222');
    assert.ok(pid === undefined || (Number.isInteger(pid) && pid > 0));
  });
});
