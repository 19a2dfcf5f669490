/**
 * The schedule of many clients polling on their own timers: each client polls every
 * `intervalMs`, first at its own offset within the first interval. The offsets are spread
 * uniformly (a golden-ratio sequence: evenly spread for any count, and neighbouring clients,
 * e.g. the members of one team, land far apart), so the aggregate load is smooth, as real
 * clients' timers, started at different moments, would be.
 *
 * @module
 */

/** The golden ratio's conjugate: successive multiples mod 1 fill [0, 1) evenly. */
const PHI = (Math.sqrt(5) - 1) / 2;

/** spreadOffsets returns `count` first-poll offsets in [0, intervalMs), spread evenly. */
export function spreadOffsets(count: number, intervalMs: number): number[] {
  return Array.from({ length: count }, (_, i) => ((i * PHI) % 1) * intervalMs);
}

/**
 * PollSchedule walks the polls of all clients in time order: poll n is client order[n mod N]'s
 * poll number floor(n / N), at offset + floor(n / N) × interval. Only polls before `endMs` are
 * scheduled.
 */
export class PollSchedule {
  /** Polls handed out so far. */
  sent = 0;
  private readonly order: number[];

  constructor(
    private readonly offsets: readonly number[],
    private readonly intervalMs: number,
    private readonly endMs: number,
  ) {
    this.order = offsets.map((_, i) => i).sort((a, b) => (offsets[a] as number) - (offsets[b] as number));
  }

  /** timeOf is when poll n is due, ms after the start. */
  timeOf(n: number): number {
    const count = this.order.length;
    const round = Math.floor(n / count);
    return (this.offsets[this.order[n % count] as number] as number) + round * this.intervalMs;
  }

  /** total is how many polls are scheduled before endMs. */
  get total(): number {
    let n = 0;
    for (const o of this.offsets) if (o < this.endMs) n += Math.ceil((this.endMs - o) / this.intervalMs);
    return n;
  }

  /** done reports whether every scheduled poll has been handed out. */
  get done(): boolean {
    return this.order.length === 0 || this.timeOf(this.sent) >= this.endMs;
  }

  /** due hands every poll due at or before `elapsedMs` to `send(client)`; returns how many. */
  due(elapsedMs: number, send: (client: number) => void): number {
    let n = 0;
    while (!this.done && this.timeOf(this.sent) <= elapsedMs) {
      send(this.order[this.sent % this.order.length] as number);
      this.sent++;
      n++;
    }
    return n;
  }
}
