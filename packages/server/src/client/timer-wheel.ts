/**
 * TimerWheel: coarse deadlines for many connections on one timer. A node with 100k
 * connections would otherwise hold 100k–200k Timeout objects (ping, pong, stale, expiry) —
 * about 180 bytes each plus timer-list work; here a connection costs one Set entry, and a
 * deadline fires within one resolution step after it is due (never before).
 *
 * A deadline at `at` goes into slot ⌈at / step⌉, the slot ending at the next step boundary.
 * The tick is therefore armed at the boundaries themselves (not on a free-running interval):
 * with an interval started at an arbitrary phase, a slot waited up to one more step for the
 * next tick after its boundary, and deadlines fired up to two steps late. The timer runs only
 * while something is scheduled.
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
  #timer: NodeJS.Timeout | undefined;

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
    this.#arm();
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

  /** close stops the timer; scheduled deadlines never fire. */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#slots.clear();
  }

  /** #arm sets the tick at the next step boundary, if something is scheduled and no tick is set. */
  #arm(): void {
    if (this.#timer || this.#slots.size === 0) return;
    // (0, step]: a tick that ran a little before the boundary (timers and Date.now use
    // different clocks) re-arms for the few ms left rather than waiting a whole step.
    const wait = this.#resolution - (Date.now() % this.#resolution);
    this.#timer = setTimeout(() => this.#tick(), wait);
    this.#timer.unref();
  }

  #tick(): void {
    this.#timer = undefined;
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
    this.#arm();
  }
}
