/**
 * The jetstream scenario's backend: a game service that publishes its events to a JetStream
 * stream in the documented message format (docs/JETSTREAM.md: a Centrifugo `publish` command
 * as JSON), at a target rate, round-robin over N channels. Each message's data carries the
 * bench markers (channel index, sequence number in that channel, and the time of the JetStream
 * publish in nowMicros, the clock the subscribers read), so latency is measured from the
 * publish to the client. It also sets up the stream and reads the consumer's lag, and deletes
 * the stream (with Bulwark's durable consumer) at the end.
 *
 * @module
 */
import {
  jetstream,
  jetstreamManager,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { readdirSync } from 'node:fs';
import { readComm } from '../../harness/proc.js';
import { benchData } from '../../load/lean-client.js';
import { nowMicros } from '../../harness/util.js';

/** envelope is one message body: a `publish` command for `board:j<ch>` carrying the bench markers. */
export function envelope(ch: number, seq: number, sentAtMicros: number): string {
  return `{"method":"publish","payload":{"channel":"${channelName(ch)}","data":${benchData(ch, seq, sentAtMicros)}}}`;
}

/** channelName is the channel of channel index `ch`. */
export function channelName(ch: number): string {
  return `board:j${ch}`;
}

/** JetStreamBackend publishes to one stream of its own; see the module comment. */
export class JetStreamBackend {
  readonly #seq: number[];
  #next = 0;
  #inFlight = 0;
  /** Messages JetStream acknowledged. */
  acked = 0;
  /** Publishes that failed (refused, or no acknowledgement in time). */
  errors = 0;
  /** The first publish error, for the log. */
  firstError: string | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    readonly stream: string,
    readonly subject: string,
    private readonly channels: number,
    private readonly maxInFlight: number,
  ) {
    this.#seq = new Array<number>(channels).fill(0);
  }

  /** open connects to NATS and creates the stream (subjects `<subject>.>`). */
  static async open(
    url: string,
    stream: string,
    subject: string,
    o: { channels: number; inFlight: number; storage: 'file' | 'memory' },
  ): Promise<JetStreamBackend> {
    const nc = await connect({ servers: url, timeout: 2000 });
    try {
      const jsm = await jetstreamManager(nc, { timeout: 5000 });
      await jsm.streams.add({
        name: stream,
        subjects: [`${subject}.>`],
        storage: o.storage === 'file' ? StorageType.File : StorageType.Memory,
      });
      return new JetStreamBackend(nc, jsm, jetstream(nc, { timeout: 5000 }), stream, subject, o.channels, o.inFlight);
    } catch (err) {
      await nc.close().catch(() => undefined);
      throw err;
    }
  }

  /** sent is how many messages channel `ch` has been given (its last sequence number). */
  sent(ch: number): number {
    return this.#seq[ch] ?? 0;
  }

  /** total is how many messages were sent so far. */
  get total(): number {
    return this.#next;
  }

  /** inFlight is how many publishes await their acknowledgement. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * publish sends up to `n` messages without waiting for their acknowledgements; it sends
   * fewer when `js-in-flight` are already awaited (the backend then falls behind its rate,
   * which the verdict reports as the publish side saturating). Returns how many it sent.
   */
  publish(n: number): number {
    let sent = 0;
    while (sent < n && this.#inFlight < this.maxInFlight) {
      const ch = this.#next++ % this.channels;
      const seq = ++this.#seq[ch]!;
      this.#inFlight++;
      sent++;
      this.js.publish(`${this.subject}.${ch}`, envelope(ch, seq, nowMicros())).then(
        () => {
          this.#inFlight--;
          this.acked++;
        },
        (err: unknown) => {
          this.#inFlight--;
          this.errors++;
          this.firstError ??= (err as Error).message;
        },
      );
    }
    return sent;
  }

  /** settle waits until every publish was acknowledged or failed (at most `ms`). */
  async settle(ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    while (this.#inFlight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }

  /** lag is the durable consumer's messages not yet acknowledged (pending + ack pending); undefined before it exists. */
  async lag(durable: string): Promise<number | undefined> {
    try {
      const info = await this.jsm.consumers.info(this.stream, durable);
      return info.num_pending + info.num_ack_pending;
    } catch {
      return undefined;
    }
  }

  /** close deletes the stream (and so Bulwark's durable consumer) and disconnects; never throws. */
  async close(log: (msg: string) => void): Promise<void> {
    await this.jsm.streams.delete(this.stream).catch((err: unknown) => {
      log(`jetstream: stream ${this.stream} not deleted: ${(err as Error).message}`);
    });
    await this.nc.close().catch(() => undefined);
  }
}

/**
 * localNatsPid finds the `nats-server` process behind a loopback URL, so its CPU can be read
 * too: the only one on this machine, else undefined (none, several, or a remote URL).
 */
export function localNatsPid(url: string): number | undefined {
  if (!/^nats:\/\/(127\.0\.0\.1|localhost)(:|$)/.test(url)) return undefined;
  let found: number[] = [];
  try {
    found = readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e) && readComm(Number(e)) === 'nats-server')
      .map(Number);
  } catch {
    return undefined;
  }
  return found.length === 1 ? found[0] : undefined;
}
