/**
 * The Redis map broker: map channels (state, change stream, position) in Redis, shared by every
 * Bulwark node on one Redis, with changes delivered over Redis pub/sub. It matches the memory
 * map broker (both run `test/conformance/map.case.ts`); the key layout and scripts are in
 * map-scripts.ts. Standalone and Sentinel Redis only for now: the expiry index is one key
 * outside the channels' hash slots, which a Redis Cluster script cannot touch.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { ErrorCode, ProtocolError } from '../../protocol/codes.js';
import type { Publication, RawJSON } from '../../protocol/types.js';
import { DEFAULT_IDEMPOTENT_RESULT_TTL_MS, type BrokerEventHandler } from '../broker.js';
import {
  MapLimitError,
  type MapBroker,
  type MapPublishOptions,
  type MapRemoveOptions,
  type MapStatePage,
  type MapStateQuery,
  type MapStreamPage,
  type MapStreamQuery,
  type MapUpdateResult,
} from '../map-broker.js';
import { decodeEvent, decodePublication, decodeStreamEntry, MalformedMessageError } from './codec.js';
import { closeClient, connectClient, createRedisClients, evalScript, subscribeAll, watchClient } from './connection.js';
import type { RedisClient } from './connection.js';
import { toEngineError } from './errors.js';
import type { RedisEngineOptions, ResolvedRedisOptions } from '../../config/redis-options.js';
import {
  mapClearScript,
  mapDueScript,
  mapExpireScript,
  mapIndexKey,
  mapKeys,
  mapPublishScript,
  mapPubsubChannel,
  mapRemoveScript,
  mapResultKey,
  mapStateScript,
  mapStreamScript,
  MapWriteCode,
  suppressReasons,
  type MapKeys,
} from './map-scripts.js';

/** RedisMapBrokerOptions configures a {@link RedisMapBroker}. */
export interface RedisMapBrokerOptions extends RedisEngineOptions {
  /** How often each node looks for expired keys (ms; Centrifugo's map broker `cleanup_interval`). Default 1000; 0: never (tests call `cleanup()`). */
  cleanupIntervalMs?: number;
  /** Most channels, and most keys per channel, one cleanup step removes (`cleanup_batch_size`). Default 100. */
  cleanupBatchSize?: number;
  /** Called when the broker becomes usable or stops being usable, on changes only, after `start`. */
  onStateChange?: (up: boolean) => void;
  /** Receives a handler exception, a malformed pub/sub message, a connection or cleanup error. */
  onError?: (err: unknown) => void;
}

/** MapClusterUnsupportedError refuses map channels on a Redis Cluster (see the module comment). */
export class MapClusterUnsupportedError extends Error {
  constructor() {
    super('map channels are not supported on a Redis Cluster yet (use standalone or Sentinel Redis)');
    this.name = 'MapClusterUnsupportedError';
  }
}

/**
 * RedisMapBroker implements {@link MapBroker} on Redis.
 *
 * Contract, beyond the MapBroker interface (and the memory map broker's semantics):
 * - Each write, removal and expiry is one Lua script: conditions, state, stream, position and
 *   the pub/sub publish in one atomic step per channel, so nodes receive a channel's changes
 *   in offset order, and of concurrent `if_new` writes from any nodes exactly one wins.
 * - Key TTLs run on the Redis clock. Every node runs a cleanup loop; a key is removed (and its
 *   removal delivered) exactly once, by whichever node's script takes it from the expiry set,
 *   within about `cleanupIntervalMs` of its expiry. Until then reads still return it.
 * - Delivery is asynchronous and at most once per node, as the Redis broker's; after the
 *   subscriber connection comes back every subscribed channel is subscribed again before the
 *   broker reports itself up.
 * - While Redis is unreachable calls reject with an EngineUnavailableError; a write that may
 *   have been applied with an EngineOutcomeUnknownError (repeating it could apply it twice).
 */
export class RedisMapBroker implements MapBroker {
  private readonly o: ResolvedRedisOptions;
  private readonly command: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly pubPrefix: string;
  private readonly cleanupIntervalMs: number;
  private readonly batch: number;
  private readonly onStateChange: ((up: boolean) => void) | undefined;
  private readonly onError: (err: unknown) => void;
  private readonly subscriptions = new Map<string, Promise<void>>();
  private handler: BrokerEventHandler | undefined;
  private state: 'new' | 'starting' | 'started' | 'closed' = 'new';
  private commandUp = false;
  private subscriberUp = false;
  private up = false;
  private timer: NodeJS.Timeout | undefined;
  private cleaning: Promise<void> | undefined;

  constructor(options: RedisMapBrokerOptions = {}) {
    ({ options: this.o, command: this.command, subscriber: this.subscriber } = createRedisClients(options));
    this.pubPrefix = mapPubsubChannel(this.o.prefix, '').slice(0, -1);
    this.cleanupIntervalMs = options.cleanupIntervalMs ?? 1000;
    this.batch = Math.max(1, Math.floor(options.cleanupBatchSize ?? 100));
    this.onStateChange = options.onStateChange;
    this.onError = options.onError ?? ((err) => console.error('bulwark: redis map broker', err));
    const report = (err: unknown): void => {
      if (this.state === 'started') this.onError(toEngineError(err, this.o.description));
    };
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
    this.subscriber.on('message', (name: string, message: string) => this.dispatch(name, message));
  }

  /** isReady tells whether the broker can write and deliver right now. */
  isReady(): boolean {
    return this.up;
  }

  /** start connects both connections and starts the cleanup loop; rejects with EngineUnavailableError. */
  async start(handler: BrokerEventHandler): Promise<void> {
    if (this.state !== 'new') throw new Error(`RedisMapBroker.start: broker is ${this.state}`);
    this.state = 'starting';
    this.handler = handler;
    try {
      await Promise.all([connectClient(this.command, this.o), connectClient(this.subscriber, this.o)]);
    } catch (err) {
      this.command.disconnect();
      this.subscriber.disconnect();
      this.state = 'closed';
      throw toEngineError(err, this.o.description);
    }
    this.state = 'started';
    this.setUp('subscriber', true);
    if (this.cleanupIntervalMs > 0 && this.o.mode !== 'cluster') {
      this.timer = setInterval(() => void this.cleanup(), this.cleanupIntervalMs);
      this.timer.unref();
    }
  }

  subscribe(channel: string): Promise<void> {
    const existing = this.subscriptions.get(channel);
    if (existing !== undefined) return existing;
    const confirmed = this.call(this.subscriber.subscribe(mapPubsubChannel(this.o.prefix, channel))).then(
      () => undefined,
      (err: unknown) => {
        if (this.subscriptions.get(channel) === confirmed) this.subscriptions.delete(channel);
        throw err;
      },
    );
    this.subscriptions.set(channel, confirmed);
    return confirmed;
  }

  async unsubscribe(channel: string): Promise<void> {
    if (!this.subscriptions.delete(channel)) return;
    try {
      await this.call(this.subscriber.unsubscribe(mapPubsubChannel(this.o.prefix, channel)));
    } catch {
      // Unreachable Redis: the subscription died with the connection and is not renewed.
    }
  }

  async publish(channel: string, key: string, o: MapPublishOptions): Promise<MapUpdateResult> {
    const k = this.keys(channel);
    const meta: Record<string, unknown> = { key };
    if (o.info !== undefined) meta.info = o.info;
    if (o.tags !== undefined) meta.tags = o.tags;
    if (o.score !== undefined && o.score !== 0) meta.score = o.score;
    const [resultKey, resultTtl] = this.result(channel, o);
    const reply = await this.call(
      evalScript(
        this.command,
        mapPublishScript,
        [k.meta, k.state, k.keys, k.expire, k.stream, resultKey, k.index],
        [
          key,
          o.data,
          JSON.stringify(meta),
          o.tags !== undefined ? JSON.stringify(o.tags) : '',
          ...this.retention(o),
          Math.max(0, Math.floor(o.maxKeys)),
          newEpoch(),
          k.pubsub,
          'publish',
          resultTtl,
          o.keyMode ?? '',
          ...expected(o),
          o.version !== undefined && o.version > 0 ? Math.floor(o.version) : 0,
          JSON.stringify(o.versionEpoch ?? ''),
          channel,
          o.ownerUser === undefined ? '' : `=${o.ownerUser}`,
          o.refreshTtlOnSuppress === true ? '1' : '0',
        ],
      ),
      true,
    );
    return this.outcome(channel, o, reply);
  }

  async remove(channel: string, key: string, o: MapRemoveOptions): Promise<MapUpdateResult> {
    const k = this.keys(channel);
    const [resultKey, resultTtl] = this.result(channel, o);
    const [size, streamTtl, metaTtl, keyTtl] = this.retention(o);
    const reply = await this.call(
      evalScript(
        this.command,
        mapRemoveScript,
        [k.meta, k.state, k.keys, k.expire, k.stream, resultKey, k.index],
        [
          key,
          o.info !== undefined ? JSON.stringify(o.info) : '',
          o.tags !== undefined ? JSON.stringify(o.tags) : '',
          size,
          streamTtl,
          metaTtl,
          keyTtl,
          newEpoch(),
          k.pubsub,
          'publish',
          resultTtl,
          ...expected(o),
          channel,
          o.ownerUser === undefined ? '' : `=${o.ownerUser}`,
        ],
      ),
      true,
    );
    return this.outcome(channel, o, reply);
  }

  async readState(channel: string, q: MapStateQuery): Promise<MapStatePage> {
    const k = this.keys(channel);
    const reply = await this.call(
      evalScript(
        this.command,
        mapStateScript,
        [k.meta, k.state, k.keys, k.expire, k.stream],
        [
          newEpoch(),
          metaTtl(q.metaTtlMs),
          q.cursor,
          Math.max(1, Math.floor(q.limit)),
          q.key ?? '',
          q.key !== undefined ? '1' : '',
        ],
      ),
    );
    if (!Array.isArray(reply) || typeof reply[0] !== 'number' || typeof reply[1] !== 'string') {
      throw new MalformedMessageError('map state reply', JSON.stringify(reply));
    }
    const [offset, epoch, cursor, values] = reply as [number, string, unknown, unknown];
    if (typeof cursor !== 'string' || !Array.isArray(values)) {
      throw new MalformedMessageError('map state reply', JSON.stringify(reply));
    }
    return { offset, epoch, cursor, entries: values.map(decodeEntry) };
  }

  async readStream(channel: string, q: MapStreamQuery): Promise<MapStreamPage> {
    const k = this.keys(channel);
    const reply = await this.call(
      evalScript(
        this.command,
        mapStreamScript,
        [k.meta, k.state, k.keys, k.expire, k.stream],
        [newEpoch(), metaTtl(q.metaTtlMs), ...streamRange(q)],
      ),
    );
    if (
      !Array.isArray(reply) ||
      typeof reply[0] !== 'number' ||
      typeof reply[1] !== 'string' ||
      typeof reply[2] !== 'number' ||
      !Array.isArray(reply[3])
    ) {
      throw new MalformedMessageError('map stream reply', JSON.stringify(reply));
    }
    const [top, epoch, oldest, entries] = reply as [number, string, number, unknown[]];
    const since = q.since;
    if (since !== undefined && since.epoch !== '' && since.epoch !== epoch) unrecoverable();
    // Forward: the change right after `since` must still be kept (the memory broker's check).
    if (since !== undefined && !q.reverse && since.offset !== top) {
      if (since.offset > top || oldest < 0 || oldest > since.offset + 1) unrecoverable();
    }
    return { offset: top, epoch, publications: entries.map(decodeStreamEntry) };
  }

  async stats(channel: string): Promise<{ numKeys: number }> {
    this.refuseCluster();
    return { numKeys: await this.call(this.command.hlen(this.keys(channel).state)) };
  }

  async clear(channel: string): Promise<void> {
    const k = this.keys(channel);
    await this.call(
      evalScript(this.command, mapClearScript, [k.meta, k.state, k.keys, k.expire, k.stream, k.index], [channel]),
    );
  }

  /**
   * cleanup removes the keys whose TTL passed, channel by channel, through the expiry script
   * (each key exactly once whichever nodes run it). One run at a time per node.
   */
  cleanup(): Promise<void> {
    this.cleaning ??= this.sweep()
      .catch((err: unknown) => {
        if (this.state === 'started') this.onError(toEngineError(err, this.o.description));
      })
      .finally(() => (this.cleaning = undefined));
    return this.cleaning;
  }

  async close(): Promise<void> {
    this.state = 'closed';
    if (this.timer) clearInterval(this.timer);
    this.handler = undefined;
    this.subscriptions.clear();
    this.commandUp = this.subscriberUp = this.up = false;
    await this.cleaning;
    await Promise.all([closeClient(this.command, this.o), closeClient(this.subscriber, this.o)]);
  }

  private async sweep(): Promise<void> {
    if (!this.up) return;
    // Bounded: a backlog larger than this many batches waits for the next tick.
    for (let round = 0; round < 10; round++) {
      const due = await this.call(evalScript(this.command, mapDueScript, [mapIndexKey(this.o.prefix)], [this.batch]));
      if (!Array.isArray(due) || due.length === 0) return;
      for (const channel of due) {
        if (typeof channel !== 'string') continue;
        const k = this.keys(channel);
        await this.call(
          evalScript(
            this.command,
            mapExpireScript,
            [k.meta, k.state, k.keys, k.expire, k.stream, k.index],
            [channel, this.batch, newEpoch(), k.pubsub, 'publish'],
          ),
          true,
        );
      }
    }
  }

  private keys(channel: string): MapKeys {
    this.refuseCluster();
    return mapKeys(this.o.prefix, channel);
  }

  private refuseCluster(): void {
    if (this.o.mode === 'cluster') throw new MapClusterUnsupportedError();
  }

  private result(
    channel: string,
    o: { idempotencyKey?: string | undefined; idempotentResultTtlMs?: number | undefined },
  ): [string, number] {
    const key = o.idempotencyKey;
    // Without a key the result key is still passed (every key a script touches is declared).
    if (key === undefined) return [mapResultKey(this.o.prefix, channel, ''), 0];
    const ttl = Math.max(1, Math.ceil(o.idempotentResultTtlMs ?? DEFAULT_IDEMPOTENT_RESULT_TTL_MS));
    return [mapResultKey(this.o.prefix, channel, key), ttl];
  }

  private retention(o: MapPublishOptions | MapRemoveOptions): [number, number, number, number] {
    return [
      Math.max(0, Math.floor(o.streamSize)),
      Math.max(0, Math.ceil(o.streamTtlMs)),
      metaTtl(o.metaTtlMs),
      Math.max(0, Math.ceil(o.keyTtlMs)),
    ];
  }

  private outcome(channel: string, o: { maxKeys: number }, reply: unknown): MapUpdateResult {
    if (
      !Array.isArray(reply) ||
      typeof reply[0] !== 'number' ||
      typeof reply[1] !== 'string' ||
      typeof reply[2] !== 'number'
    ) {
      throw new MalformedMessageError('map write reply', JSON.stringify(reply));
    }
    const code = reply[2];
    if (code === MapWriteCode.limit) throw new MapLimitError(channel, o.maxKeys);
    if (code === MapWriteCode.needsStream) {
      throw new ProtocolError(
        ErrorCode.BadRequest,
        'expected_position needs a map with a stream (durable or persistent)',
      );
    }
    const result: MapUpdateResult = { offset: reply[0], epoch: reply[1] };
    const reason = suppressReasons[code];
    if (reason !== undefined) result.suppressed = reason;
    return result;
  }

  private async call<T>(promise: Promise<T>, write = false): Promise<T> {
    try {
      return await promise;
    } catch (err) {
      throw toEngineError(err, this.o.description, write);
    }
  }

  private resubscribeAll(): void {
    const names = [...this.subscriptions.keys()].map((c) => mapPubsubChannel(this.o.prefix, c));
    subscribeAll(this.subscriber, names).then(
      () => this.setUp('subscriber', true),
      (err: unknown) => {
        if (this.state !== 'started') return;
        this.onError(toEngineError(err, this.o.description));
        if (this.subscriber.status === 'ready') this.subscriber.disconnect(true);
      },
    );
  }

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

  /** dispatch hands one change to the handler; it never throws (see onError). */
  private dispatch(name: string, message: string): void {
    const handler = this.handler;
    if (handler === undefined || !name.startsWith(this.pubPrefix) || !name.endsWith('}')) return;
    const channel = name.slice(this.pubPrefix.length, -1);
    if (!this.subscriptions.has(channel)) return;
    try {
      const event = decodeEvent(message);
      if (event.kind !== 'publication' || event.pub.key === undefined) {
        throw new MalformedMessageError('map change', 'not a publication with a key');
      }
      handler.onPublication(channel, event.pub, event.epoch);
    } catch (err) {
      this.onError(err);
    }
  }
}

/** Meta TTL used when a caller passes 0 or less: 30 days, as the Redis broker. */
const DEFAULT_META_TTL_MS = 720 * 60 * 60 * 1000;

function metaTtl(ms: number): number {
  return Math.ceil(ms > 0 ? ms : DEFAULT_META_TTL_MS);
}

function expected(o: MapPublishOptions | MapRemoveOptions): [string, string] {
  const p = o.expectedPosition;
  return p === undefined ? ['', ''] : [String(Math.floor(p.offset)), p.epoch];
}

/** decodeEntry decodes a state entry: `<offset>\n<version>\n<version epoch>\n<tags>\n<meta>\n<data>`. */
function decodeEntry(value: unknown): Publication {
  if (typeof value !== 'string') throw new MalformedMessageError('map entry', 'not a string');
  const ends: number[] = [];
  for (let i = 0, from = 0; i < 5; i++) {
    const at = value.indexOf('\n', from);
    if (at < 0) throw new MalformedMessageError('map entry', 'missing header lines');
    ends.push(at);
    from = at + 1;
  }
  const [offsetEnd, , , tagsEnd, metaEnd] = ends as [number, number, number, number, number];
  return decodePublication(
    value.slice(0, offsetEnd),
    value.slice(metaEnd + 1) as RawJSON,
    value.slice(tagsEnd + 1, metaEnd),
  );
}

function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

function unrecoverable(): never {
  throw new ProtocolError(ErrorCode.UnrecoverablePosition);
}

/** streamRange turns a stream query into the script's direction, first and last IDs and count (0: all). */
function streamRange(q: MapStreamQuery): [dir: 'f' | 'r' | 'n', first: string, last: string, count: number] {
  const count = q.limit < 0 ? 0 : Math.floor(q.limit);
  if (q.limit >= 0 && count === 0) return ['n', '-', '+', 0];
  const since = q.since === undefined ? undefined : Math.min(Math.floor(q.since.offset), Number.MAX_SAFE_INTEGER - 1);
  if (!q.reverse) return ['f', since === undefined || since < 0 ? '-' : `${since + 1}-0`, '+', count];
  if (since === undefined) return ['r', '-', '+', count];
  return since <= 1 ? ['n', '-', '+', 0] : ['r', '-', `${since - 1}-0`, count];
}
