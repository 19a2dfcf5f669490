/**
 * prom-client metrics with cheap children for hot paths: a child counts in plain numbers, and
 * the metric folds what its children counted into itself whenever it is read (`get()`, which
 * every exposition of the registry calls, through the metric's `collect`), so /metrics and
 * `get()` show exactly what direct `inc()` / `observe()` calls would have.
 *
 * Why: per call, prom-client checks the labels object, builds a hash string from it, looks the
 * string up in an object (a megamorphic keyed load of a fresh string) and, for a histogram,
 * turns its bucket bound into a property key twice (number to string). That was 1,000 to
 * 4,000 instructions per counted event: three of them, 7 % of a server API publish (issue 18).
 * A child costs an addition (a counter) or a bucket search and three additions (a histogram).
 *
 * The metrics stay prom-client's own (direct `inc`/`observe` with labels still work, and mix
 * with the children). The histogram folds its children in through the shape prom-client keeps
 * per label set (`hashMap` entries of `bucketValues`, `sum`, `count`): test/deferred-metrics
 * compares its exposition with a plain Histogram's, so a prom-client that changes it fails there.
 *
 * @module
 */
import { Counter, Histogram, type CounterConfiguration, type HistogramConfiguration } from 'prom-client';

/** CounterChild counts one label set of a {@link DeferredCounter}. */
export interface CounterChild {
  inc(): void;
}

/** HistogramChild observes into one label set of a {@link DeferredHistogram}. */
export interface HistogramChild {
  observe(value: number): void;
}

class Count implements CounterChild {
  n = 0;
  constructor(readonly labels: Partial<Record<string, string | number>>) {}
  inc(): void {
    this.n++;
  }
}

/** DeferredCounter is a prom-client Counter with cheap children ({@link DeferredCounter.child}). */
export class DeferredCounter<T extends string> extends Counter<T> {
  #children: Count[] = [];

  constructor(config: CounterConfiguration<T>) {
    const own = config.collect;
    super({
      ...config,
      collect(this: Counter<T>) {
        (this as DeferredCounter<T>).#fold();
        return own?.call(this);
      },
    });
  }

  /**
   * child returns a counter of the label set `labels`, whose `inc()` adds 1 to a number until
   * the metric is read. Make it once and keep it: each call makes a new one.
   */
  child(labels: Partial<Record<T, string | number>>): CounterChild {
    const c = new Count(labels);
    this.#children.push(c);
    return c;
  }

  #fold(): void {
    for (const c of this.#children) {
      if (c.n === 0) continue;
      const n = c.n;
      c.n = 0;
      this.inc(c.labels as Partial<Record<T, string | number>>, n);
    }
  }

  override reset(): void {
    super.reset();
    // Called by prom-client's constructor too, before the children exist.
    if (#children in this) for (const c of this.#children) c.n = 0;
  }
}

/** What prom-client keeps per label set of a histogram (see the module comment). */
interface HistogramEntry {
  labels: Record<string, string | number>;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

class Observations implements HistogramChild {
  /** Observations per bucket, in the order of `bounds`; the last one is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Record<string, string | number>,
    readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(value: number): void {
    // As prom-client refuses it.
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/** DeferredHistogram is a prom-client Histogram with cheap children ({@link DeferredHistogram.child}). */
export class DeferredHistogram<T extends string> extends Histogram<T> {
  #children: Observations[] = [];
  readonly #bounds: readonly number[];
  readonly #labelNames: readonly string[];

  constructor(config: HistogramConfiguration<T> & { buckets: number[] }) {
    const own = config.collect;
    super({
      ...config,
      collect(this: Histogram<T>) {
        (this as DeferredHistogram<T>).#fold();
        return own?.call(this);
      },
    });
    this.#bounds = [...config.buckets];
    this.#labelNames = [...(config.labelNames ?? [])];
  }

  /**
   * child returns an observer of the label set `labels` (every label of the histogram), whose
   * `observe(v)` adds to numbers until the metric is read. Make it once and keep it.
   */
  child(labels: Record<T, string | number>): HistogramChild {
    const c = new Observations(labels, this.#bounds);
    this.#children.push(c);
    return c;
  }

  #fold(): void {
    for (const c of this.#children) {
      if (c.count === 0) continue;
      const entry = this.#entry(c.labels);
      c.counts.forEach((n, i) => {
        const bound = c.bounds[i];
        // +Inf is not a bucket of prom-client's: it is the count.
        if (n !== 0 && bound !== undefined) entry.bucketValues[bound] = (entry.bucketValues[bound] ?? 0) + n;
      });
      entry.sum += c.sum;
      entry.count += c.count;
      c.counts.fill(0);
      c.sum = 0;
      c.count = 0;
    }
  }

  /** #entry is prom-client's entry for `labels`, made (by its public `zero`) when there is none. */
  #entry(labels: Record<string, string | number>): HistogramEntry {
    const find = (): HistogramEntry | undefined =>
      Object.values((this as unknown as { hashMap: Record<string, HistogramEntry> }).hashMap).find((e) =>
        this.#labelNames.every((name) => e.labels[name] === labels[name]),
      );
    let entry = find();
    if (entry === undefined) {
      this.zero(labels as Partial<Record<T, string | number>>);
      entry = find() as HistogramEntry;
    }
    return entry;
  }

  override reset(): void {
    super.reset();
    if (#children in this) {
      for (const c of this.#children) {
        c.counts.fill(0);
        c.sum = 0;
        c.count = 0;
      }
    }
  }
}
