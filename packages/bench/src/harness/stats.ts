/**
 * Measurement primitives: latency samples with nearest-rank percentiles, and per-subscriber
 * sequence tracking that turns received sequence numbers into exact loss, duplicate and
 * reordering counts.
 *
 * @module
 */

/** LatencySummary summarises a set of latency samples (all values in milliseconds). */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/**
 * percentile returns the nearest-rank percentile `p` (0 < p ≤ 100) of ascending-sorted
 * `sorted`: the smallest sample such that at least p% of samples are ≤ it. NaN when empty.
 * Nearest-rank never interpolates, so the reported p99 is a latency some message really had.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  if (!(p > 0)) return sorted[0] as number;
  const rank = Math.min(n, Math.max(1, Math.ceil((p / 100) * n)));
  return sorted[rank - 1] as number;
}

/** summarize computes a {@link LatencySummary}; it sorts `samples` in place. */
export function summarize(samples: Float64Array): LatencySummary {
  samples.sort();
  const n = samples.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += samples[i] as number;
  return {
    count: n,
    mean: n === 0 ? Number.NaN : sum / n,
    p50: percentile(samples, 50),
    p90: percentile(samples, 90),
    p99: percentile(samples, 99),
    p999: percentile(samples, 99.9),
    max: n === 0 ? Number.NaN : (samples[n - 1] as number),
  };
}

/** roundSummary rounds every field of a summary to `digits` decimals (for readable output). */
export function roundSummary(s: LatencySummary, digits: number): LatencySummary {
  const r = (v: number) => (Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : v);
  return {
    count: s.count,
    mean: r(s.mean),
    p50: r(s.p50),
    p90: r(s.p90),
    p99: r(s.p99),
    p999: r(s.p999),
    max: r(s.max),
  };
}

/**
 * LatencyRecorder keeps latency samples in a growable Float64Array (8 bytes each, no
 * per-sample allocation on the hot path). Past `capacity` samples it switches to reservoir
 * sampling (algorithm R), which keeps a uniform sample so percentiles stay unbiased while
 * memory stays bounded; count and max are always exact.
 */
export class LatencyRecorder {
  private buf: Float64Array;
  private n = 0;
  private seen = 0;
  private maxSeen = Number.NEGATIVE_INFINITY;

  /** Creates a recorder keeping at most `capacity` samples. */
  constructor(private readonly capacity = 4_000_000) {
    this.buf = new Float64Array(Math.min(capacity, 65_536));
  }

  /** add records one sample. */
  add(value: number): void {
    this.seen++;
    if (value > this.maxSeen) this.maxSeen = value;
    if (this.n < this.buf.length) {
      this.buf[this.n++] = value;
      return;
    }
    if (this.n < this.capacity) {
      const bigger = new Float64Array(Math.min(this.capacity, this.buf.length * 2));
      bigger.set(this.buf);
      this.buf = bigger;
      this.buf[this.n++] = value;
      return;
    }
    const j = Math.floor(Math.random() * this.seen);
    if (j < this.capacity) this.buf[j] = value;
  }

  /** count is the number of samples added (including ones the reservoir dropped). */
  get count(): number {
    return this.seen;
  }

  /** summary summarises the samples so far; count and max are exact even when sampled. */
  summary(): LatencySummary {
    const s = summarize(this.buf.slice(0, this.n));
    return { ...s, count: this.seen, max: this.seen === 0 ? Number.NaN : this.maxSeen };
  }
}

/**
 * SeqTracker records the sequence numbers one subscriber received from one channel, where
 * the publisher numbers that channel's publications consecutively from `first`. It keeps a
 * bitmap of seen numbers so that loss is exact (published − distinct received), not
 * inferred from gaps, and reordering and duplicates are counted separately.
 */
export class SeqTracker {
  private bits = new Uint8Array(64);
  /** distinct is how many different in-range sequence numbers arrived. */
  distinct = 0;
  /** duplicates counts arrivals of a sequence number already seen. */
  duplicates = 0;
  /** outOfOrder counts arrivals lower than an already-seen sequence number (not duplicates). */
  outOfOrder = 0;
  /** stale counts arrivals below `first` (e.g. a late message from a previous phase). */
  stale = 0;
  /** highest is the highest sequence number seen, or first − 1 when none. */
  highest: number;

  /** Creates a tracker for sequence numbers `first`, `first + 1`, …. */
  constructor(readonly first = 1) {
    this.highest = first - 1;
  }

  /** record notes the arrival of sequence number `seq`. */
  record(seq: number): void {
    const i = seq - this.first;
    if (i < 0 || !Number.isInteger(i)) {
      this.stale++;
      return;
    }
    const byte = i >>> 3;
    if (byte >= this.bits.length) {
      let size = this.bits.length * 2;
      while (size <= byte) size *= 2;
      const bigger = new Uint8Array(size);
      bigger.set(this.bits);
      this.bits = bigger;
    }
    const mask = 1 << (i & 7);
    const cur = this.bits[byte] as number;
    if ((cur & mask) !== 0) {
      this.duplicates++;
      return;
    }
    this.bits[byte] = cur | mask;
    this.distinct++;
    if (seq < this.highest) this.outOfOrder++;
    else this.highest = seq;
  }

  /** has reports whether `seq` arrived. */
  has(seq: number): boolean {
    const i = seq - this.first;
    if (i < 0) return false;
    const byte = i >>> 3;
    return byte < this.bits.length && ((this.bits[byte] as number) & (1 << (i & 7))) !== 0;
  }

  /**
   * missing is how many of the `published` publications (numbered first … first+published−1)
   * never arrived. Arrivals beyond that range (which should not happen) do not offset loss.
   */
  missing(published: number): number {
    let got = 0;
    const last = this.first + published - 1;
    if (this.highest <= last) got = this.distinct;
    else for (let s = this.first; s <= last; s++) if (this.has(s)) got++;
    return published - got;
  }

  /** missingSeqs lists up to `limit` missing sequence numbers among the `published` ones. */
  missingSeqs(published: number, limit = 20): number[] {
    const out: number[] = [];
    for (let s = this.first; s < this.first + published && out.length < limit; s++) if (!this.has(s)) out.push(s);
    return out;
  }
}

/** LossSummary aggregates the {@link SeqTracker}s of many subscribers. */
export interface LossSummary {
  /** Publications expected across all subscribers (Σ published to each one's channel). */
  expected: number;
  /** Missing deliveries across all subscribers. */
  missing: number;
  /** Subscribers that missed at least one publication. */
  subscribersWithLoss: number;
  /** Largest number of publications one subscriber missed. */
  maxMissingPerSubscriber: number;
  duplicates: number;
  outOfOrder: number;
  stale: number;
}

/** summarizeLoss aggregates trackers; `publishedFor(i)` is what subscriber i should have got. */
export function summarizeLoss(trackers: readonly SeqTracker[], publishedFor: (index: number) => number): LossSummary {
  const out: LossSummary = {
    expected: 0,
    missing: 0,
    subscribersWithLoss: 0,
    maxMissingPerSubscriber: 0,
    duplicates: 0,
    outOfOrder: 0,
    stale: 0,
  };
  trackers.forEach((t, i) => {
    const published = publishedFor(i);
    const miss = t.missing(published);
    out.expected += published;
    out.missing += miss;
    if (miss > 0) out.subscribersWithLoss++;
    if (miss > out.maxMissingPerSubscriber) out.maxMissingPerSubscriber = miss;
    out.duplicates += t.duplicates;
    out.outOfOrder += t.outOfOrder;
    out.stale += t.stale;
  });
  return out;
}

/**
 * medianOf combines results of the same shape field by field: numbers become their median
 * (the lower middle for an even count), nested objects are combined recursively, and anything
 * else is taken from the first result. Each field's median may come from a different run.
 */
export function medianOf<T>(items: readonly T[]): T {
  const first = items[0];
  if (typeof first === 'number') {
    const sorted = (items as readonly number[]).filter((v) => typeof v === 'number').sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) / 2)] as T;
  }
  if (first === null || typeof first !== 'object' || Array.isArray(first)) return first as T;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(first)) {
    out[key] = medianOf(items.map((it) => (it as Record<string, unknown>)[key]));
  }
  return out as T;
}
