/**
 * LatencyHistogram: latency counts in fixed log-linear buckets (HDR-like: 64 buckets per power
 * of two above 128 µs, one per µs below), so that several load-generator processes can each
 * count their deliveries and the parent can add the counts up — samples could not be merged
 * without shipping every one of them over IPC. The relative error of a percentile is below
 * 1/64 (1.6 %); count, mean and max are exact.
 *
 * Percentiles are nearest-rank, reported as the upper edge of their bucket (clamped to the exact
 * max), so a reported p99 is never below the true one.
 *
 * @module
 */
import type { LatencySummary } from './stats.js';

/** Sub-buckets per power of two (2^SUB_BITS); below 2^(SUB_BITS+1) µs every µs has a bucket. */
const SUB_BITS = 6;
const SUB = 1 << SUB_BITS;
/** Latencies are capped at 2^32 - 1 µs (71 minutes): the highest bucket is (31 - SUB_BITS) * SUB + 2 * SUB - 1. */
export const BUCKETS = (32 - SUB_BITS) * SUB + SUB;

/** bucketOf is the bucket index of a latency of `micros` µs. */
export function bucketOf(micros: number): number {
  const v = micros <= 0 ? 0 : micros >= 4_294_967_295 ? 4_294_967_295 : Math.round(micros);
  if (v < 2 * SUB) return v;
  const shift = 31 - Math.clz32(v) - SUB_BITS;
  return shift * SUB + Math.floor(v / 2 ** shift);
}

/** upperEdge is the highest latency (µs) that falls into bucket `i`. */
export function upperEdge(i: number): number {
  if (i < 2 * SUB) return i;
  const shift = Math.floor(i / SUB) - 1;
  const q = i - shift * SUB;
  return (q + 1) * 2 ** shift - 1;
}

/** HistogramSnapshot is a histogram as plain data (for IPC): non-empty buckets as [index, count] pairs. */
export interface HistogramSnapshot {
  buckets: Array<[number, number]>;
  count: number;
  sumMicros: number;
  maxMicros: number;
}

/** LatencyHistogram counts latencies (µs) in fixed buckets; mergeable. */
export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  sumMicros = 0;
  maxMicros = Number.NEGATIVE_INFINITY;

  /** add counts one latency of `micros` µs. */
  add(micros: number): void {
    const i = bucketOf(micros);
    this.counts[i] = (this.counts[i] as number) + 1;
    this.count++;
    this.sumMicros += micros;
    if (micros > this.maxMicros) this.maxMicros = micros;
  }

  /** merge adds the counts of `s` (another process's histogram) to these. */
  merge(s: HistogramSnapshot): void {
    for (const [i, n] of s.buckets) this.counts[i] = (this.counts[i] as number) + n;
    this.count += s.count;
    this.sumMicros += s.sumMicros;
    if (s.count > 0 && s.maxMicros > this.maxMicros) this.maxMicros = s.maxMicros;
  }

  snapshot(): HistogramSnapshot {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < BUCKETS; i++) if ((this.counts[i] as number) > 0) buckets.push([i, this.counts[i] as number]);
    return { buckets, count: this.count, sumMicros: this.sumMicros, maxMicros: this.maxMicros };
  }

  /** percentileMicros is the nearest-rank percentile `p` (upper bucket edge, at most the max); NaN when empty. */
  percentileMicros(p: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.min(this.count, Math.max(1, Math.ceil((p / 100) * this.count)));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i] as number;
      if (seen >= rank) return Math.min(upperEdge(i), this.maxMicros);
    }
    return this.maxMicros;
  }

  /** summary in milliseconds, the shape the scenarios report. */
  summary(): LatencySummary {
    const ms = (micros: number) => micros / 1000;
    const empty = this.count === 0;
    return {
      count: this.count,
      mean: empty ? Number.NaN : ms(this.sumMicros / this.count),
      p50: ms(this.percentileMicros(50)),
      p90: ms(this.percentileMicros(90)),
      p99: ms(this.percentileMicros(99)),
      p999: ms(this.percentileMicros(99.9)),
      max: empty ? Number.NaN : ms(this.maxMicros),
    };
  }
}
