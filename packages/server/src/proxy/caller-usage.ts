/**
 * How much each caller (a user, or a connection without one) has used one backend target
 * lately, for the fair queue of the concurrency limiter (issue 12, item 11: in the retry-storm
 * scenario every buggy player always had a call waiting in the proxy's FIFO queue, so a
 * well-behaved player's call waited behind a hundred of theirs, and found the queue full).
 * A caller's score is the number of slots it was granted, decayed with a half-life of
 * {@link USAGE_HALF_LIFE_MS}: a player calling twice a second scores about 3, one calling
 * every two seconds under 1, whatever the target's load. The queue serves the lowest score
 * first.
 *
 * @module
 */

/** Half-life of a caller's usage score (ms): long enough to tell a caller's rate, short enough to forgive a burst. */
export const USAGE_HALF_LIFE_MS = 1000;

/** Below this score a caller is forgotten (the map holds only callers seen in the last few seconds). */
const FORGOTTEN = 0.01;

/** CallerUsage keeps the decayed usage score of every recent caller of one target. */
export class CallerUsage {
  readonly #now: () => number;
  readonly #scores = new Map<string, { score: number; at: number }>();
  #chargesSinceSweep = 0;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** score is `caller`'s usage now (0 for a caller not seen lately). */
  score(caller: string): number {
    const s = this.#scores.get(caller);
    return s === undefined ? 0 : decayed(s.score, this.#now() - s.at);
  }

  /** charge adds one granted slot to `caller`'s score. */
  charge(caller: string): void {
    const now = this.#now();
    const s = this.#scores.get(caller);
    if (s === undefined) this.#scores.set(caller, { score: 1, at: now });
    else {
      s.score = decayed(s.score, now - s.at) + 1;
      s.at = now;
    }
    // Sweep forgotten callers now and then (amortised O(1) per charge): memory follows the
    // callers of the last few seconds.
    if (++this.#chargesSinceSweep >= Math.max(1024, this.#scores.size)) this.#sweep(now);
  }

  /** size is the number of callers remembered (for tests). */
  get size(): number {
    return this.#scores.size;
  }

  #sweep(now: number): void {
    this.#chargesSinceSweep = 0;
    for (const [caller, s] of this.#scores) if (decayed(s.score, now - s.at) < FORGOTTEN) this.#scores.delete(caller);
  }
}

function decayed(score: number, elapsedMs: number): number {
  return elapsedMs <= 0 ? score : score * 2 ** (-elapsedMs / USAGE_HALF_LIFE_MS);
}
