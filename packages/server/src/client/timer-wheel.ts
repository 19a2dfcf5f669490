/**
 * TimerWheel: coarse deadlines for many connections on one interval. A node with 100k
 * connections would otherwise hold 100k–200k Timeout objects (ping, pong, stale, expiry) —
 * about 180 bytes each plus timer-list work; here a connection costs one Set entry, and a
 * deadline fires within one resolution step after it is due (never before).
 *
 * @module
 */

/** WheelTarget is anything with at most one pending deadline on a wheel. */
export interface WheelTarget {
  /** Slot the target is scheduled in; managed by the wheel. */
  wheelSlot: number | undefined;
  /** onTimer runs when the deadline passed; the target reschedules itself if it wants to. */
  onTimer(now: number): void;
}

/** TimerWheel schedules one deadline per target, checked every `resolutionMs`. */
export class TimerWheel {
  readonly #resolution: number;
  readonly #slots = new Map<number, Set<WheelTarget>>();
  #interval: NodeJS.Timeout | undefined;

  constructor(resolutionMs = 100) {
    this.#resolution = resolutionMs;
  }

  /** schedule sets `target`'s deadline to `at` (ms since epoch), replacing any earlier one. */
  schedule(target: WheelTarget, at: number): void {
    const slot = Math.ceil(at / this.#resolution);
    if (target.wheelSlot === slot) return;
    this.cancel(target);
    let set = this.#slots.get(slot);
    if (!set) this.#slots.set(slot, (set = new Set()));
    set.add(target);
    target.wheelSlot = slot;
    if (!this.#interval) {
      this.#interval = setInterval(() => this.#tick(), this.#resolution);
      this.#interval.unref();
    }
  }

  /** cancel removes `target`'s deadline, if any. */
  cancel(target: WheelTarget): void {
    const slot = target.wheelSlot;
    if (slot === undefined) return;
    target.wheelSlot = undefined;
    const set = this.#slots.get(slot);
    if (!set) return;
    set.delete(target);
    if (set.size === 0) this.#slots.delete(slot);
  }

  /** size counts scheduled targets (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const set of this.#slots.values()) n += set.size;
    return n;
  }

  /** close stops the interval; scheduled deadlines never fire. */
  close(): void {
    if (this.#interval) clearInterval(this.#interval);
    this.#interval = undefined;
    this.#slots.clear();
  }

  #tick(): void {
    const now = Date.now();
    const current = Math.floor(now / this.#resolution);
    const due: Set<WheelTarget>[] = [];
    for (const [slot, set] of this.#slots) {
      if (slot > current) continue;
      this.#slots.delete(slot);
      due.push(set);
    }
    for (const set of due) {
      for (const target of set) {
        target.wheelSlot = undefined;
        target.onTimer(now);
      }
    }
  }
}
