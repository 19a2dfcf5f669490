/**
 * ServerWatch samples a Bulwark under load for the charts: resident memory from /proc and CPU
 * (with a {@link CpuSampler}, as the board-event charts do) every `sampleMs`, and from GET
 * /metrics every `scrapeMs` the connections it holds (what admission counts against
 * client.connection_limit, see {@link heldOnServer}), the authenticated ones, and its
 * event-loop lag p99 since the previous scrape. Readings stop quietly when the process is gone
 * (a crash is the caller's finding, not an exception here).
 *
 * @module
 */
import { fetchMetrics, metricSeries } from './api.js';
import { CpuSampler, cpuPercentPoints } from './cpu-sampler.js';
import { readCpuMicros, readRssBytes } from './proc.js';
import type { RunningServer } from './targets.js';
import { round, sleep } from './util.js';

type Points = Array<[number, number]>;

/**
 * heldOnServer is what admission counts against client.connection_limit in a /metrics text:
 * `bulwark_admission_connections`, or opened − closed WebSocket connections from a server
 * without that gauge (close to it, but moved at session creation rather than at accept).
 */
export function heldOnServer(metricsText: string): number {
  const admission = metricSeries(metricsText, 'bulwark_admission_connections').get('');
  if (admission !== undefined) return admission;
  const one = (name: string) => metricSeries(metricsText, name).get('') ?? 0;
  return one('bulwark_connections_opened_total') - one('bulwark_connections_closed_total');
}

/** rssOrNaN is the RSS of `pid`, NaN once the process is gone. */
export function rssOrNaN(pid: number): number {
  try {
    return readRssBytes(pid);
  } catch {
    return Number.NaN;
  }
}

/** cpuOrNaN is the CPU time of `pid` in µs, NaN once the process is gone. */
export function cpuOrNaN(pid: number): number {
  try {
    return readCpuMicros(pid);
  } catch {
    return Number.NaN;
  }
}

/** ServerWatch samples one server until stopped; x of every point is seconds since `t0`. */
export class ServerWatch {
  readonly rssMiB: Points = [];
  /** % of one core over each sample interval (10 ms ticks), x at the interval's start; filled by stop(). */
  readonly cpuPercent: Points = [];
  readonly held: Points = [];
  readonly authenticated: Points = [];
  readonly lagMs: Points = [];
  peakRssBytes = 0;
  peakCpuPercent = 0;
  peakHeld = 0;
  maxLagMs = 0;
  private running = false;
  private loops: Array<Promise<void>> = [];
  private cpu: CpuSampler | undefined;

  constructor(
    private readonly server: RunningServer,
    private readonly t0: number,
    private readonly sampleMs = 500,
    private readonly scrapeMs = 1000,
  ) {}

  /** start begins sampling. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.cpu = new CpuSampler(this.server.pid, this.sampleMs);
    this.loops = [this.sampleLoop(), this.scrapeLoop()];
  }

  /** stop ends sampling (after the scrape in flight, if any). */
  async stop(): Promise<void> {
    this.running = false;
    if (this.cpu) {
      for (const p of cpuPercentPoints(this.cpu.stop(), this.t0)) {
        this.cpuPercent.push(p);
        this.peakCpuPercent = Math.max(this.peakCpuPercent, p[1]);
      }
      this.cpu = undefined;
    }
    await Promise.all(this.loops);
  }

  /** noteHeld counts a reading of the server's held connections taken elsewhere into the peak. */
  noteHeld(n: number): void {
    this.peakHeld = Math.max(this.peakHeld, n);
  }

  private x(now: number): number {
    return round((now - this.t0) / 1000, 3);
  }

  private async sampleLoop(): Promise<void> {
    const pid = this.server.pid;
    while (this.running) {
      await sleep(this.sampleMs);
      const now = performance.now();
      const rss = rssOrNaN(pid);
      if (Number.isFinite(rss)) {
        this.rssMiB.push([this.x(now), round(rss / 2 ** 20, 1)]);
        this.peakRssBytes = Math.max(this.peakRssBytes, rss);
      }
    }
  }

  private async scrapeLoop(): Promise<void> {
    while (this.running) {
      const s0 = performance.now();
      const text = await fetchMetrics(this.server, 2000).catch(() => undefined);
      if (text) {
        const x = this.x(performance.now());
        const held = heldOnServer(text);
        this.noteHeld(held);
        this.held.push([x, held]);
        this.authenticated.push([x, metricSeries(text, 'bulwark_connections').get('') ?? 0]);
        const lag = (metricSeries(text, 'bulwark_event_loop_lag_p99_seconds').get('') ?? Number.NaN) * 1000;
        if (Number.isFinite(lag)) {
          this.lagMs.push([x, round(lag, 2)]);
          this.maxLagMs = Math.max(this.maxLagMs, lag);
        }
      }
      await sleep(Math.max(0, this.scrapeMs - (performance.now() - s0)));
    }
  }
}
