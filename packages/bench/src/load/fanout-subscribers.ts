/**
 * SubscriberSet: one load-generator process's share of the fan-out subscribers — it opens them
 * (JWT, connect, subscribe to channel i % channels), and per phase counts what they receive:
 * exact loss per subscriber ({@link SeqTracker}), latency in a mergeable {@link LatencyHistogram},
 * the worst latency per second of send time, deliveries per second of arrival. A phase ends with
 * a {@link PhaseTally} that the parent adds up over all processes ({@link mergeTallies}).
 *
 * It runs in a fan-out worker process (fanout-worker.ts) or, with `--sub-procs 0`, in the
 * scenario's own process; the publisher always stays in the scenario's process. Publications
 * carry their send time in µs of the publisher's `performance.now()`; `clockOffsetMicros` (this
 * process's clock minus the publisher's, measured over IPC) converts arrival times to that clock.
 *
 * @module
 */
import { connectionToken } from '../harness/jwt.js';
import { LatencyHistogram, type HistogramSnapshot } from '../harness/latency-histogram.js';
import { SeqTracker, summarizeLoss, type LossSummary } from '../harness/stats.js';
import { mapLimit, nowMicros, waitFor } from '../harness/util.js';
import {
  makeReaderClient,
  type BulwarkClientName,
  type ReaderName,
  type ServerAddress,
  type SessionClient,
} from './session-clients.js';

/** SubscriberSetOptions say which subscribers a process holds and how they connect. */
export interface SubscriberSetOptions {
  server: ServerAddress;
  tokenSecret: string;
  kind: BulwarkClientName;
  reader: ReaderName;
  channels: number;
  /** Global subscriber indices [from, to) held here; subscriber i listens on channel i % channels. */
  from: number;
  to: number;
  /** Connects in flight at once, in this process. */
  concurrency: number;
  /** A tags filter every subscribe carries (fanout --tags-filter). */
  tagsFilter?: object;
  /** Even subscribers declare version 1.0, odd ones 9.0 (fanout --pub-variants). */
  variants: boolean;
}

/** PhaseTally is what one process's subscribers received in one phase. */
export interface PhaseTally {
  delivered: number;
  expected: number;
  /** Whether every expected delivery arrived before the drain timeout. */
  drained: boolean;
  latency: HistogramSnapshot;
  /** Worst latency (ms) of the publications sent in each second of the phase. */
  maxBySecond: number[];
  /** Deliveries that arrived in each second of the phase. */
  deliveredBySecond: number[];
  loss: LossSummary;
  /** Pushes whose channel marker did not match the subscriber's channel. */
  wrong: number;
  /** Subscribers disconnected during the phase. */
  disconnects: number;
  /** Last delivery, µs of the publisher's clock (0: none). */
  lastDeliveryAt: number;
}

interface Subscriber {
  index: number;
  ch: number;
  client: SessionClient | undefined;
  tracker: SeqTracker;
  wrong: number;
  dead: boolean;
}

/** SubscriberSet holds and measures one process's fan-out subscribers. */
export class SubscriberSet {
  /** This process's clock minus the publisher's, µs. */
  clockOffsetMicros = 0;
  /** Deliveries of the current phase so far. */
  delivered = 0;

  private readonly subs: Subscriber[] = [];
  private hist = new LatencyHistogram();
  private startMicros = 0;
  private maxBySecond: number[] = [];
  private deliveredBySecond: number[] = [];
  private lastDeliveryAt = 0;
  private alive0 = 0;
  private publishedPer: number[] = [];

  constructor(private readonly o: SubscriberSetOptions) {
    for (let i = o.from; i < o.to; i++) {
      this.subs.push({
        index: i,
        ch: i % o.channels,
        client: undefined,
        tracker: new SeqTracker(),
        wrong: 0,
        dead: true,
      });
    }
  }

  get size(): number {
    return this.subs.length;
  }

  /** open connects every subscriber; resolves with the errors of those that failed. */
  async open(): Promise<string[]> {
    const failures: string[] = [];
    await mapLimit(
      this.subs.length,
      this.o.concurrency,
      (k) => this.openOne(this.subs[k] as Subscriber),
      (_k, err) => failures.push((err as Error).message),
    );
    return failures;
  }

  /** revive reconnects the subscribers the server dropped; resolves with how many and the errors. */
  async revive(): Promise<{ count: number; errors: string[] }> {
    const dead = this.subs.filter((s) => s.dead);
    const errors: string[] = [];
    await mapLimit(
      dead.length,
      this.o.concurrency,
      (k) => this.openOne(dead[k] as Subscriber),
      (_k, e) => errors.push((e as Error).message),
    );
    return { count: dead.length, errors };
  }

  /**
   * startPhase resets the counters: each channel's publications of this phase are numbered from
   * `first[ch]`, and seconds are counted from `startMicros` (publisher's clock).
   */
  startPhase(first: readonly number[], startMicros: number): void {
    for (const s of this.subs) {
      s.tracker = new SeqTracker(first[s.ch] as number);
      s.wrong = 0;
    }
    this.hist = new LatencyHistogram();
    this.startMicros = startMicros;
    this.maxBySecond = [];
    this.deliveredBySecond = [];
    this.delivered = 0;
    this.lastDeliveryAt = 0;
    this.alive0 = this.subs.filter((s) => !s.dead).length;
  }

  /** expectedFor is how many deliveries these subscribers should get when channel c had `publishedPer[c]`. */
  expectedFor(publishedPer: readonly number[]): number {
    let n = 0;
    for (const s of this.subs) n += publishedPer[s.ch] as number;
    return n;
  }

  /**
   * finishPhase waits (at most `drainTimeoutMs`) until every delivery of the `publishedPer`
   * publications arrived, then tallies the phase.
   */
  async finishPhase(publishedPer: readonly number[], drainTimeoutMs: number): Promise<PhaseTally> {
    const expected = this.expectedFor(publishedPer);
    const drained = await waitFor(() => this.delivered >= expected, drainTimeoutMs, 5);
    this.publishedPer = publishedPer.slice();
    const loss = summarizeLoss(
      this.subs.map((s) => s.tracker),
      (k) => this.publishedPer[(this.subs[k] as Subscriber).ch] as number,
    );
    return {
      delivered: this.delivered,
      expected,
      drained,
      latency: this.hist.snapshot(),
      maxBySecond: Array.from(this.maxBySecond, (v) => v ?? 0),
      deliveredBySecond: Array.from(this.deliveredBySecond, (v) => v ?? 0),
      loss,
      wrong: this.subs.reduce((a, s) => a + s.wrong, 0),
      disconnects: this.alive0 - this.subs.filter((s) => !s.dead).length,
      lastDeliveryAt: this.lastDeliveryAt,
    };
  }

  /** terminate destroys every socket at once. */
  terminate(): void {
    for (const s of this.subs) s.client?.terminate();
  }

  private async openOne(sub: Subscriber): Promise<void> {
    const { server, tokenSecret } = this.o;
    const client = makeReaderClient(server, this.o.kind, this.o.reader, {
      ...(this.o.tagsFilter ? { tagsFilter: this.o.tagsFilter } : {}),
      ...(this.o.variants ? { clientVersion: sub.index % 2 === 0 ? '1.0' : '9.0' } : {}),
      onPush: (ch, seq, sentAt) => this.onPush(sub, ch, seq, sentAt),
      onClose: () => {
        if (sub.client === client) sub.dead = true;
      },
    });
    sub.client = client;
    sub.dead = false;
    try {
      await client.open();
      const token = connectionToken(`user-${sub.index}`, tokenSecret);
      if (server.protocol === 'centrifugo') {
        await client.connect(token);
        await client.subscribe(`bench:ch${sub.ch}`);
      } else {
        await client.subscribe(`bench:ch${sub.ch}`, token);
      }
    } catch (err) {
      client.terminate();
      sub.dead = true;
      throw err;
    }
  }

  /** The delivery hot path: one push with the bench markers. */
  private onPush(sub: Subscriber, ch: number, seq: number, sentAt: number): void {
    if (ch !== sub.ch) {
      sub.wrong++;
      return;
    }
    sub.tracker.record(seq);
    const now = nowMicros() - this.clockOffsetMicros;
    this.delivered++;
    this.lastDeliveryAt = now;
    const latencyMicros = now - sentAt;
    this.hist.add(latencyMicros);
    const sec = Math.floor((sentAt - this.startMicros) / 1e6);
    const latency = latencyMicros / 1000;
    if (sec >= 0 && !(latency <= (this.maxBySecond[sec] ?? -1))) this.maxBySecond[sec] = latency;
    const at = Math.floor((now - this.startMicros) / 1e6);
    if (at >= 0) this.deliveredBySecond[at] = (this.deliveredBySecond[at] ?? 0) + 1;
  }
}

/** mergeTallies adds up the tallies of several processes (of the same phase). */
export function mergeTallies(tallies: readonly PhaseTally[]): PhaseTally & { histogram: LatencyHistogram } {
  const histogram = new LatencyHistogram();
  const sumArrays = (a: number[], b: readonly number[], f: (x: number, y: number) => number) => {
    for (let i = 0; i < b.length; i++) a[i] = f(a[i] ?? 0, b[i] ?? 0);
  };
  const out: PhaseTally & { histogram: LatencyHistogram } = {
    delivered: 0,
    expected: 0,
    drained: true,
    latency: histogram.snapshot(),
    maxBySecond: [],
    deliveredBySecond: [],
    loss: {
      expected: 0,
      missing: 0,
      subscribersWithLoss: 0,
      maxMissingPerSubscriber: 0,
      duplicates: 0,
      outOfOrder: 0,
      stale: 0,
    },
    wrong: 0,
    disconnects: 0,
    lastDeliveryAt: 0,
    histogram,
  };
  for (const t of tallies) {
    out.delivered += t.delivered;
    out.expected += t.expected;
    out.drained &&= t.drained;
    histogram.merge(t.latency);
    sumArrays(out.maxBySecond, t.maxBySecond, Math.max);
    sumArrays(out.deliveredBySecond, t.deliveredBySecond, (x, y) => x + y);
    const l = out.loss;
    l.expected += t.loss.expected;
    l.missing += t.loss.missing;
    l.subscribersWithLoss += t.loss.subscribersWithLoss;
    l.maxMissingPerSubscriber = Math.max(l.maxMissingPerSubscriber, t.loss.maxMissingPerSubscriber);
    l.duplicates += t.loss.duplicates;
    l.outOfOrder += t.loss.outOfOrder;
    l.stale += t.loss.stale;
    out.wrong += t.wrong;
    out.disconnects += t.disconnects;
    out.lastDeliveryAt = Math.max(out.lastDeliveryAt, t.lastDeliveryAt);
  }
  out.latency = histogram.snapshot();
  return out;
}
