/**
 * The MapBroker contract: the state of map channels (Centrifugo's map subscriptions). A map
 * channel is a key-value collection the engine owns — lobby rosters, party slots, ready
 * checks, map presence — with an optional change stream so a subscriber that reconnects
 * catches up from its position instead of reading the whole map again.
 *
 * As for streams (broker.ts), a change is applied to the state, appended to the stream and
 * delivered to the nodes in one atomic step per channel: a subscriber that reads the state at
 * position P and then the stream after P sees every change exactly once. Changes reach the
 * nodes through the same {@link BrokerEventHandler} as stream publications, as publications
 * carrying `key` (and `removed` for a removal).
 *
 * @module
 */
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import type { ClientInfo, Publication, RawJSON, StreamPosition } from '../protocol/types.js';
import type { BrokerEventHandler } from './broker.js';

/** KeyMode makes a write conditional on the key's existence (Centrifugo's `key_mode`). */
export type KeyMode = 'if_new' | 'if_exists';

/**
 * Why a write changed nothing: `idempotency` (a repeat of an idempotency key), `key_exists`
 * (if_new on a key that exists), `key_not_found` (if_exists, or a removal, of a missing key),
 * `position_mismatch` (the channel moved past `expectedPosition`), `version` (not newer than the
 * key's version), `not_owner` (the key exists and was written by another user than `ownerUser`).
 */
export type MapSuppressReason =
  'idempotency' | 'key_exists' | 'key_not_found' | 'position_mismatch' | 'version' | 'not_owner';

/** MapRetention says how long a channel's state and stream live (from the namespace's `map` block). */
export interface MapRetention {
  /** Entries expire this long after their last write (ms); 0 keeps them until removed. */
  keyTtlMs: number;
  /** Changes kept in the stream; 0 keeps no stream (ephemeral maps: offsets stay 0). */
  streamSize: number;
  /** Changes leave the stream this long after they were made (ms). */
  streamTtlMs: number;
  /** The stream position (epoch, top offset) of an empty channel lives this long after its last change (ms). */
  metaTtlMs: number;
  /** Most keys a channel may hold; a write of a new key beyond it fails with {@link MapLimitError}. */
  maxKeys: number;
}

/** MapPublishOptions describe one write of a key. */
export interface MapPublishOptions extends MapRetention {
  data: RawJSON;
  info?: ClientInfo | undefined;
  tags?: Record<string, string> | undefined;
  /** Sort score of the entry (kept and delivered; ordered reads are not built yet). */
  score?: number | undefined;
  keyMode?: KeyMode | undefined;
  /** Compare-and-set: write only while the channel's stream is exactly at this position. */
  expectedPosition?: StreamPosition | undefined;
  /** Write only when above the key's current version (in the same `versionEpoch`); 0: no check. */
  version?: number | undefined;
  versionEpoch?: string | undefined;
  idempotencyKey?: string | undefined;
  idempotentResultTtlMs?: number | undefined;
  /** Write an existing key only when its last write came from this user (`info.user`); new keys are free. */
  ownerUser?: string | undefined;
  /**
   * With `keyMode: 'if_new'` on a key that exists: restart the key's TTL all the same (nothing
   * else changes, nothing is delivered). Map presence refreshes its entries this way, so a
   * heartbeat costs no delivery.
   */
  refreshTtlOnSuppress?: boolean | undefined;
}

/** MapRemoveOptions describe one removal of a key. */
export interface MapRemoveOptions extends MapRetention {
  info?: ClientInfo | undefined;
  tags?: Record<string, string> | undefined;
  expectedPosition?: StreamPosition | undefined;
  idempotencyKey?: string | undefined;
  idempotentResultTtlMs?: number | undefined;
  /** Remove only when the key's last write came from this user (`info.user`). */
  ownerUser?: string | undefined;
}

/** MapUpdateResult is the stream position after a write; `suppressed` says why nothing changed. */
export interface MapUpdateResult extends StreamPosition {
  suppressed?: MapSuppressReason;
}

/** MapStateQuery selects a page of a channel's entries. */
export interface MapStateQuery {
  /** Where the page starts: '' for the first page, else the previous page's `cursor`. */
  cursor: string;
  /** Entries per page (at least 1). */
  limit: number;
  /** Read one key only. */
  key?: string | undefined;
  metaTtlMs: number;
}

/** MapStatePage is a page of entries (publications with `key`), and the stream position when it was read. */
export interface MapStatePage extends StreamPosition {
  entries: Publication[];
  /** '' on the last page. */
  cursor: string;
}

/** MapStreamQuery selects changes of a channel's stream (as {@link HistoryQuery} does for streams). */
export interface MapStreamQuery {
  since?: StreamPosition | undefined;
  /** At most this many; 0 returns only the position; -1 no limit. */
  limit: number;
  reverse?: boolean | undefined;
  metaTtlMs: number;
}

/** MapStreamPage is a page of changes and the stream's current top position. */
export interface MapStreamPage extends StreamPosition {
  publications: Publication[];
}

/**
 * MapBroker keeps the state and change stream of map channels and delivers their changes.
 *
 * Contract:
 * - `publish` and `remove` apply to the state, append to the stream (when `streamSize` > 0:
 *   offsets 1, 2, 3… per epoch, as in broker.ts) and deliver to every subscribed node, as one
 *   atomic step per channel; conditions (key mode, expected position, version, idempotency)
 *   are checked in that same step, so of two concurrent `if_new` writes of a key exactly one
 *   wins. A suppressed write changes, stores and delivers nothing.
 * - A key whose TTL passes is removed as if by `remove`: subscribers get the removal.
 * - `readState` pages through the entries in a stable order; each page carries the stream
 *   position at the time it was read. Entries carry the offset of their last change.
 * - `readStream` with a `since` whose epoch is not the channel's, or older than the stream
 *   retains, throws ProtocolError 112 (UnrecoverablePosition).
 * - `clear` drops the channel's state and stream; its next write starts a new epoch.
 */
export interface MapBroker {
  /** start begins delivering to `handler`. Called once before anything else. */
  start(handler: BrokerEventHandler): Promise<void>;
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  publish(channel: string, key: string, opts: MapPublishOptions): Promise<MapUpdateResult>;
  remove(channel: string, key: string, opts: MapRemoveOptions): Promise<MapUpdateResult>;
  readState(channel: string, query: MapStateQuery): Promise<MapStatePage>;
  readStream(channel: string, query: MapStreamQuery): Promise<MapStreamPage>;
  stats(channel: string): Promise<{ numKeys: number }>;
  clear(channel: string): Promise<void>;
  close(): Promise<void>;
  /** isReady: as Broker.isReady (optional; absent means always ready). */
  isReady?(): boolean;
}

/**
 * MapLimitError refuses a write of a new key into a channel that holds `maxKeys` keys already:
 * 106 (limit exceeded) to the client or API caller; nothing is written.
 */
export class MapLimitError extends ProtocolError {
  constructor(
    readonly channel: string,
    readonly maxKeys: number,
  ) {
    super(ErrorCode.LimitExceeded, `limit exceeded: map channel holds its maximum of ${maxKeys} keys`);
    this.name = 'MapLimitError';
  }
}
