/**
 * The live progress line on stderr: on a terminal one line rewritten in place (at most every
 * 100 ms), elsewhere (CI, a pipe) a plain line every few seconds so logs stay readable.
 *
 * @module
 */

/** Progress shows what the simulator is doing now. */
export class Progress {
  private label = '';
  private startedAt = 0;
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    /** Minimum time between lines when the output is not a terminal. */
    private readonly plainEveryMs = 5000,
  ) {}

  private get tty(): boolean {
    return this.out.isTTY === true;
  }

  /** begin starts a new phase (ends the previous line). */
  begin(label: string): void {
    this.end();
    this.label = label;
    this.startedAt = performance.now();
    this.lastDraw = 0;
  }

  /**
   * update shows the phase's progress: `fraction` (0..1) draws a bar, `detail` a short status
   * such as "41,200 delivered, p99 12 ms".
   */
  update(fraction: number | undefined, detail = ''): void {
    const now = performance.now();
    if (now - this.lastDraw < (this.tty ? 100 : this.plainEveryMs)) return;
    this.lastDraw = now;
    const secs = ((now - this.startedAt) / 1000).toFixed(0).padStart(3);
    const bar = fraction === undefined ? '' : `${renderBar(fraction, 20)} `;
    const line = `${this.label} ${secs}s ${bar}${detail}`;
    if (this.tty) {
      const width = this.out.columns || 120;
      this.out.write(`\r${line.slice(0, width - 1).padEnd(width - 1)}`);
      this.drawn = true;
    } else {
      this.out.write(`${line}\n`);
    }
  }

  /** end finishes the current line (so the next log line starts clean). */
  end(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}

/** renderBar draws `fraction` (clamped to 0..1) as a bar of `width` cells. */
export function renderBar(fraction: number, width: number): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(Math.round(f * 100)).padStart(3)}%`;
}
