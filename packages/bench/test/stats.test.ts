/**
 * Tests of the measurement primitives: nearest-rank percentiles and exact loss detection
 * from sequence numbers (gaps, duplicates, reordering, stale arrivals).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LatencyRecorder, medianOf, percentile, SeqTracker, summarize, summarizeLoss } from '../src/harness/stats.js';

describe('percentile (nearest rank)', () => {
  const oneToHundred = Float64Array.from({ length: 100 }, (_, i) => i + 1);

  it('returns the sample at rank ceil(p·n)', () => {
    assert.equal(percentile(oneToHundred, 50), 50);
    assert.equal(percentile(oneToHundred, 90), 90);
    assert.equal(percentile(oneToHundred, 99), 99);
    assert.equal(percentile(oneToHundred, 99.9), 100);
    assert.equal(percentile(oneToHundred, 100), 100);
    assert.equal(percentile(oneToHundred, 0.5), 1);
  });

  it('never interpolates between samples', () => {
    assert.equal(percentile([10, 20], 50), 10);
    assert.equal(percentile([10, 20], 51), 20);
    assert.equal(percentile([10, 20, 30, 40], 75), 30);
    assert.equal(percentile([10, 20, 30, 40], 76), 40);
  });

  it('handles one sample, p = 0 and no samples', () => {
    assert.equal(percentile([7], 99), 7);
    assert.equal(percentile([3, 4, 5], 0), 3);
    assert.ok(Number.isNaN(percentile([], 50)));
  });

  it('p99 of 1000 samples is the 990th smallest, so 10 outliers do not hide', () => {
    const samples = Float64Array.from({ length: 1000 }, (_, i) => (i < 989 ? 1 : 500));
    assert.equal(percentile(samples, 99), 500);
    const fewer = Float64Array.from({ length: 1000 }, (_, i) => (i < 990 ? 1 : 500));
    assert.equal(percentile(fewer, 99), 1);
  });
});

describe('summarize', () => {
  it('sorts unsorted input and reports count, mean, percentiles and max', () => {
    const s = summarize(Float64Array.from([5, 1, 4, 2, 3]));
    assert.deepEqual(s, { count: 5, mean: 3, p50: 3, p90: 5, p99: 5, p999: 5, max: 5 });
  });

  it('reports NaN for an empty set', () => {
    const s = summarize(new Float64Array(0));
    assert.equal(s.count, 0);
    assert.ok(Number.isNaN(s.p50) && Number.isNaN(s.max) && Number.isNaN(s.mean));
  });
});

describe('LatencyRecorder', () => {
  it('keeps every sample while under capacity (growing its buffer)', () => {
    const r = new LatencyRecorder();
    for (let i = 1; i <= 200_000; i++) r.add(i);
    const s = r.summary();
    assert.equal(s.count, 200_000);
    assert.equal(s.p50, 100_000);
    assert.equal(s.p99, 198_000);
    assert.equal(s.max, 200_000);
  });

  it('past capacity keeps exact count and max and an unbiased sample', () => {
    const r = new LatencyRecorder(1000);
    for (let i = 0; i < 100_000; i++) r.add(i % 100);
    r.add(12_345);
    const s = r.summary();
    assert.equal(s.count, 100_001);
    assert.equal(s.max, 12_345);
    // A uniform sample of a uniform 0..99 distribution: the median is near 50.
    assert.ok(s.p50 > 35 && s.p50 < 65, `p50 ${s.p50}`);
  });
});

describe('SeqTracker', () => {
  it('counts nothing missing for an in-order complete stream', () => {
    const t = new SeqTracker(1);
    for (let s = 1; s <= 10; s++) t.record(s);
    assert.equal(t.missing(10), 0);
    assert.equal(t.duplicates, 0);
    assert.equal(t.outOfOrder, 0);
  });

  it('finds gaps exactly', () => {
    const t = new SeqTracker(1);
    for (const s of [1, 2, 4, 5, 8]) t.record(s);
    assert.equal(t.missing(8), 3);
    assert.deepEqual(t.missingSeqs(8), [3, 6, 7]);
    // Publications 9 and 10 were sent but never arrived: loss at the tail counts too.
    assert.equal(t.missing(10), 5);
    assert.deepEqual(t.missingSeqs(10), [3, 6, 7, 9, 10]);
  });

  it('does not let duplicates hide a loss', () => {
    const t = new SeqTracker(1);
    for (const s of [1, 2, 2, 4, 4, 4]) t.record(s);
    assert.equal(t.duplicates, 3);
    assert.equal(t.distinct, 3);
    assert.equal(t.missing(4), 1);
    assert.deepEqual(t.missingSeqs(4), [3]);
  });

  it('counts reordering separately from loss', () => {
    const t = new SeqTracker(1);
    for (const s of [1, 3, 2, 5, 4]) t.record(s);
    assert.equal(t.outOfOrder, 2);
    assert.equal(t.missing(5), 0);
  });

  it('tracks a range starting later and ignores stale arrivals', () => {
    const t = new SeqTracker(101);
    for (const s of [99, 100, 101, 102, 104]) t.record(s);
    assert.equal(t.stale, 2);
    assert.equal(t.missing(4), 1); // 101..104, 103 missing
    assert.deepEqual(t.missingSeqs(4), [103]);
  });

  it('does not let arrivals beyond the published range offset loss', () => {
    const t = new SeqTracker(1);
    for (const s of [1, 3, 4, 5]) t.record(s);
    assert.equal(t.missing(3), 1); // 2 is missing; 4 and 5 are outside 1..3
  });

  it('grows past its initial bitmap', () => {
    const t = new SeqTracker(1);
    for (let s = 1; s <= 100_000; s++) if (s !== 77_777) t.record(s);
    assert.equal(t.missing(100_000), 1);
    assert.deepEqual(t.missingSeqs(100_000), [77_777]);
  });
});

describe('summarizeLoss', () => {
  it('aggregates subscribers on channels with different publication counts', () => {
    const a = new SeqTracker(1);
    [1, 2, 3].forEach((s) => a.record(s)); // channel 0: 3 published, none missing
    const b = new SeqTracker(1);
    [1, 3, 3].forEach((s) => b.record(s)); // channel 0: 1 missing, 1 duplicate
    const c = new SeqTracker(1);
    [2].forEach((s) => c.record(s)); // channel 1: 5 published, 4 missing
    const published = [3, 3, 5];
    const loss = summarizeLoss([a, b, c], (i) => published[i] as number);
    assert.deepEqual(loss, {
      expected: 11,
      missing: 5,
      subscribersWithLoss: 2,
      maxMissingPerSubscriber: 4,
      duplicates: 1,
      outOfOrder: 0,
      stale: 0,
    });
  });
});

describe('medianOf', () => {
  it('takes the median of each numeric field, recursively, and the first of anything else', () => {
    const runs = [
      { target: 'raw', cpu: 30, mem: { rss: 5 }, note: 'a' },
      { target: 'raw', cpu: 10, mem: { rss: 9 }, note: 'b' },
      { target: 'raw', cpu: 20, mem: { rss: 7 }, note: 'c' },
    ];
    assert.deepEqual(medianOf(runs), { target: 'raw', cpu: 20, mem: { rss: 7 }, note: 'a' });
    assert.equal(medianOf([4, 1, 3, 2]), 2);
  });
});
