/**
 * The Redis broker: channel history in Redis streams and delivery over Redis pub/sub, so every
 * Bulwark node connected to one Redis sees the same channels. It matches the memory broker's
 * behaviour (both run `test/conformance/broker.case.ts`). Needs Redis ≥ 5 (streams); a Redis
 * Cluster needs Redis ≥ 7 (sharded pub/sub).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { ErrorCode, ProtocolError } from '../../protocol/codes.js';
import type { ClientInfo, RawJSON } from '../../protocol/types.js';
import {
  DEFAULT_IDEMPOTENT_RESULT_TTL_MS,
  type Broker,
  type BrokerEventHandler,
  type HistoryQuery,
  type HistoryResult,
  type PublishOptions,
  type PublishResult,
} from '../broker.js';
import {
  decodeEvent,
  decodeStreamEntry,
  encodeJoinLeave,
  encodeMeta,
  encodePublication,
  MalformedMessageError,
} from './codec.js';
import {
  closeClient,
  connectClient,
  createRedisClients,
  evalScript,
  subscribeAll,
  watchClient,
  withDeadline,
} from './connection.js';
import type { RedisClient } from './connection.js';
import { toEngineError } from './errors.js';
import type { RedisEngineOptions, ResolvedRedisOptions } from '../../config/redis-options.js';
import {
  brokerKeys,
  controlChannel,
  historyScript,
  publishOnceScript,
  publishScript,
  pubsubChannel,
  resultKey,
} from './scripts.js';

/** RedisBrokerOptions configures a {@link RedisBroker}: where Redis is, plus the broker's own knobs. */
export interface RedisBrokerOptions extends RedisEngineOptions {
  /** Meta TTL used when a publish or history read passes 0 or less (ms). Default: 30 days. */
  defaultMetaTtlMs?: number;
  /**
   * Called when the broker becomes usable (`true`: both connections ready and every channel
   * subscribed again) or stops being usable (`false`: a connection was lost). Only on changes,
   * after `start` succeeded. For readiness probes and logs.
   */
  onStateChange?: (up: boolean) => void;
  /**
   * Receives what the broker cannot report to a caller: an exception thrown by the event
   * handler, a malformed pub/sub message (skipped), the first connection error of each outage,
   * a failed resubscription. Defaults to `console.error`.
   */
  onError?: (err: unknown) => void;
}

/** Default meta TTL, as Centrifugo's `channel.history_meta_ttl` (720h) and the memory broker. */
const DEFAULT_META_TTL_MS = 720 * 60 * 60 * 1000;

/**
 * RedisBroker implements {@link Broker} on Redis (standalone, Sentinel or Cluster).
 *
 * Contract, beyond the Broker interface (and the memory broker's history semantics, which it
 * shares exactly):
 * - `publish` with history runs one Lua script: offset assignment, stream append, trimming,
 *   TTLs and the pub/sub publish are one atomic step per channel, so every node receives a
 *   channel's publications in offset order. Without history it only publishes (offset 0,
 *   epoch ''), through a script only when it carries an idempotency key. The idempotency and
 *   version checks run inside the same script, so they hold across nodes; with `delta` the
 *   script also reads the stream's previous entry and the message carries its data to every
 *   node (`prev`). Publications, joins and leaves of a channel travel on one pub/sub channel, so
 *   a node receives them in the order they were published.
 * - Delivery is asynchronous: the handler runs when the pub/sub message arrives, after
 *   `publish` may have resolved. A node receives its own publications like any other node's.
 * - `subscribe` resolves once Redis confirmed the subscription; calls for a subscribed channel
 *   share that confirmation. `unsubscribe` stops delivery at once and never fails: if Redis is
 *   unreachable, its subscription died with the connection and is not renewed.
 * - After the subscriber connection comes back, every subscribed channel is subscribed again
 *   before the broker reports itself up (`isReady`, `onStateChange(true)`). Publications sent
 *   while the connection was down are not delivered; recovery through history closes the gap.
 *   In cluster mode ioredis resubscribes each shard's channels itself when that shard comes
 *   back, and readiness follows the cluster connection as a whole, not each shard.
 * - While Redis is unreachable, calls reject within about `commandTimeoutMs` (at once when the
 *   connection is known to be down) with an {@link EngineUnavailableError}; they never wait for
 *   Redis to come back. A `publish` or `publishControl` that failed after it was sent, or may
 *   have been (no answer within `commandTimeoutMs`, connection lost in flight), rejects with an
 *   EngineOutcomeUnknownError instead: Redis may have applied it, or may apply it once it
 *   answers again, and a repeat delivers twice. One refused before it was sent (connection
 *   down) or by Redis (LOADING, READONLY, …) was not applied and rejects with the plain error.
 *   Joins and leaves are notices that are part of a subscribe, which the SDK repeats: they
 *   always reject with the plain error.
 * - `start` rejects with an EngineUnavailableError when Redis is not reachable within the
 *   connect timeout, and leaves nothing running; a broker whose start failed cannot be reused.
 */
export class RedisBroker implements Broker {
  private readonly o: ResolvedRedisOptions;
  private readonly command: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly cluster: boolean;
  /**
   * One command connection answers in order, so publishes are applied in the order they were
   * started. Not in cluster mode: a redirect during a slot migration resends a command late.
   */
  readonly publishesInCallOrder: boolean;
  private readonly control: string;
  /** The pub/sub channel name of channel "x" is `${pubPrefix}x}`. */
  private readonly pubPrefix: string;
  private readonly defaultMetaTtlMs: number;
  private readonly onStateChange: ((up: boolean) => void) | undefined;
  private readonly onError: (err: unknown) => void;
  /**
   * Channels this node subscribed to, with the pending or settled confirmation of each. Only
   * these are delivered and resubscribed: it is the source of truth, not ioredis' own list.
   */
  private readonly subscriptions = new Map<string, Promise<void>>();
  private handler: BrokerEventHandler | undefined;
  private state: 'new' | 'starting' | 'started' | 'closed' = 'new';
  private commandUp = false;
  private subscriberUp = false;
  private up = false;

  constructor(options: RedisBrokerOptions = {}) {
    ({ options: this.o, command: this.command, subscriber: this.subscriber } = createRedisClients(options));
    this.cluster = this.o.mode === 'cluster';
    this.publishesInCallOrder = !this.cluster;
    this.control = controlChannel(this.o.prefix);
    this.pubPrefix = pubsubChannel(this.o.prefix, '').slice(0, -1);
    this.defaultMetaTtlMs = options.defaultMetaTtlMs ?? DEFAULT_META_TTL_MS;
    this.onStateChange = options.onStateChange;
    this.onError = options.onError ?? ((err) => console.error('bulwark: redis broker', err));
    // Listen from the start: an 'error' event without a listener would be logged by ioredis
    // as unhandled. Errors before `start` succeeded are what `start` rejects with.
    const report = (err: unknown): void => {
      if (this.state === 'started') this.onError(toEngineError(err, this.o.description));
    };
    // Before anything else on every (re)connect: a restarted Redis has lost its scripts, and a
    // publish answered NOSCRIPT is sent again after its answer, where a later publish of a run
    // in flight together (client/publish-pipeline.ts) could overtake it.
    if (!this.cluster) this.command.on('ready', () => this.loadPublishScripts());
    watchClient(this.command, {
      onUp: () => this.setUp('command', true),
      onDown: () => this.setUp('command', false),
      onError: report,
    });
    watchClient(this.subscriber, {
      onUp: () => {
        if (this.state === 'started') this.resubscribeAll();
      },
      onDown: () => this.setUp('subscriber', false),
      onError: report,
    });
    const onMessage = (name: string, message: string): void => this.dispatch(name, message);
    this.subscriber.on('message', onMessage);
    this.subscriber.on('smessage', onMessage);
  }

  /** address is where Redis is expected, without credentials (for logs). */
  get address(): string {
    return this.o.description;
  }

  /** isReady tells whether the broker can publish and deliver right now. */
  isReady(): boolean {
    return this.up;
  }

  /** start connects both connections and subscribes to control messages; see the class contract. */
  async start(handler: BrokerEventHandler): Promise<void> {
    if (this.state !== 'new') throw new Error(`RedisBroker.start: broker is ${this.state}`);
    this.state = 'starting';
    this.handler = handler;
    try {
      await Promise.all([connectClient(this.command, this.o), connectClient(this.subscriber, this.o)]);
      await this.call(this.subscriber.subscribe(this.control));
    } catch (err) {
      this.command.disconnect();
      this.subscriber.disconnect();
      this.state = 'closed';
      throw toEngineError(err, this.o.description);
    }
    this.state = 'started';
    this.setUp('subscriber', true);
  }

  /** subscribe makes this node receive the channel's publications, joins and leaves. */
  subscribe(channel: string): Promise<void> {
    const existing = this.subscriptions.get(channel);
    if (existing !== undefined) return existing;
    const name = pubsubChannel(this.o.prefix, channel);
    const confirmed = this.call(this.cluster ? this.subscriber.ssubscribe(name) : this.subscriber.subscribe(name)).then(
      () => undefined,
      (err: unknown) => {
        if (this.subscriptions.get(channel) === confirmed) this.subscriptions.delete(channel);
        throw err;
      },
    );
    this.subscriptions.set(channel, confirmed);
    return confirmed;
  }

  /** unsubscribe stops delivery of the channel to this node at once; see the class contract. */
  async unsubscribe(channel: string): Promise<void> {
    if (!this.subscriptions.delete(channel)) return;
    const name = pubsubChannel(this.o.prefix, channel);
    try {
      await this.call(this.cluster ? this.subscriber.sunsubscribe(name) : this.subscriber.unsubscribe(name));
    } catch {
      // Unreachable Redis: the subscription ended with the connection and is not renewed,
      // since the channel has left `subscriptions`. Messages still in flight are filtered.
    }
  }

  /** publish stores (when history is on) and publishes one publication; see the class contract. */
  async publish(channel: string, data: RawJSON, opts: PublishOptions): Promise<PublishResult> {
    const meta = encodeMeta(opts);
    const keys = brokerKeys(this.o.prefix, channel);
    const key = opts.idempotencyKey ?? '';
    const resultTtlMs =
      key === '' ? 0 : Math.max(1, Math.ceil(opts.idempotentResultTtlMs ?? DEFAULT_IDEMPOTENT_RESULT_TTL_MS));
    const result = resultKey(this.o.prefix, channel, key);
    const command = this.cluster ? 'spublish' : 'publish';
    let reply: unknown;
    if (!(opts.historySize > 0 && opts.historyTtlMs > 0)) {
      const message = encodePublication(0, '', meta, data);
      if (key === '') {
        await this.call(this.publishRaw(keys.pubsub, message), true);
        return { offset: 0, epoch: '' };
      }
      reply = await this.call(
        evalScript(this.command, publishOnceScript, [result], [message, keys.pubsub, command, resultTtlMs]),
        true,
      );
    } else {
      reply = await this.call(
        evalScript(
          this.command,
          publishScript,
          [keys.meta, keys.stream, result],
          [
            data,
            meta,
            Math.max(1, Math.floor(opts.historySize)),
            Math.ceil(opts.historyTtlMs),
            this.metaTtl(opts.historyMetaTtlMs),
            newEpoch(),
            keys.pubsub,
            command,
            resultTtlMs,
            opts.version !== undefined && opts.version > 0 ? opts.version : 0,
            opts.versionEpoch ?? '',
            opts.delta ? '1' : '',
          ],
        ),
        true,
      );
    }
    if (!Array.isArray(reply) || typeof reply[0] !== 'number' || typeof reply[1] !== 'string') {
      throw new MalformedMessageError('publish reply', JSON.stringify(reply));
    }
    const position: PublishResult = { offset: reply[0], epoch: reply[1] };
    if (reply[2] === 1) position.suppressed = 'idempotency';
    else if (reply[2] === 2) position.suppressed = 'version';
    return position;
  }

  /** publishJoin tells every node subscribed to the channel that a client joined it. */
  async publishJoin(channel: string, info: ClientInfo): Promise<void> {
    await this.call(this.publishRaw(pubsubChannel(this.o.prefix, channel), encodeJoinLeave('join', info)));
  }

  /** publishLeave tells every node subscribed to the channel that a client left it. */
  async publishLeave(channel: string, info: ClientInfo): Promise<void> {
    await this.call(this.publishRaw(pubsubChannel(this.o.prefix, channel), encodeJoinLeave('leave', info)));
  }

  /** publishControl sends a control message to every node, this one included. */
  async publishControl(data: RawJSON): Promise<void> {
    await this.call(this.command.publish(this.control, data), true);
  }

  /** history reads a channel stream, creating its position if missing, as the memory broker does. */
  async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    const keys = brokerKeys(this.o.prefix, channel);
    const reply = await this.call(
      evalScript(
        this.command,
        historyScript,
        [keys.meta, keys.stream],
        [newEpoch(), this.metaTtl(query.metaTtlMs), ...streamRange(query)],
      ),
    );
    if (
      !Array.isArray(reply) ||
      typeof reply[0] !== 'number' ||
      typeof reply[1] !== 'string' ||
      !Array.isArray(reply[2])
    ) {
      throw new MalformedMessageError('history reply', JSON.stringify(reply));
    }
    const [offset, epoch, entries] = reply as [number, string, unknown[]];
    const since = query.since;
    if (since !== undefined && since.epoch !== '' && since.epoch !== epoch) {
      throw new ProtocolError(ErrorCode.UnrecoverablePosition);
    }
    return { publications: entries.map(decodeStreamEntry), offset, epoch };
  }

  /** removeHistory drops a channel's publications and keeps its position (and the stream's TTL). */
  async removeHistory(channel: string): Promise<void> {
    await this.call(this.command.xtrim(brokerKeys(this.o.prefix, channel).stream, 'MAXLEN', 0));
  }

  /** close stops delivery and closes both connections; idempotent. */
  async close(): Promise<void> {
    this.state = 'closed';
    this.handler = undefined;
    this.subscriptions.clear();
    this.commandUp = this.subscriberUp = this.up = false;
    await Promise.all([closeClient(this.command, this.o), closeClient(this.subscriber, this.o)]);
  }

  /**
   * call bounds and maps one Redis call: failures of availability become EngineUnavailableError,
   * or EngineOutcomeUnknownError for a `write` (a publish: not safe to repeat) that may have
   * reached Redis.
   */
  private async call<T>(promise: Promise<T>, write = false): Promise<T> {
    try {
      return await (this.cluster ? withDeadline(promise, this.o.commandTimeoutMs) : promise);
    } catch (err) {
      throw toEngineError(err, this.o.description, write);
    }
  }

  /** loadPublishScripts sends SCRIPT LOAD of the publish scripts; a failure is left to the publishes' own fallback. */
  private loadPublishScripts(): void {
    for (const script of [publishScript, publishOnceScript]) {
      this.command.script('LOAD', script.source).catch(() => undefined);
    }
  }

  private publishRaw(name: string, message: string): Promise<unknown> {
    return this.cluster ? this.command.spublish(name, message) : this.command.publish(name, message);
  }

  private metaTtl(ttlMs: number): number {
    return Math.ceil(ttlMs > 0 ? ttlMs : this.defaultMetaTtlMs);
  }

  /**
   * resubscribeAll subscribes again to the control channel and every subscribed channel after
   * the subscriber connection came back (a new connection starts with no subscriptions). In
   * cluster mode ioredis does this itself, per shard. If it fails while the connection stays
   * up, the connection is dropped so that the next reconnect tries again.
   */
  private resubscribeAll(): void {
    if (this.cluster) {
      this.setUp('subscriber', true);
      return;
    }
    const names = [this.control, ...[...this.subscriptions.keys()].map((c) => pubsubChannel(this.o.prefix, c))];
    subscribeAll(this.subscriber, names).then(
      () => this.setUp('subscriber', true),
      (err: unknown) => {
        if (this.state !== 'started') return;
        this.onError(toEngineError(err, this.o.description));
        if (this.subscriber.status === 'ready') this.subscriber.disconnect(true);
      },
    );
  }

  /** setUp records one connection's state and reports a change of the broker's. */
  private setUp(which: 'command' | 'subscriber', up: boolean): void {
    if (which === 'command') this.commandUp = up;
    else this.subscriberUp = up;
    const now = this.state === 'started' && this.commandUp && this.subscriberUp;
    if (now === this.up) return;
    this.up = now;
    try {
      this.onStateChange?.(now);
    } catch (err) {
      this.onError(err);
    }
  }

  /** dispatch hands one pub/sub message to the handler; it never throws (see onError). */
  private dispatch(name: string, message: string): void {
    const handler = this.handler;
    if (handler === undefined) return;
    try {
      if (name === this.control) {
        handler.onControl(message as RawJSON);
        return;
      }
      if (!name.startsWith(this.pubPrefix) || !name.endsWith('}')) return;
      const channel = name.slice(this.pubPrefix.length, -1);
      if (!this.subscriptions.has(channel)) return;
      const event = decodeEvent(message);
      if (event.kind === 'publication') handler.onPublication(channel, event.pub, event.epoch, event.prev);
      else if (event.kind === 'join') handler.onJoin(channel, event.info);
      else handler.onLeave(channel, event.info);
    } catch (err) {
      this.onError(err);
    }
  }
}

/** newEpoch makes a stream epoch: 8 random base64url characters (48 bits), as the memory broker. */
function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

/**
 * streamRange turns a history query into the script's direction, first and last stream IDs and
 * count, with the memory broker's semantics: forward reads offsets > since, reverse reads
 * offsets < since, limit 0 reads nothing, a negative limit reads everything.
 */
function streamRange(query: HistoryQuery): [dir: 'f' | 'r' | 'n', first: string, last: string, count: number] {
  const count = query.limit < 0 ? 0 : Math.floor(query.limit);
  if (query.limit >= 0 && count === 0) return ['n', '-', '+', 0];
  // Stream IDs are unsigned 64-bit; offsets beyond the safe integers never exist.
  const since =
    query.since === undefined ? undefined : Math.min(Math.floor(query.since.offset), Number.MAX_SAFE_INTEGER - 1);
  if (!query.reverse) return ['f', since === undefined || since < 0 ? '-' : `${since + 1}-0`, '+', count];
  if (since === undefined) return ['r', '-', '+', count];
  return since <= 1 ? ['n', '-', '+', 0] : ['r', '-', `${since - 1}-0`, count];
}
