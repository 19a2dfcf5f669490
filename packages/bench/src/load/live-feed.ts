/**
 * A live feed: numbered bench publications sent through the server HTTP API at a fixed rate,
 * round-robin over channels, to subscribers whose every delivery is tracked — exact loss per
 * subscriber ({@link SeqTracker}) and end-to-end latency (publisher and subscribers share this
 * process's clock). It is the "publications keep flowing" yardstick of the protection scenarios.
 *
 * @module
 */
import { benchData, LeanClient } from './lean-client.js';
import type { ServerApi } from '../harness/api.js';
import { connectionToken } from '../harness/jwt.js';
import { runPaced, sendsBefore } from './pacing.js';
import {
  LatencyRecorder,
  roundSummary,
  SeqTracker,
  summarizeLoss,
  type LatencySummary,
  type LossSummary,
} from '../harness/stats.js';
import type { RunningServer } from '../harness/targets.js';
import { mapLimit, nowMicros, waitFor } from '../harness/util.js';

/** FeedResult is what the subscribers of a feed saw in one phase. */
export interface FeedResult {
  /** Publications sent (accepted or not) in the phase. */
  published: number;
  /** Publications the API refused or lost (each shows up as loss at its subscribers). */
  apiErrors: number;
  /** Publications not sent because too many API calls were waiting. */
  apiSkipped: number;
  /** The last API error, if any. */
  apiLastError?: string;
  /** API calls still unanswered when the phase ended (their publications may not have gone out yet). */
  apiPending: number;
  deliveries: number;
  latencyMs: LatencySummary;
  /** Deliveries missing when the phase ended: lost, or still queued in an overloaded server. */
  loss: LossSummary;
  /** Subscribers closed by the end of the phase. */
  disconnected: number;
}

interface Subscriber {
  ch: number;
  client: LeanClient;
  tracker: SeqTracker;
}

/** LiveFeed publishes numbered publications through the API and tracks their subscribers. */
export class LiveFeed {
  private readonly subs: Subscriber[] = [];
  private readonly seqNext: number[];
  private first: number[];
  private recorder = new LatencyRecorder();
  private delivered = 0;
  private errors0 = 0;
  private skipped0 = 0;
  private readonly pad: string;

  /**
   * Creates a feed over `channels` channels named by `channelName`, publishing through `api`
   * with `padBytes` of padding in each publication.
   */
  constructor(
    private readonly server: RunningServer,
    private readonly api: ServerApi,
    private readonly channelName: (ch: number) => string,
    private readonly channels: number,
    padBytes: number,
  ) {
    this.seqNext = new Array<number>(channels).fill(1);
    this.first = this.seqNext.slice();
    this.pad = 'x'.repeat(padBytes);
  }

  /** subscribe connects `count` subscribers, subscriber i to channel `channelOf(i)`. */
  async subscribe(count: number, channelOf: (i: number) => number, concurrency: number): Promise<void> {
    const failures: string[] = [];
    await mapLimit(
      count,
      concurrency,
      async (i) => {
        const ch = channelOf(i);
        const client = new LeanClient({
          url: this.server.wsUrl,
          protocol: 'centrifugo',
          onPush: (pushCh, seq, sentAt) => {
            if (pushCh !== ch) return;
            sub.tracker.record(seq);
            this.delivered++;
            this.recorder.add((nowMicros() - sentAt) / 1000);
          },
        });
        const sub: Subscriber = { ch, client, tracker: new SeqTracker() };
        this.subs.push(sub);
        const user = `feed-${this.subs.length}`;
        await client.open();
        await client.connect(connectionToken(user, this.server.tokenSecret));
        await client.subscribe(this.channelName(ch));
      },
      (_i, err) => failures.push((err as Error).message),
    );
    if (failures.length) throw new Error(`${failures.length}/${count} subscribers failed; first: ${failures[0]}`);
  }

  /** startPhase starts counting afresh: only publications sent from now on count. */
  startPhase(): void {
    this.first = this.seqNext.slice();
    for (const s of this.subs) s.tracker = new SeqTracker(this.first[s.ch] as number);
    this.recorder = new LatencyRecorder();
    this.delivered = 0;
    this.errors0 = this.api.errors;
    this.skipped0 = this.api.skipped;
  }

  /** publish sends `rate` publications per second for `windowMs`, round-robin over the channels. */
  async publish(rate: number, windowMs: number): Promise<void> {
    const stream = { rate, offsetMs: 0, total: sendsBefore(windowMs, rate, 0), sent: 0 };
    let ch = 0;
    await runPaced([stream], windowMs, (_s, count) => {
      for (let k = 0; k < count; k++) {
        const seq = this.seqNext[ch] as number;
        if (this.api.tryPublish(this.channelName(ch), benchData(ch, seq, nowMicros(), this.pad))) {
          this.seqNext[ch] = seq + 1;
        }
        ch = ch + 1 === this.channels ? 0 : ch + 1;
      }
    });
  }

  /** drain waits up to `timeoutMs` for every delivery of the phase; resolves to whether all came. */
  drain(timeoutMs: number): Promise<boolean> {
    const expected = this.subs.reduce((n, s) => n + this.publishedTo(s.ch), 0);
    return waitFor(() => this.delivered >= expected, timeoutMs, 5);
  }

  /** result summarises the phase so far. */
  result(): FeedResult {
    return {
      published: this.seqNext.reduce((n, next, ch) => n + next - (this.first[ch] as number), 0),
      apiErrors: this.api.errors - this.errors0,
      apiSkipped: this.api.skipped - this.skipped0,
      apiLastError: this.api.lastError,
      apiPending: this.api.inFlight,
      deliveries: this.delivered,
      latencyMs: roundSummary(this.recorder.summary(), 2),
      loss: summarizeLoss(
        this.subs.map((s) => s.tracker),
        (i) => this.publishedTo((this.subs[i] as Subscriber).ch),
      ),
      disconnected: this.subs.filter((s) => s.client.closeCode !== undefined).length,
    };
  }

  /** terminate drops every subscriber's socket. */
  terminate(): void {
    for (const s of this.subs) s.client.terminate();
  }

  private publishedTo(ch: number): number {
    return (this.seqNext[ch] as number) - (this.first[ch] as number);
  }
}
