/**
 * Tests of the open-loop schedule: how many sends are due when, how many fit in a window, and
 * that streams sharing an aggregate rate interleave evenly instead of sending in bursts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dueBy, sendsBefore, staggeredStreams } from '../src/load/pacing.js';

describe('dueBy', () => {
  it('counts the sends at or before the elapsed time, the first at the offset', () => {
    // 10/s from 50 ms: sends at 50, 150, 250, …
    assert.equal(dueBy(0, 10, 50), 0);
    assert.equal(dueBy(49.9, 10, 50), 0);
    assert.equal(dueBy(50, 10, 50), 1);
    assert.equal(dueBy(149.9, 10, 50), 1);
    assert.equal(dueBy(150, 10, 50), 2);
    assert.equal(dueBy(1049, 10, 50), 10);
  });

  it('is 0 for a zero rate', () => {
    assert.equal(dueBy(10_000, 0, 0), 0);
  });
});

describe('sendsBefore', () => {
  it('counts the sends strictly inside the window', () => {
    assert.equal(sendsBefore(1000, 10, 0), 10); // 0, 100, …, 900
    assert.equal(sendsBefore(1000, 10, 50), 10); // 50, 150, …, 950
    assert.equal(sendsBefore(1000, 10, 100), 9); // 100, …, 900; 1000 is outside
    assert.equal(sendsBefore(1000, 10, 1000), 0);
    assert.equal(sendsBefore(2000, 2.5, 0), 5); // 0, 400, 800, 1200, 1600
  });

  it('agrees with dueBy at the end of the window', () => {
    for (const [w, r, o] of [
      [1000, 7, 13],
      [10_000, 333.3, 1.7],
      [2000, 0.5, 0],
    ] as const) {
      assert.equal(sendsBefore(w, r, o), dueBy(w - 1e-6, r, o));
    }
  });
});

describe('staggeredStreams', () => {
  it('splits the aggregate rate and sends exactly rate × window in total', () => {
    const streams = staggeredStreams(200, 10_000, 2000);
    assert.equal(streams.length, 200);
    assert.ok(streams.every((s) => s.rate === 50 && s.sent === 0));
    assert.equal(
      streams.reduce((n, s) => n + s.total, 0),
      20_000,
    );
  });

  it('spaces all streams’ sends evenly, 1000/rate ms apart', () => {
    const rate = 400;
    const streams = staggeredStreams(8, rate, 1000);
    const times: number[] = [];
    for (const s of streams) for (let k = 0; k < s.total; k++) times.push(s.offsetMs + (k * 1000) / s.rate);
    times.sort((a, b) => a - b);
    assert.equal(times.length, rate);
    for (let i = 1; i < times.length; i++) {
      assert.ok(Math.abs((times[i] as number) - (times[i - 1] as number) - 1000 / rate) < 1e-9, `gap at ${i}`);
    }
  });

  it('lets a slow stream send nothing rather than early', () => {
    // 3 streams at 2/s aggregate: offsets 0, 500, 1000 ms; the third starts outside a 1 s window.
    const streams = staggeredStreams(3, 2, 1000);
    assert.deepEqual(
      streams.map((s) => s.total),
      [1, 1, 0],
    );
  });
});
