/**
 * A publisher of numbered bench publications through the server HTTP API, for scenarios that
 * must account for every publication exactly: per channel, sequence numbers 1, 2, 3, … at a
 * fixed rate (open loop, round-robin over the channels), with the outcome of each call kept —
 * the stream offset the server gave it, or its failure (such a publication may or may not have
 * been made, so nobody is owed it). The target node can be changed while publishing, as a game
 * backend's load balancer moves it off a node that is about to restart.
 *
 * Unlike {@link LiveFeed}, it waits for no subscribers and never skips a publication: when
 * `maxInFlight` calls are waiting it sends nothing until one returns (the schedule slips instead).
 *
 * @module
 */
import { benchData } from './lean-client.js';
import type { ServerApi } from '../harness/api.js';
import { dueBy } from './pacing.js';
import { nowMicros, waitFor } from '../harness/util.js';

/** PublisherEvents are optional hooks of a {@link NumberedPublisher}. */
export interface PublisherEvents {
  sent?: () => void;
  /** An API call returned: accepted (`ok`) or failed, after `ms`. */
  answered?: (ok: boolean, ms: number) => void;
}

/** NumberedPublisher sends numbered publications through a node's API at a fixed rate. */
export class NumberedPublisher {
  /** Sequence numbers sent per channel (channel ch got 1 … sent[ch]). */
  readonly sent: number[];
  /** Sequence numbers whose API call failed, per channel. */
  readonly failed: Array<Set<number>>;
  /** Stream offset of each sequence number, per channel, from the API's reply (index = seq; 0 unknown). */
  readonly offsets: number[][];
  /** Calls that failed, and the last failure. */
  failures = 0;
  lastError: string | undefined;
  /** Calls waiting for their answer. */
  inFlight = 0;
  /** Publications sent, all channels. */
  published = 0;
  private timer: NodeJS.Timeout | undefined;
  private nextCh = 0;

  /**
   * Creates a publisher over `channels` channels named by `channelName`, sending through `api`;
   * `events` hears of every publication sent and of every answer (with the call's duration),
   * e.g. to chart them.
   */
  constructor(
    private api: ServerApi,
    private readonly channels: number,
    private readonly channelName: (ch: number) => string,
    private readonly events: PublisherEvents = {},
    private readonly maxInFlight = 512,
  ) {
    this.sent = new Array<number>(channels).fill(0);
    this.failed = Array.from({ length: channels }, () => new Set<number>());
    this.offsets = Array.from({ length: channels }, () => [0]);
  }

  /** setTarget sends the next publications through `api` (calls in flight finish where they are). */
  setTarget(api: ServerApi): void {
    this.api = api;
  }

  /** start publishes `rate` per second (~5 ms ticks) until {@link NumberedPublisher.stop}. */
  start(rate: number): void {
    const t0 = performance.now();
    let scheduled = 0;
    const tick = () => {
      const due = dueBy(performance.now() - t0, rate, 0);
      // At most 100 ms worth per tick: a stalled generator catches up gradually, not in one burst.
      let n = Math.min(due - scheduled, Math.max(1, Math.ceil(rate / 10)));
      while (n-- > 0 && this.inFlight < this.maxInFlight) {
        scheduled++;
        this.sendOne();
      }
      this.timer = setTimeout(tick, 5);
    };
    tick();
  }

  private sendOne(): void {
    const ch = this.nextCh;
    this.nextCh = (ch + 1) % this.channels;
    const seq = (this.sent[ch] as number) + 1;
    this.sent[ch] = seq;
    this.published++;
    this.inFlight++;
    this.events.sent?.();
    const t0 = performance.now();
    this.api
      .call('publish', `{"channel":${JSON.stringify(this.channelName(ch))},"data":${benchData(ch, seq, nowMicros())}}`)
      .then((result) => {
        const offset = (result as { offset?: unknown } | undefined)?.offset;
        if (typeof offset === 'number') (this.offsets[ch] as number[])[seq] = offset;
        this.events.answered?.(true, performance.now() - t0);
      })
      .catch((err: unknown) => {
        this.failures++;
        this.lastError = (err as Error).message;
        (this.failed[ch] as Set<number>).add(seq);
        this.events.answered?.(false, performance.now() - t0);
      })
      .finally(() => {
        this.inFlight--;
      });
  }

  /** owed is how many publications of channel `ch` were accepted or are still unanswered. */
  owed(ch: number): number {
    return (this.sent[ch] as number) - (this.failed[ch] as Set<number>).size;
  }

  /** stop stops publishing and waits (at most `timeoutMs`) for the calls in flight. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await waitFor(() => this.inFlight === 0, timeoutMs, 5);
  }
}
