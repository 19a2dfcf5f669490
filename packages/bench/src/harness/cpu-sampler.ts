/**
 * Sampling a process's CPU use at a fixed interval, for "server CPU over time" charts. One
 * reading per interval; the chart shows the CPU used between consecutive readings as % of one
 * core. /proc counts CPU in clock ticks (10 ms at USER_HZ=100), so a 500 ms interval reads to
 * within ±2 % of a core: fine for a chart, not for a verdict (use `watchCpu` over the window).
 *
 * @module
 */
import { readTreeCpuMicros } from './proc.js';

/** CpuReadingAt is the cumulative CPU time (µs) a process had used at a moment (ms). */
export interface CpuReadingAt {
  atMs: number;
  cpuMicros: number;
}

/**
 * cpuPercentPoints turns cumulative readings into chart points: for each pair of consecutive
 * readings, x = the earlier reading's time in seconds since `t0Ms`, y = the CPU used between
 * them as % of one core. Pairs without elapsed time are skipped.
 */
export function cpuPercentPoints(readings: readonly CpuReadingAt[], t0Ms: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 1; i < readings.length; i++) {
    const a = readings[i - 1] as CpuReadingAt;
    const b = readings[i] as CpuReadingAt;
    const wallMicros = (b.atMs - a.atMs) * 1000;
    if (!(wallMicros > 0)) continue;
    const x = Math.round(a.atMs - t0Ms) / 1000;
    out.push([x, Math.round(((b.cpuMicros - a.cpuMicros) / wallMicros) * 1000) / 10]);
  }
  return out;
}

/** CpuSampler reads process `pid`'s CPU (with its children) every `intervalMs` until stopped. */
export class CpuSampler {
  readonly readings: CpuReadingAt[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    intervalMs: number,
  ) {
    this.read();
    this.timer = setInterval(() => this.read(), intervalMs);
  }

  /** stop takes a last reading and stops sampling; returns the readings. */
  stop(): CpuReadingAt[] {
    clearInterval(this.timer);
    this.read();
    return this.readings;
  }

  private read(): void {
    try {
      this.readings.push({ atMs: performance.now(), cpuMicros: readTreeCpuMicros(this.pid) });
    } catch {
      // The process exited: the run reports that itself.
    }
  }
}
