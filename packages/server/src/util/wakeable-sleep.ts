/**
 * A sleep a background loop can be woken from: the polling consumers wait their poll or retry
 * interval with it, and `stop` wakes them so a shutdown never waits a whole interval.
 *
 * @module
 */

/** WakeableSleep is one loop's sleep; at most one sleep is pending at a time. */
export class WakeableSleep {
  #wake: (() => void) | undefined;

  /** sleep resolves after `ms`, or as soon as {@link wake} is called. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  /** wake ends the pending sleep now (nothing when none is pending). */
  wake(): void {
    this.#wake?.();
  }
}
