/**
 * Tests of the pure parts of the mixed fan-out scenario: the channel layout, the expected
 * delivery rates and the per-class verdicts. (Its measurement loop is tested against a server
 * with known faults in measurement.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expectedDeliveryRates, mixedLayout } from '../src/scenarios/fanout-mixed/run.js';
import { mixedChecks } from '../src/scenarios/fanout-mixed/verdict.js';
import {
  type ClassResult,
  type FanoutMixedOptions,
  type FanoutMixedResult,
} from '../src/scenarios/fanout-mixed/types.js';

describe('mixedLayout', () => {
  it('gives every player its own personal channel, its team of teamSize and the world channel', () => {
    const l = mixedLayout(120, 50);
    assert.equal(l.teams, 3);
    assert.equal(l.channelCount, 1 + 3 + 120);
    assert.deepEqual(l.channelsOf(0), [4, 1, 0]);
    assert.deepEqual(l.channelsOf(49), [53, 1, 0]);
    assert.deepEqual(l.channelsOf(50), [54, 2, 0]);
    assert.deepEqual(l.channelsOf(119), [123, 3, 0]);
    assert.deepEqual([l.teamMembers(0), l.teamMembers(1), l.teamMembers(2), l.teamMembers(3)], [50, 50, 20, 0]);
    assert.equal(l.channelName(0), 'bench:world');
    assert.equal(l.channelName(l.teamChannel(2)), 'bench:team.2');
    assert.equal(l.channelName(l.personalChannel(119)), 'bench:user.119');
  });

  it('uses every channel index exactly once', () => {
    const l = mixedLayout(101, 10);
    const names = new Set(Array.from({ length: l.channelCount }, (_, i) => l.channelName(i)));
    assert.equal(names.size, l.channelCount);
    const personal = new Set(Array.from({ length: 101 }, (_, i) => l.channelsOf(i)[0]));
    assert.equal(personal.size, 101);
  });
});

const opts: FanoutMixedOptions = {
  players: 5000,
  teamSize: 50,
  worldRate: 3,
  teamRate: 2,
  personalRate: 2000,
  seconds: 20,
  warmupSeconds: 2,
  padBytes: 64,
  p99LimitMs: 100,
  drainTimeoutMs: 3000,
  concurrency: 100,
};

describe('expectedDeliveryRates', () => {
  it('is publications/s × subscribers for each class (defaults: ~27k deliveries/s)', () => {
    assert.deepEqual(expectedDeliveryRates(opts), { personal: 2000, team: 10_000, world: 15_000 });
    // A smaller last team: 120 players in teams of 50 are 3 channels with 120 subscribers in all.
    assert.deepEqual(expectedDeliveryRates({ ...opts, players: 120, personalRate: 10 }), {
      personal: 10,
      team: 240,
      world: 360,
    });
  });
});

describe('mixedChecks', () => {
  const cls = (expectedPerSec: number): ClassResult => ({
    channels: 1,
    subscribersPerChannel: 1,
    publications: 10,
    expectedDeliveries: 100,
    deliveries: 100,
    deliveriesPerSec: expectedPerSec,
    expectedDeliveriesPerSec: expectedPerSec,
    latencyMs: { count: 100, mean: 5, p50: 4, p90: 8, p99: 20, p999: 30, max: 40 },
    loss: {
      expected: 100,
      missing: 0,
      subscribersWithLoss: 0,
      maxMissingPerSubscriber: 0,
      duplicates: 0,
      outOfOrder: 0,
      stale: 0,
    },
  });
  const base = {
    target: 'bulwark',
    classes: { personal: cls(2000), team: cls(10_000), world: cls(15_000) },
  } as unknown as FanoutMixedResult;
  const failing = (r: FanoutMixedResult) =>
    mixedChecks(r, 100)
      .filter((c) => !c.pass)
      .map((c) => c.name);

  it('passes a clean run with three checks per class', () => {
    const checks = mixedChecks(base, 100);
    assert.equal(checks.length, 9);
    assert.deepEqual(failing(base), []);
  });

  it('fails the class with loss, a p99 over the limit, or under 95 % of the expected rate', () => {
    const withLoss = structuredClone(base);
    withLoss.classes.team.loss.missing = 1;
    assert.deepEqual(failing(withLoss), ['bulwark: team loss']);

    const slow = structuredClone(base);
    slow.classes.world.latencyMs.p99 = 100.5;
    assert.deepEqual(failing(slow), ['bulwark: world p99 latency']);

    const short = structuredClone(base);
    short.classes.personal.deliveriesPerSec = 1899; // 94.95 % of 2000
    assert.deepEqual(failing(short), ['bulwark: personal delivered rate']);
    short.classes.personal.deliveriesPerSec = 1900;
    assert.deepEqual(failing(short), []);

    const none = structuredClone(base);
    none.classes.world.latencyMs.p99 = Number.NaN; // no delivery at all: no p99 is a failure
    assert.deepEqual(failing(none), ['bulwark: world p99 latency']);
  });

  it('skips a class the options give no traffic', () => {
    const noWorld = structuredClone(base);
    noWorld.classes.world = cls(0);
    assert.equal(mixedChecks(noWorld, 100).length, 6);
  });
});
