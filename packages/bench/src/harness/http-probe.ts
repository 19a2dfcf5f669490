/**
 * An HTTP probe that polls a URL (a node's `/ready` or `/health`) at a fixed interval during a
 * run, as a load balancer or orchestrator would, and records each answer's status and latency:
 * whether the node kept answering while under load, and how slowly.
 *
 * @module
 */
import http from 'node:http';
import { LatencyRecorder, roundSummary, type LatencySummary } from './stats.js';
import { sleep } from './util.js';

/** ProbeSample is one probe: when it was sent, its latency and status (0: no answer in time). */
export interface ProbeSample {
  /** performance.now() when sent. */
  atMs: number;
  latencyMs: number;
  status: number;
}

/** ProbeSummary sums up a probe's run. */
export interface ProbeSummary {
  probes: number;
  /** Answered 200 within the timeout. */
  ok: number;
  /** Other status, error or no answer within the timeout. */
  failed: number;
  /** Latency of every answered probe. */
  latencyMs: LatencySummary;
}

/** HttpProbe polls one URL until stopped; a probe still waiting when the next is due is not doubled. */
export class HttpProbe {
  readonly samples: ProbeSample[] = [];
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly url: string,
    private readonly intervalMs = 500,
    private readonly timeoutMs = 2000,
  ) {}

  /** start begins polling. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const t0 = performance.now();
        const status = await this.once();
        this.samples.push({ atMs: t0, latencyMs: performance.now() - t0, status });
        await sleep(Math.max(0, this.intervalMs - (performance.now() - t0)));
      }
    })();
  }

  /** stop ends polling once the probe in flight (if any) finished. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** summary sums up the samples so far. */
  summary(): ProbeSummary {
    return summarizeProbes(this.samples);
  }

  private once(): Promise<number> {
    return new Promise((resolve) => {
      const req = http.get(this.url, { agent: false, timeout: this.timeoutMs }, (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
        res.once('error', () => resolve(0));
      });
      req.once('timeout', () => req.destroy(new Error('timeout')));
      req.once('error', () => resolve(0));
    });
  }
}

/** summarizeProbes counts ok (200) and failed probes and summarises the latency of the answered ones. */
export function summarizeProbes(samples: readonly ProbeSample[]): ProbeSummary {
  const rec = new LatencyRecorder(100_000);
  let ok = 0;
  for (const s of samples) {
    if (s.status === 200) ok++;
    if (s.status !== 0) rec.add(s.latencyMs);
  }
  return { probes: samples.length, ok, failed: samples.length - ok, latencyMs: roundSummary(rec.summary(), 2) };
}
