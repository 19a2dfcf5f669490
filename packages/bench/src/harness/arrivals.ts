/**
 * Arrival times of events (e.g. calls reaching an origin) and the rates read from them: the
 * peak rate in a sliding window, and a rate-over-time series for charts.
 *
 * Why exact timestamps rather than fixed buckets: a peak read from fixed 1 s buckets misses a
 * burst that straddles two buckets (half in each), and a peak read from 100 ms buckets scaled
 * ×10 overstates what a backend sized "per second" feels. The peak here is the most events in
 * ANY window of the given width, which is the number a capacity such as "2,000 queries/s" is
 * compared with.
 *
 * @module
 */
import type { Series } from './scenario.js';

/** Arrivals records event times (ms, non-decreasing) in a growable Float64Array. */
export class Arrivals {
  #times = new Float64Array(1024);
  #n = 0;

  /** add records one event at `atMs` (performance.now() by default). */
  add(atMs = performance.now()): void {
    if (this.#n === this.#times.length) {
      const bigger = new Float64Array(this.#times.length * 2);
      bigger.set(this.#times);
      this.#times = bigger;
    }
    this.#times[this.#n++] = atMs;
  }

  /** count is the number of events recorded. */
  get count(): number {
    return this.#n;
  }

  /** times returns the recorded times, sorted (they usually already are). */
  times(): Float64Array {
    return this.#times.slice(0, this.#n).sort();
  }

  /** clear forgets every event. */
  clear(): void {
    this.#n = 0;
  }
}

/**
 * peakCount is the largest number of `sorted` times (ascending) inside any half-open window
 * [t, t + windowMs). A window always can start at an event, so only those starts are tried
 * (two pointers, O(n)). 0 for no events.
 */
export function peakCount(sorted: ArrayLike<number>, windowMs: number): number {
  if (!(windowMs > 0)) throw new RangeError(`peakCount: windowMs must be > 0 (got ${windowMs})`);
  let best = 0;
  let end = 0;
  for (let start = 0; start < sorted.length; start++) {
    const limit = (sorted[start] as number) + windowMs;
    if (end < start) end = start;
    while (end < sorted.length && (sorted[end] as number) < limit) end++;
    best = Math.max(best, end - start);
  }
  return best;
}

/** peakRate is {@link peakCount} as events per second: count × 1000 / windowMs. */
export function peakRate(sorted: ArrayLike<number>, windowMs = 1000): number {
  return (peakCount(sorted, windowMs) * 1000) / windowMs;
}

/**
 * slidingRateSeries charts the rate over time: every `stepMs` from `fromMs` to `toMs`
 * (inclusive of the step that reaches `toMs`), the events in the trailing window
 * (t − windowMs, t] per second. x is seconds since `fromMs`. Its maximum is at most
 * {@link peakRate} (which tries every window, not only those ending on a step).
 */
export function slidingRateSeries(
  sorted: ArrayLike<number>,
  label: string,
  fromMs: number,
  toMs: number,
  windowMs = 1000,
  stepMs = 100,
): Series {
  if (!(windowMs > 0 && stepMs > 0)) throw new RangeError('slidingRateSeries: windowMs and stepMs must be > 0');
  const points: Array<[number, number]> = [];
  let lo = 0; // first event > t − windowMs
  let hi = 0; // first event > t
  for (let t = fromMs; t < toMs + stepMs; t += stepMs) {
    while (hi < sorted.length && (sorted[hi] as number) <= t) hi++;
    while (lo < hi && (sorted[lo] as number) <= t - windowMs) lo++;
    points.push([Math.round(t - fromMs) / 1000, ((hi - lo) * 1000) / windowMs]);
  }
  return { label, points };
}
