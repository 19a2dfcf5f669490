/**
 * The adaptive concurrency limit of one backend target (issue 12, item 11: fixed defaults of 64
 * calls in flight overran an 800 calls/s backend that holds 56, which then throttled, and a
 * studio on launch day has sized nothing). It finds what the backend holds from what its calls
 * show, between `minLimit` and the fixed ceiling (`proxy.max_concurrent`):
 *
 * - **Latency (gradient).** Calls are sampled over a window (at least `windowMs` and
 *   `minSamples` answers). The window's median round trip (`short`) is compared with the
 *   backend's no-load round trip (`baseline`): gradient = clamp(tolerance × baseline / short,
 *   0.5, 1). The new limit is limit × gradient + √limit (the √limit is headroom so the limit
 *   keeps probing upwards while latency is fine), smoothed (20 % of the step per window) so it
 *   does not oscillate. A window where fewer than half the slots were used does not grow the
 *   limit: a quiet target must not drift up to a limit it never tested.
 * - **Drops (multiplicative decrease).** A window that saw a call time out or an overload answer
 *   (429, 503, 504) cuts the limit to limit × `backoff` at once, without smoothing: a backend
 *   that throttles answers fast, so its 503s would otherwise read as good latency.
 * - **Baseline.** A window whose calls were all sent with at most `minLimit` calls in flight
 *   measures the backend without Bulwark's load: its median becomes the baseline, higher or
 *   lower (so a backend that became slower, a deploy or another tenant, is followed once the
 *   limit has fallen to its minimum). Any other window can only lower it: under a standing
 *   queue every call is slow, so a baseline that followed them would ratchet the limit up until
 *   the backend throttled.
 * - **Probe.** A drop while latency gave no warning (a window median within tolerance of the
 *   baseline, or no baseline yet) means the baseline was learned under load — e.g. the target
 *   started in a storm — and is too high to ever warn. Then, at most once per
 *   {@link PROBE_INTERVAL_MS}, the limit is held at `minLimit` for one window of calls sent at
 *   that concurrency, which measures the baseline (BBR's ProbeRTT, Envoy's minimum round-trip
 *   measurement, done only when needed); the limit then resumes from where the drop cut it.
 *
 * This is Netflix concurrency-limits' Gradient2 (gradient with tolerance, √limit queue
 * headroom, smoothing) with AIMD's multiplicative decrease on drops, and Envoy's adaptive
 * concurrency filter's idea of a minimum (no-load) round trip as the reference, measured at
 * minimum concurrency only when a drop shows it is wrong, not periodically (each probe costs a
 * busy target a window of throughput).
 * Pure arithmetic on an injectable clock: no timers, no I/O.
 *
 * @module
 */

/** AdaptiveLimitOptions tune an {@link AdaptiveLimit}; the ceiling is given separately. */
export interface AdaptiveLimitOptions {
  /** Limit before anything was observed. Default: 20 (at most the ceiling). */
  initialLimit?: number;
  /** Lowest limit. Default: 4 (at most the ceiling). */
  minLimit?: number;
  /** How many times the no-load round trip a window's median may reach before the limit falls. Default: 1.5. */
  tolerance?: number;
  /** Factor applied to the limit after a window with a drop (timeout, 429, 503, 504). Default: 0.9. */
  backoff?: number;
  /** Shortest sampling window (ms). Default: 100. */
  windowMs?: number;
  /** Fewest answers in a window before latency is judged (a window with a drop needs none). Default: 10. */
  minSamples?: number;
  /** Monotonic clock in ms; injectable for tests. Default: performance.now. */
  now?: () => number;
  /** Called when the limit (a whole number) changes, for metrics and logs. */
  onChange?: (limit: number) => void;
}

/** adaptiveLimitDefaults are the defaults of {@link AdaptiveLimitOptions}. */
export const adaptiveLimitDefaults = {
  initialLimit: 20,
  minLimit: 4,
  tolerance: 1.5,
  backoff: 0.9,
  windowMs: 100,
  minSamples: 10,
} as const;

/** Share of a gradient step applied per window (Gradient2's smoothing). */
const SMOOTHING = 0.2;
/** Lowest gradient: latency alone never cuts more than this per window (before smoothing). */
const MIN_GRADIENT = 0.5;
/** Shortest time between two probes of the baseline (ms). */
export const PROBE_INTERVAL_MS = 10_000;

/**
 * CallSignal is what a call that held a slot says about the backend: `answer` (it answered:
 * the round trip is a latency sample), `drop` (timeout or overload answer) or `ignore` (says
 * nothing about its load, e.g. the connection was refused).
 */
export type CallSignal = 'answer' | 'drop' | 'ignore';

/** AdaptiveLimit keeps one target's concurrency limit; see the module comment for the rule. */
export class AdaptiveLimit {
  readonly #min: number;
  readonly #max: number;
  readonly #tolerance: number;
  readonly #backoff: number;
  readonly #windowMs: number;
  readonly #minSamples: number;
  readonly #now: () => number;
  readonly #onChange: ((limit: number) => void) | undefined;
  /** The limit as a real number (smoothing moves it by fractions); slots are its floor. */
  #estimate: number;
  #baseline: number | undefined;
  #windowStart: number;
  #rtts: number[] = [];
  #drops = 0;
  #maxInFlight = 0;
  /** While probing, the limit to resume at once the probe window closed; else undefined. */
  #resumeAt: number | undefined;
  #lastProbe = -Infinity;

  /** `maxLimit` is the ceiling (proxy.max_concurrent). Throws a TypeError naming a bad option. */
  constructor(maxLimit: number, options: AdaptiveLimitOptions = {}) {
    const d = adaptiveLimitDefaults;
    this.#max = check('maxLimit', maxLimit, (v) => Number.isInteger(v) && v >= 1);
    const min = check('minLimit', options.minLimit ?? d.minLimit, (v) => Number.isInteger(v) && v >= 1);
    this.#min = Math.min(min, this.#max);
    const initial = check('initialLimit', options.initialLimit ?? d.initialLimit, (v) => v >= 1);
    this.#estimate = Math.min(this.#max, Math.max(this.#min, initial));
    this.#tolerance = check('tolerance', options.tolerance ?? d.tolerance, (v) => v >= 1);
    this.#backoff = check('backoff', options.backoff ?? d.backoff, (v) => v >= 0.1 && v < 1);
    this.#windowMs = check('windowMs', options.windowMs ?? d.windowMs, (v) => v > 0);
    this.#minSamples = check('minSamples', options.minSamples ?? d.minSamples, (v) => Number.isInteger(v) && v >= 1);
    this.#now = options.now ?? (() => performance.now());
    this.#onChange = options.onChange;
    this.#windowStart = this.#now();
  }

  /** limit is the number of slots now: at least minLimit, at most the ceiling. */
  get limit(): number {
    return this.#resumeAt !== undefined ? this.#min : Math.floor(this.#estimate);
  }

  /** baselineMs is the no-load round trip the limit is judged against (undefined before the first window). */
  get baselineMs(): number | undefined {
    return this.#baseline;
  }

  /**
   * record takes one call that held a slot: its signal, its round trip (ms, from getting the
   * slot to its end) and the slots held when it got its own (itself included). It may close
   * the window and move the limit; returns whether the limit (its whole number) changed.
   */
  record(signal: CallSignal, rttMs: number, inFlight: number): boolean {
    // A probe measures only calls sent at its concurrency, not those from before it.
    if (this.#resumeAt !== undefined && inFlight > this.#min) return false;
    if (signal === 'answer' && Number.isFinite(rttMs) && rttMs >= 0) this.#rtts.push(rttMs);
    else if (signal === 'drop') this.#drops++;
    if (inFlight > this.#maxInFlight) this.#maxInFlight = inFlight;
    const now = this.#now();
    if (now - this.#windowStart < this.#windowMs) return false;
    if (this.#drops === 0 && this.#rtts.length < this.#minSamples) return false;
    const before = this.limit;
    if (this.#resumeAt !== undefined) this.#endProbe();
    else this.#update(now);
    this.#windowStart = now;
    this.#rtts = [];
    this.#drops = 0;
    this.#maxInFlight = 0;
    const after = this.limit;
    if (after === before) return false;
    this.#onChange?.(after);
    return true;
  }

  #update(now: number): void {
    if (this.#drops > 0) {
      this.#estimate = this.#clamp(this.#estimate * this.#backoff);
      const unwarned =
        this.#baseline === undefined ||
        this.#rtts.length === 0 ||
        median(this.#rtts) <= this.#tolerance * this.#baseline;
      if (unwarned && now - this.#lastProbe >= PROBE_INTERVAL_MS && this.#estimate > this.#min) {
        this.#lastProbe = now;
        this.#resumeAt = this.#estimate;
      }
      return;
    }
    const short = median(this.#rtts);
    const unloaded = this.#maxInFlight <= this.#min;
    if (this.#baseline === undefined || short < this.#baseline || unloaded) this.#baseline = short;
    const gradient = Math.max(MIN_GRADIENT, Math.min(1, (this.#tolerance * this.#baseline) / Math.max(short, 1e-3)));
    // Only a window that used at least half its slots has shown the limit is worth raising.
    const used = this.#maxInFlight * 2 >= this.#estimate;
    const target = this.#estimate * gradient + (used ? Math.sqrt(this.#estimate) : 0);
    if (!used && target >= this.#estimate) return;
    this.#estimate = this.#clamp(this.#estimate * (1 - SMOOTHING) + target * SMOOTHING);
  }

  /**
   * endProbe closes a window run at minLimit: its median, if it had enough answers and no
   * drop, is the no-load round trip, and the limit resumes where the drop cut it.
   */
  #endProbe(): void {
    if (this.#drops === 0) {
      this.#baseline = median(this.#rtts);
      this.#estimate = this.#resumeAt ?? this.#estimate;
    } else this.#estimate = this.#min; // throttled even at minLimit: someone else fills it
    this.#resumeAt = undefined;
  }

  #clamp(v: number): number {
    return Math.min(this.#max, Math.max(this.#min, v));
  }
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function check(option: string, value: number, ok: (v: number) => boolean): number {
  if (!Number.isFinite(value) || !ok(value)) throw new TypeError(`adaptive limit: ${option} is invalid (got ${value})`);
  return value;
}
