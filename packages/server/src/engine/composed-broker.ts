/**
 * A broker composed of two: the engine's broker keeps history and numbers publications (Redis
 * or PostgreSQL: publish + history append stay one atomic step per channel there), and a
 * {@link Fanout} (NATS, or Redis pub/sub) carries publications, joins, leaves and control
 * messages between the nodes, as Centrifugo v6 lets a broker be chosen apart from the engine.
 * docs/NATS.md explains the design, docs/ENGINES.md the combinations; the shared conformance
 * suite checks it like every other broker.
 *
 * @module
 */
import type { ClientInfo, Publication, RawJSON } from '../protocol/types.js';
import type {
  Broker,
  BrokerEventHandler,
  HistoryQuery,
  HistoryResult,
  PublishOptions,
  PublishResult,
} from './broker.js';
import { ChannelOrder, type OrderStats } from './channel-order.js';
import { EngineOutcomeUnknownError } from './errors.js';
import type { Fanout, FanoutEvent } from './fanout.js';

/** ComposedBrokerOptions configure a {@link ComposedBroker}. */
export interface ComposedBrokerOptions {
  /** Longest wait for a missing offset before reading it from history (ms); see channel-order.ts. */
  reorderWaitMs: number;
  /** Most publications one catch-up read from history fetches. */
  catchUpBatch: number;
  /** Receives what no caller can: handler exceptions, malformed messages, failed catch-ups. */
  onError?: (err: unknown) => void;
  /** Called when the fan-out comes and goes, after start (the history broker reports its own). */
  onStateChange?: (up: boolean) => void;
}

/** The history broker is never asked to deliver: nothing reaches this handler. */
const inert: BrokerEventHandler = {
  onPublication: () => undefined,
  onJoin: () => undefined,
  onLeave: () => undefined,
  onControl: () => undefined,
};

/**
 * ComposedBroker implements {@link Broker} with history on one broker and fan-out on another.
 *
 * Contract, beyond the Broker interface:
 * - `publish` with history calls the history broker's publish (offset, append, idempotency
 *   and version checks: one atomic step there), then hands the publication, with its offset
 *   and epoch, to the fan-out. A suppressed publish is not fanned out. Without history and
 *   without an idempotency key it goes to the fan-out alone (offset 0). While the fan-out is
 *   down a publish is refused before it is stored (EngineUnavailableError, safe to repeat); one
 *   stored whose hand-over then failed rejects with an EngineOutcomeUnknownError
 *   (BW_ERR_NATS_FANOUT or BW_ERR_REDIS_FANOUT in its cause) and is reported to `onError`.
 * - Delivery: each subscribed channel has a {@link ChannelOrder}: publications reach the
 *   handler in offset order, gaps filled from history after `reorderWaitMs`. Joins, leaves
 *   and publications without history are delivered as they arrive.
 * - The history broker's own delivery (Redis pub/sub, PostgreSQL NOTIFY) is not used: it is
 *   never subscribed, so its messages reach no handler.
 * - `isReady` is both brokers' readiness.
 */
export class ComposedBroker implements Broker {
  readonly #history: Broker;
  readonly #fanout: Fanout;
  readonly #o: ComposedBrokerOptions;
  readonly #onError: (err: unknown) => void;
  readonly #orders = new Map<string, ChannelOrder>();
  /** What keeping offset order cost on this node, over all channels (see channel-order.ts). */
  readonly orderStats: OrderStats = { waits: 0, reads: 0, filled: 0, dropped: 0 };
  #handler: BrokerEventHandler | undefined;

  constructor(history: Broker, fanout: Fanout, options: ComposedBrokerOptions) {
    this.#history = history;
    this.#fanout = fanout;
    this.#o = options;
    this.#onError = options.onError ?? ((err) => console.error('bulwark: composed broker', err));
  }

  /** address names both services (for logs), fan-out first. */
  get address(): string {
    const history = (this.#history as { address?: string }).address;
    return history === undefined ? this.#fanout.address : `${this.#fanout.address} + ${history}`;
  }

  /** isReady tells whether both the fan-out and the history broker can be used now. */
  isReady(): boolean {
    return this.#fanout.isReady() && (this.#history.isReady?.() ?? true);
  }

  /** start connects the fan-out, then starts the history broker; on failure neither is left running. */
  async start(handler: BrokerEventHandler): Promise<void> {
    this.#handler = handler;
    try {
      await this.#fanout.start({
        onEvent: (channel, event) => this.#receive(channel, event),
        onControl: (data) => this.#call(() => this.#handler?.onControl(data)),
        onStateChange: (up) => this.#o.onStateChange?.(up),
        onError: (err) => this.#onError(err),
      });
      await this.#history.start(inert);
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** subscribe makes this node receive the channel over the fan-out. */
  async subscribe(channel: string): Promise<void> {
    if (!this.#orders.has(channel)) {
      this.#orders.set(
        channel,
        new ChannelOrder({
          deliver: (pub, epoch, prev) => this.#handler?.onPublication(channel, pub, epoch, prev),
          read: (since, limit) => this.#history.history(channel, { since, limit, metaTtlMs: 1 }),
          onError: (err) => this.#onError(err),
          waitMs: this.#o.reorderWaitMs,
          batch: this.#o.catchUpBatch,
          stats: this.orderStats,
        }),
      );
    }
    try {
      await this.#fanout.subscribe(channel);
    } catch (err) {
      this.#orders.get(channel)?.close();
      this.#orders.delete(channel);
      throw err;
    }
    // Subscribed first, then the top: a publication after the read arrives over the fan-out.
    // Without it the first publication would wait reorder_wait for offsets that were never coming.
    try {
      const top = await this.#history.history(channel, { limit: 0, metaTtlMs: 1 });
      this.#orders.get(channel)?.startAt(top);
    } catch {
      // The first publication sets the position, after reorder_wait (see channel-order.ts).
    }
  }

  /** unsubscribe stops delivery of the channel to this node at once. */
  async unsubscribe(channel: string): Promise<void> {
    this.#orders.get(channel)?.close();
    this.#orders.delete(channel);
    await this.#fanout.unsubscribe(channel);
  }

  /** publish stores through the history broker, then fans out; see the class contract. */
  async publish(channel: string, data: RawJSON, opts: PublishOptions): Promise<PublishResult> {
    if (!this.#fanout.isReady()) throw this.#fanout.unavailable();
    const withHistory = opts.historySize > 0 && opts.historyTtlMs > 0;
    const result =
      withHistory || (opts.idempotencyKey ?? '') !== ''
        ? await this.#history.publish(channel, data, opts)
        : { offset: 0, epoch: '' };
    if (result.suppressed !== undefined) return result;
    const pub: Publication = { offset: result.offset, data };
    if (opts.info !== undefined) pub.info = opts.info;
    if (opts.tags !== undefined) pub.tags = opts.tags;
    if (opts.time !== undefined) pub.time = opts.time;
    if (opts.variants !== undefined && opts.variants.length > 0) pub.variants = opts.variants;
    const event: FanoutEvent = { kind: 'publication', pub, epoch: result.epoch, delta: opts.delta === true };
    try {
      await this.#fanout.publish(channel, event);
    } catch (err) {
      if (result.offset === 0 && (opts.idempotencyKey ?? '') === '') throw err; // nothing was stored
      const cause = this.#fanout.notHandedOver(
        `publication ${channel}@${result.offset}:${result.epoch} is stored in history`,
        err,
      );
      const unknown = new EngineOutcomeUnknownError(this.#fanout.address, { cause });
      this.#onError(unknown);
      throw unknown;
    }
    return result;
  }

  /** publishJoin tells every node subscribed to the channel that a client joined it. */
  async publishJoin(channel: string, info: ClientInfo): Promise<void> {
    await this.#fanout.publish(channel, { kind: 'join', info });
  }

  /** publishLeave tells every node subscribed to the channel that a client left it. */
  async publishLeave(channel: string, info: ClientInfo): Promise<void> {
    await this.#fanout.publish(channel, { kind: 'leave', info });
  }

  /** publishControl sends a control message to every node, this one included. */
  async publishControl(data: RawJSON): Promise<void> {
    await this.#fanout.publishControl(data);
  }

  /** history reads the history broker. */
  history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    return this.#history.history(channel, query);
  }

  /** removeHistory drops the channel's publications in the history broker. */
  removeHistory(channel: string): Promise<void> {
    return this.#history.removeHistory(channel);
  }

  /** close stops delivery and closes both brokers; idempotent. */
  async close(): Promise<void> {
    this.#handler = undefined;
    for (const order of this.#orders.values()) order.close();
    this.#orders.clear();
    await Promise.allSettled([this.#fanout.close(), this.#history.close()]);
  }

  /** #receive routes one fan-out event: numbered publications through the channel's order. */
  #receive(channel: string, event: FanoutEvent): void {
    const order = this.#orders.get(channel);
    if (order === undefined) return;
    if (event.kind === 'publication') {
      if (event.pub.offset > 0) order.receive(event.pub, event.epoch, event.delta);
      else this.#call(() => this.#handler?.onPublication(channel, event.pub, event.epoch));
    } else if (event.kind === 'join') {
      this.#call(() => this.#handler?.onJoin(channel, event.info));
    } else {
      this.#call(() => this.#handler?.onLeave(channel, event.info));
    }
  }

  #call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#onError(err);
    }
  }
}
