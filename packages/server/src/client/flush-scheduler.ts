/**
 * FlushScheduler decides when queued frames leave for the sockets (write coalescing).
 *
 * Immediate flushes run once after the current I/O phase (setImmediate): everything queued
 * meanwhile — replies, a burst of publications — leaves each socket as one frame and one
 * write. With `client.write_delay` > 0, pushes wait up to that long so more of them share a
 * write (fewer syscalls, less CPU per message, at the cost of that much latency); replies to
 * commands are always flushed immediately so RPCs and subscribes stay fast.
 *
 * @module
 */

/** Flushable is what the scheduler flushes: a session's write queue. */
export interface Flushable {
  flush(): void;
}

/** FlushScheduler batches flushes of many sessions into one pass. */
export class FlushScheduler {
  readonly writeDelayMs: number;
  #now: Flushable[] = [];
  #nowScheduled = false;
  #later: Flushable[] = [];
  #laterTimer: NodeJS.Timeout | undefined;

  constructor(writeDelayMs: number) {
    this.writeDelayMs = writeDelayMs;
  }

  /** schedule flushes `s` in the next pass: immediately when `urgent` or without write delay. */
  schedule(s: Flushable, urgent: boolean): void {
    if (urgent || this.writeDelayMs === 0) {
      this.#now.push(s);
      if (this.#nowScheduled) return;
      this.#nowScheduled = true;
      setImmediate(() => {
        this.#nowScheduled = false;
        const due = this.#now;
        this.#now = [];
        for (const d of due) d.flush();
      });
      return;
    }
    this.#later.push(s);
    if (this.#laterTimer) return;
    this.#laterTimer = setTimeout(() => {
      this.#laterTimer = undefined;
      const due = this.#later;
      this.#later = [];
      for (const d of due) d.flush();
    }, this.writeDelayMs);
  }

  /** close cancels a pending delayed pass (its sessions are closing anyway). */
  close(): void {
    if (this.#laterTimer) clearTimeout(this.#laterTimer);
    this.#laterTimer = undefined;
  }
}
