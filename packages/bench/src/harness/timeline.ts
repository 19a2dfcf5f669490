/**
 * Timeline buckets events by time since a start, for the charts of the HTML report: counts
 * become rates per second, latencies become per-bucket percentiles.
 *
 * @module
 */
import { percentile } from './stats.js';
import type { Series } from './scenario.js';

/** Most latency samples kept per bucket and name (reservoir above it, so percentiles stay fair). */
const MAX_SAMPLES_PER_BUCKET = 20_000;

interface Bucket {
  counts: Map<string, number>;
  samples: Map<string, { values: number[]; seen: number }>;
}

/** Timeline records counts and latency samples in fixed time buckets. */
export class Timeline {
  private readonly buckets: Bucket[] = [];
  private startMs: number;

  constructor(
    /** Bucket width in milliseconds. */
    readonly bucketMs = 1000,
    startMs = performance.now(),
  ) {
    this.startMs = startMs;
  }

  /** restart makes `nowMs` time zero and forgets everything recorded. */
  restart(nowMs = performance.now()): void {
    this.startMs = nowMs;
    this.buckets.length = 0;
  }

  private bucket(atMs: number): Bucket {
    const i = Math.max(0, Math.floor((atMs - this.startMs) / this.bucketMs));
    for (let j = this.buckets.length; j <= i; j++) this.buckets.push({ counts: new Map(), samples: new Map() });
    return this.buckets[i] as Bucket;
  }

  /** count adds `n` events called `name` at time `atMs`. */
  count(name: string, n = 1, atMs = performance.now()): void {
    const b = this.bucket(atMs);
    b.counts.set(name, (b.counts.get(name) ?? 0) + n);
  }

  /** sample records one value (usually a latency in ms) called `name` at time `atMs`. */
  sample(name: string, value: number, atMs = performance.now()): void {
    const b = this.bucket(atMs);
    let s = b.samples.get(name);
    if (!s) b.samples.set(name, (s = { values: [], seen: 0 }));
    s.seen++;
    if (s.values.length < MAX_SAMPLES_PER_BUCKET) s.values.push(value);
    else {
      const j = Math.floor(Math.random() * s.seen);
      if (j < MAX_SAMPLES_PER_BUCKET) s.values[j] = value;
    }
  }

  /** rate is `name`'s events per second in each bucket, x = bucket start in seconds. */
  rate(name: string, label = name): Series {
    const perSecond = 1000 / this.bucketMs;
    return {
      label,
      points: this.buckets.map((b, i) => [this.x(i), (b.counts.get(name) ?? 0) * perSecond]),
    };
  }

  /** total is `name`'s running total at the end of each bucket. */
  total(name: string, label = name): Series {
    let sum = 0;
    return {
      label,
      points: this.buckets.map((b, i) => {
        sum += b.counts.get(name) ?? 0;
        return [this.x(i + 1), sum];
      }),
    };
  }

  /** quantile is the p-th percentile (0..100) of `name`'s samples per bucket (buckets without samples are left out). */
  quantile(name: string, p: number, label = `${name} p${p}`): Series {
    const points: Array<[number, number]> = [];
    this.buckets.forEach((b, i) => {
      const s = b.samples.get(name);
      if (!s || s.values.length === 0) return;
      const sorted = Float64Array.from(s.values).sort();
      points.push([this.x(i), percentile(sorted, p)]);
    });
    return { label, points };
  }

  private x(i: number): number {
    return Math.round(((i * this.bucketMs) / 1000) * 1000) / 1000;
  }
}
