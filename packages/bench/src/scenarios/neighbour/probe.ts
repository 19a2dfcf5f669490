/**
 * The neighbour scenario's prober: what a demo page, or a few players arriving, asks of a node.
 * Each probe is a new player: it opens a WebSocket (a refused upgrade is an HTTP response, read
 * with load/admission-attempt.ts), connects with its own JWT, subscribes to the demo channel and
 * reads its history, then leaves. Probes start open loop at a fixed rate, whatever the replies
 * do, so a slow node sees the same demand as a fast one.
 *
 * @module
 */
import { classifyFailure, openAttempt } from '../../load/admission-attempt.js';
import type { LeanClient } from '../../load/lean-client.js';
import { connectionToken } from '../../harness/jwt.js';
import { LatencyRecorder } from '../../harness/stats.js';
import { type RunningServer } from '../../harness/targets.js';
import { Timeline } from '../../harness/timeline.js';
import { sleep } from '../../harness/util.js';

/** The error code of a refused read (Centrifugo's 111, "too many requests", temporary). */
export const REFUSED_READ_CODE = 111;

/** isRefusedRead tells a shed read from other failures by the error a LeanClient command rejects with. */
export function isRefusedRead(message: string): boolean {
  return new RegExp(`^error ${REFUSED_READ_CODE}\\b`).test(message);
}

/** ProberOptions configure a {@link Prober}. */
export interface ProberOptions {
  channel: string;
  historyLimit: number;
  replyTimeoutMs: number;
  /** Prefix of each probe's user (`<prefix>-<n>`): one JWT and one user per probe. */
  userPrefix: string;
}

/** Prober runs probes against one server and tallies their outcomes. */
export class Prober {
  attempts = 0;
  completed = 0;
  refusedUpgrades = 0;
  refusedReads = 0;
  failed = 0;
  readonly refusedByStatus: string[] = [];
  readonly failedByKind: string[] = [];
  firstFailure: string | undefined;
  readonly handshake = new LatencyRecorder();
  readonly history = new LatencyRecorder();
  readonly tl: Timeline;
  private readonly clients = new Set<LeanClient>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly server: RunningServer,
    private readonly o: ProberOptions,
    t0 = performance.now(),
  ) {
    this.tl = new Timeline(1000, t0);
  }

  /** unfinished is how many probes have no outcome yet. */
  get unfinished(): number {
    return this.attempts - this.completed - this.refusedUpgrades - this.refusedReads - this.failed;
  }

  /**
   * run starts `rate` probes per second for `seconds`, open loop, then waits up to `settleMs`
   * for the ones in flight; `onProbe` is called after each start (for progress).
   */
  async run(rate: number, seconds: number, settleMs: number, onProbe?: (started: number, total: number) => void) {
    const total = Math.max(1, Math.round(rate * seconds));
    const start = performance.now();
    for (let i = 0; i < total; i++) {
      const wait = start + (i * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
      const p: Promise<void> = this.probe(i).finally(() => this.inFlight.delete(p));
      this.inFlight.add(p);
      onProbe?.(i + 1, total);
    }
    await Promise.race([Promise.all(this.inFlight), sleep(settleMs)]);
  }

  /** terminate drops every connection still open (probes left in flight stay unfinished). */
  terminate(): void {
    for (const c of this.clients) c.terminate();
    this.clients.clear();
  }

  private fail(stage: string, message: string): void {
    this.failed++;
    this.failedByKind.push(`${stage}:${classifyFailure(message)}`);
    this.firstFailure ??= `${stage}: ${message}`;
    this.tl.count('failed');
  }

  /** probe is one new player: upgrade, connect, subscribe, history read, leave. */
  private async probe(n: number): Promise<void> {
    const t0 = performance.now();
    this.attempts++;
    this.tl.count('attempt', 1, t0);
    const o = await openAttempt({ url: this.server.wsUrl, protocol: 'centrifugo' });
    if (o.kind === 'refused') {
      this.refusedUpgrades++;
      this.refusedByStatus.push(String(o.status));
      this.tl.count('refused-upgrade');
      return;
    }
    if (o.kind === 'failed') {
      this.fail('upgrade', o.error);
      return;
    }
    const c = o.client;
    this.clients.add(c);
    const timeout = this.o.replyTimeoutMs;
    let stage = 'connect';
    try {
      await c.connect(connectionToken(`${this.o.userPrefix}-${n}`, this.server.tokenSecret), timeout);
      stage = 'subscribe';
      await c.subscribe(this.o.channel, undefined, timeout);
      const t1 = performance.now();
      this.handshake.add(t1 - t0);
      this.tl.sample('handshake', t1 - t0, t1);
      stage = 'history';
      await c.history(this.o.channel, this.o.historyLimit, timeout);
      const t2 = performance.now();
      this.history.add(t2 - t1);
      this.tl.sample('history', t2 - t1, t2);
      this.completed++;
    } catch (err) {
      const message = (err as Error).message;
      if (stage === 'history' && isRefusedRead(message)) {
        this.refusedReads++;
        this.tl.count('refused-read');
      } else {
        this.fail(stage, message);
      }
    } finally {
      c.close();
      this.clients.delete(c);
    }
  }
}
