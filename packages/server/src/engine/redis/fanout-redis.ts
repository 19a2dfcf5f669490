/**
 * The Redis fan-out (`broker.type` redis): channel events and control messages between nodes
 * over Redis pub/sub, at most once, with no history of its own: the engine (PostgreSQL, or
 * another Redis) keeps history and numbers publications, and a ComposedBroker keeps offset
 * order on each node. Pub/sub channels (docs/ENGINES.md):
 *
 * - `<prefix>.fanout.{<channel>}`: publications, joins and leaves of one channel (sharded
 *   pub/sub in a Redis Cluster: the hash tag puts it on the channel's shard);
 * - `<prefix>.fanout.control`: control messages for every node.
 *
 * They differ from the Redis engine's (`<prefix>.pub.{…}`, `<prefix>.control`), so the fan-out
 * may share a Redis and a prefix with a Redis engine. Connections, fail-fast options, reconnect
 * and the batched renewal of subscriptions are the Redis engine's (connection.ts).
 *
 * @module
 */
import { BulwarkError } from '../../errors.js';
import type { RawJSON } from '../../protocol/types.js';
import type { RedisEngineOptions, ResolvedRedisOptions } from '../../config/redis-options.js';
import { EngineOutcomeUnknownError, EngineUnavailableError } from '../errors.js';
import type { Fanout, FanoutEvent, FanoutEvents } from '../fanout.js';
import { decodeEvent, encodeEvent, MalformedEventError } from '../fanout-codec.js';
import {
  closeClient,
  connectClient,
  createRedisClients,
  subscribeAll,
  watchClient,
  withDeadline,
  type RedisClient,
} from './connection.js';
import { toEngineError } from './errors.js';

/** RedisFanoutOptions configure a {@link RedisFanout}: where Redis is (connection.ts options). */
export interface RedisFanoutOptions extends RedisEngineOptions {
  /** The config section, named in errors about reaching Redis. Default: "broker.redis". */
  configKey?: string;
}

/** fanoutChannel is the pub/sub channel of one Bulwark channel's events. */
export function fanoutChannel(prefix: string, channel: string): string {
  return `${prefix}.fanout.{${channel}}`;
}

/** fanoutControl is the pub/sub channel of control messages. */
export function fanoutControl(prefix: string): string {
  return `${prefix}.fanout.control`;
}

/**
 * RedisFanout implements {@link Fanout} on Redis pub/sub; see the module comment.
 *
 * Contract, beyond the Fanout interface: `publish` resolves once Redis answered the PUBLISH
 * (joins and leaves: a failure is always the plain EngineUnavailableError, they are part of a
 * subscribe the SDK repeats); after the subscriber connection comes back, control and every
 * subscribed channel are subscribed again (in batches) before the fan-out reports itself up.
 */
export class RedisFanout implements Fanout {
  readonly #o: ResolvedRedisOptions;
  readonly #key: string;
  readonly #command: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #cluster: boolean;
  readonly #control: string;
  /** `<prefix>.fanout.{`: what every channel's pub/sub name starts with. */
  readonly #channelPrefix: string;
  /** Channels this node subscribed to, with each one's pending or settled confirmation. */
  readonly #subs = new Map<string, Promise<void>>();
  #events: FanoutEvents | undefined;
  #state: 'new' | 'started' | 'closed' = 'new';
  #commandUp = false;
  #subscriberUp = false;
  #up = false;

  constructor(options: RedisFanoutOptions) {
    ({ options: this.#o, command: this.#command, subscriber: this.#subscriber } = createRedisClients(options));
    this.#key = options.configKey ?? 'broker.redis';
    this.#cluster = this.#o.mode === 'cluster';
    this.#control = fanoutControl(this.#o.prefix);
    this.#channelPrefix = fanoutChannel(this.#o.prefix, '').slice(0, -1);
    const report = (err: unknown): void => {
      if (this.#state === 'started') this.#events?.onError(this.unavailable(err));
    };
    watchClient(this.#command, {
      onUp: () => this.#setUp('command', true),
      onDown: () => this.#setUp('command', false),
      onError: report,
    });
    watchClient(this.#subscriber, {
      onUp: () => {
        if (this.#state === 'started') this.#renew();
      },
      onDown: () => this.#setUp('subscriber', false),
      onError: report,
    });
    const onMessage = (name: string, message: string): void => this.#dispatch(name, message);
    this.#subscriber.on('message', onMessage);
    this.#subscriber.on('smessage', onMessage);
  }

  /** address is where Redis is, without credentials (for logs). */
  get address(): string {
    return this.#o.description;
  }

  /** isReady tells whether both connections are up and every subscription is in place. */
  isReady(): boolean {
    return this.#up;
  }

  /** unavailable makes the error of a call while Redis cannot be reached, naming the config keys. */
  unavailable(cause?: unknown): EngineUnavailableError {
    if (cause instanceof EngineOutcomeUnknownError) return cause;
    if (cause instanceof EngineUnavailableError) cause = cause.cause;
    const why = cause instanceof Error ? cause.message : cause === undefined ? 'connection is down' : String(cause);
    const err = new Error(
      `Redis at ${this.address} is not reachable (${why}): check that Redis runs there and ${this.#key}.* (address, user, password, tls)`,
      { cause },
    );
    return new EngineUnavailableError(this.address, { cause: err });
  }

  /** notHandedOver makes BW_ERR_REDIS_FANOUT: a stored publication that never reached Redis pub/sub. */
  notHandedOver(what: string, cause: unknown): BulwarkError {
    const why = cause instanceof Error ? cause.message : String(cause);
    return new BulwarkError('BW_ERR_REDIS_FANOUT', `${what} but was not handed to Redis pub/sub: ${why}`, { cause });
  }

  /** start connects both connections and subscribes to control messages; on failure nothing is left running. */
  async start(events: FanoutEvents): Promise<void> {
    if (this.#state !== 'new') throw new Error(`RedisFanout.start: fan-out is ${this.#state}`);
    this.#events = events;
    try {
      await Promise.all([connectClient(this.#command, this.#o), connectClient(this.#subscriber, this.#o)]);
      await this.#call(this.#subscriber.subscribe(this.#control));
    } catch (err) {
      this.#command.disconnect();
      this.#subscriber.disconnect();
      this.#state = 'closed';
      throw this.unavailable(err);
    }
    this.#state = 'started';
    // Up without a report: onStateChange tells changes after start (the Fanout contract).
    this.#subscriberUp = true;
    this.#up = this.#commandUp;
  }

  /** subscribe makes this node receive the channel's events; resolves once Redis confirmed it. */
  subscribe(channel: string): Promise<void> {
    const existing = this.#subs.get(channel);
    if (existing !== undefined) return existing;
    if (!this.#up) return Promise.reject(this.unavailable());
    const name = fanoutChannel(this.#o.prefix, channel);
    const confirmed = this.#call(
      this.#cluster ? this.#subscriber.ssubscribe(name) : this.#subscriber.subscribe(name),
    ).then(
      () => undefined,
      (err: unknown) => {
        if (this.#subs.get(channel) === confirmed) this.#subs.delete(channel);
        throw err;
      },
    );
    this.#subs.set(channel, confirmed);
    return confirmed;
  }

  /** unsubscribe stops the channel's events at once; never fails (a lost connection took the subscription with it). */
  async unsubscribe(channel: string): Promise<void> {
    if (!this.#subs.delete(channel)) return;
    const name = fanoutChannel(this.#o.prefix, channel);
    try {
      await this.#call(this.#cluster ? this.#subscriber.sunsubscribe(name) : this.#subscriber.unsubscribe(name));
    } catch {
      // Not renewed on reconnect: the channel left #subs; messages in flight are filtered.
    }
  }

  /**
   * publish hands one channel event to Redis; rejects at once while Redis is down (nothing
   * sent), so a publication never reaches the other nodes long after the subscribers' recovery
   * gave it to them.
   */
  async publish(channel: string, event: FanoutEvent): Promise<void> {
    const name = fanoutChannel(this.#o.prefix, channel);
    const message = encodeEvent(event);
    await this.#send(
      () => (this.#cluster ? this.#command.spublish(name, message) : this.#command.publish(name, message)),
      event.kind === 'publication',
    );
  }

  /** publishControl hands a control message to Redis, for every node (this one included). */
  async publishControl(data: RawJSON): Promise<void> {
    await this.#send(() => this.#command.publish(this.#control, data), true);
  }

  /** close ends both connections; idempotent. */
  async close(): Promise<void> {
    this.#state = 'closed';
    this.#events = undefined;
    this.#subs.clear();
    this.#commandUp = this.#subscriberUp = this.#up = false;
    await Promise.all([closeClient(this.#command, this.#o), closeClient(this.#subscriber, this.#o)]);
  }

  /** #send runs one PUBLISH: refused unsent while down; a `write` that may have been sent is outcome unknown. */
  async #send(call: () => Promise<unknown>, write: boolean): Promise<void> {
    if (!this.#up) throw this.unavailable();
    try {
      const sent = call();
      await (this.#cluster ? withDeadline(sent, this.#o.commandTimeoutMs) : sent);
    } catch (err) {
      const mapped = toEngineError(err, this.address, write);
      // A reply that is no availability error (a bug) goes as is; outcome unknown stays so.
      throw mapped instanceof EngineUnavailableError ? this.unavailable(mapped) : mapped;
    }
  }

  /** #call bounds a subscribe-side call and maps its failure; such calls are safe to repeat. */
  async #call<T>(promise: Promise<T>): Promise<T> {
    try {
      return await (this.#cluster ? withDeadline(promise, this.#o.commandTimeoutMs) : promise);
    } catch (err) {
      const mapped = toEngineError(err, this.address);
      throw mapped instanceof EngineUnavailableError ? this.unavailable(mapped) : mapped;
    }
  }

  /**
   * #renew subscribes again to control and every subscribed channel after the subscriber
   * connection came back (a new connection starts with none). In cluster mode ioredis does it
   * per shard. If it fails while the connection stays up, the connection is dropped so that
   * the next reconnect tries again.
   */
  #renew(): void {
    if (this.#cluster) {
      this.#setUp('subscriber', true);
      return;
    }
    const names = [this.#control, ...[...this.#subs.keys()].map((c) => fanoutChannel(this.#o.prefix, c))];
    subscribeAll(this.#subscriber, names).then(
      () => this.#setUp('subscriber', true),
      (err: unknown) => {
        if (this.#state !== 'started') return;
        this.#events?.onError(this.unavailable(err));
        if (this.#subscriber.status === 'ready') this.#subscriber.disconnect(true);
      },
    );
  }

  /** #setUp records one connection's state and reports a change of the fan-out's. */
  #setUp(which: 'command' | 'subscriber', up: boolean): void {
    if (which === 'command') this.#commandUp = up;
    else this.#subscriberUp = up;
    const now = this.#state === 'started' && this.#commandUp && this.#subscriberUp;
    if (now === this.#up) return;
    this.#up = now;
    try {
      this.#events?.onStateChange(now);
    } catch (err) {
      this.#events?.onError(err);
    }
  }

  /** #dispatch hands one pub/sub message on; a malformed one is reported and skipped. */
  #dispatch(name: string, message: string): void {
    const events = this.#events;
    if (events === undefined) return;
    if (name === this.#control) {
      events.onControl(message as RawJSON);
      return;
    }
    if (!name.startsWith(this.#channelPrefix) || !name.endsWith('}')) return;
    const channel = name.slice(this.#channelPrefix.length, -1);
    if (!this.#subs.has(channel)) return;
    let event: FanoutEvent;
    try {
      event = decodeEvent(message);
    } catch (err) {
      const why = err instanceof MalformedEventError ? err.why : String(err);
      events.onError(
        new BulwarkError(
          'BW_ERR_REDIS_FANOUT_MALFORMED',
          `malformed Redis pub/sub message on ${name}: ${why}; skipped`,
        ),
      );
      return;
    }
    events.onEvent(channel, event);
  }
}
