/**
 * Tests of the pure parts of the overload and stalled scenarios: reading a reply's id and
 * error code from its first bytes, reading counters from /metrics, tallies, and the pass/fail
 * verdicts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { metricSeries } from '../src/harness/api.js';
import { parseReplyHead } from '../src/load/command-client.js';
import type { FeedResult } from '../src/load/live-feed.js';
import type { LatencySummary } from '../src/harness/stats.js';
import { tally } from '../src/harness/util.js';
import type { OverloadRun } from '../src/scenarios/overload/types.js';
import { judgeOverload } from '../src/scenarios/overload/verdict.js';
import { stalledCount } from '../src/scenarios/stalled/run.js';
import { type StalledRun } from '../src/scenarios/stalled/types.js';
import { judgeStalled } from '../src/scenarios/stalled/verdict.js';

const head = (line: string) => parseReplyHead(Buffer.from(line), 0, Buffer.byteLength(line));

describe('parseReplyHead', () => {
  it('reads the id of a successful reply', () => {
    assert.deepEqual(head('{"id":42,"history":{"publications":[],"epoch":"x","offset":0}}'), { id: 42, errorCode: 0 });
  });

  it('reads the id and code of an error reply', () => {
    const line = '{"id":7,"error":{"code":111,"message":"too many requests: server overloaded","temporary":true}}';
    assert.deepEqual(head(line), { id: 7, errorCode: 111 });
  });

  it('reads one line of a multi-reply frame without looking past it', () => {
    const a = '{"id":3,"history":{}}';
    const b = '{"id":4,"error":{"code":108,"message":"not available"}}';
    const buf = Buffer.from(`${a}\n${b}`);
    assert.deepEqual(parseReplyHead(buf, 0, a.length), { id: 3, errorCode: 0 });
    assert.deepEqual(parseReplyHead(buf, a.length + 1, buf.length), { id: 4, errorCode: 108 });
  });

  it('returns undefined for pushes, pings and other key orders', () => {
    assert.equal(head('{"push":{"channel":"c","pub":{"data":{}}}}'), undefined);
    assert.equal(head('{}'), undefined);
    assert.equal(head('{"error":{"code":111},"id":5}'), undefined);
    assert.equal(head('{"id":0,"x":1}'), undefined);
  });
});

describe('metricSeries', () => {
  const text = [
    '# HELP bulwark_disconnects_total Disconnects by protocol code.',
    '# TYPE bulwark_disconnects_total counter',
    'bulwark_disconnects_total{code="3008",node="a"} 7',
    'bulwark_disconnects_total{node="b",code="3008"} 2',
    'bulwark_disconnects_total{code="3000",node="a"} 1',
    'bulwark_disconnects_total_extra{code="3008"} 99',
    'bulwark_slow_disconnects_total{node="a"} 9',
  ].join('\n');

  it('sums series by one label, across the others', () => {
    assert.deepEqual(
      [...metricSeries(text, 'bulwark_disconnects_total', 'code')],
      [
        ['3008', 9],
        ['3000', 1],
      ],
    );
  });

  it('keys a metric read without a label by ""', () => {
    assert.equal(metricSeries(text, 'bulwark_slow_disconnects_total').get(''), 9);
    assert.equal(metricSeries(text, 'bulwark_missing_total').size, 0);
  });
});

const latency = (p99: number): LatencySummary => ({
  count: 1,
  mean: p99,
  p50: p99,
  p90: p99,
  p99,
  p999: p99,
  max: p99,
});

function overloadRun(multiplier: number, shedding: boolean, goodputPerSec: number, p99: number): OverloadRun {
  return { multiplier, shedding, goodputPerSec, okLatencyMs: latency(p99) } as OverloadRun;
}

describe('judgeOverload', () => {
  it('judges shedding at the highest multiplier against C and the 1× p99', () => {
    const runs = [
      overloadRun(1, true, 1000, 5),
      overloadRun(1, false, 1000, 4),
      overloadRun(10, true, 600, 45),
      overloadRun(10, false, 100, 900),
    ];
    const v = judgeOverload(1000, runs);
    assert.equal(v.multiplier, 10);
    assert.equal(v.goodputFloor, 500);
    assert.equal(v.p99Ceiling, 50);
    assert.equal(v.pass, true);
  });

  it('fails on low goodput or a long tail, naming each', () => {
    const v = judgeOverload(1000, [overloadRun(1, true, 1000, 5), overloadRun(10, true, 400, 60)]);
    assert.equal(v.pass, false);
    assert.deepEqual(v.reasons, ['goodput 400/s < 500/s', 'ok p99 60 ms > 50 ms']);
  });
});

function stalledRun(baseline: number, peak: number, p99: number): StalledRun {
  return { rssMiB: { baseline, peak, final: peak }, healthy: { latencyMs: latency(p99) } as FeedResult } as StalledRun;
}

describe('judgeStalled', () => {
  it('compares the memory stalled clients add beyond (a), and (b)’s p99 with (a)’s', () => {
    const v = judgeStalled(stalledRun(80, 100, 10), stalledRun(80, 105, 15), stalledRun(80, 300, 40));
    assert.equal(v.addedRssMiB, 5);
    assert.equal(v.addedRssCeilingMiB, 100);
    assert.equal(v.p99Ceiling, 20);
    assert.equal(v.pass, true);
  });

  it('fails when (c) added no memory: the run was too short to compare', () => {
    const v = judgeStalled(stalledRun(80, 100, 10), stalledRun(80, 100, 10), stalledRun(80, 99, 10));
    assert.equal(v.pass, false);
    assert.match(v.reasons.join(), /run longer/);
  });

  it('rounds the stalled share of the subscribers', () => {
    assert.equal(stalledCount(2000, 5), 100);
    assert.equal(stalledCount(200, 5), 10);
    assert.equal(stalledCount(30, 5), 2);
  });
});

describe('tally', () => {
  it('counts close codes, skipping clients still open', () => {
    assert.deepEqual(tally([3008, 1006, 3008, undefined]), { '3008': 2, '1006': 1 });
    assert.deepEqual(tally([]), {});
  });
});
