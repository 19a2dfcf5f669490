/**
 * The Broker contract: how a publication reaches every node, and the channel history that
 * makes recovery possible. History belongs to the broker (as in the centrifuge Go library)
 * because publish and history-append must be one atomic step per channel: a publication is
 * given its offset, stored and fanned out in that order, so subscribers and history readers
 * always agree on what offset N is.
 *
 * @module
 */
import type { ClientInfo, Publication, PublicationVariant, RawJSON, StreamPosition } from '../protocol/types.js';

/** How long an idempotent publish's result is kept when the caller does not say: 5 minutes, as Centrifugo. */
export const DEFAULT_IDEMPOTENT_RESULT_TTL_MS = 5 * 60 * 1000;

/** PublishOptions tells the broker how to store one publication. */
export interface PublishOptions {
  /** Keep at most this many publications in the channel stream; 0 keeps no history. */
  historySize: number;
  /** Drop the stream's publications this long after the last publish (ms); 0 keeps no history. */
  historyTtlMs: number;
  /** Keep the stream position (offset, epoch) this long after the last activity (ms). */
  historyMetaTtlMs: number;
  info?: ClientInfo;
  tags?: Record<string, string>;
  /** Stamp the publication with the publish time. */
  time?: number;
  /**
   * Deliver the previous publication of the stream (offset − 1) with this one, when history
   * still holds it, so that every node can send delta-compressed subscribers a delta without
   * having seen that publication itself (client/delta.ts).
   */
  delta?: boolean;
  /** Alternative payloads for clients of other capability, stored and delivered with the publication. */
  variants?: PublicationVariant[];
  /**
   * Publish at most once per channel and key within `idempotentResultTtlMs`: a repeat is not
   * published again and gets the first publish's result, with `suppressed`. Holds across nodes
   * of a shared engine (Redis: checked and stored in the publish script itself).
   */
  idempotencyKey?: string;
  /** How long the result of a publish with an idempotency key is remembered (ms; default 5 min). */
  idempotentResultTtlMs?: number;
  /**
   * Version of the channel state this publication carries (> 0). With history, a publication
   * whose version is not above the channel's last one (in the same `versionEpoch`) is skipped
   * and answered with the stream's current position and `suppressed: 'version'`, so out-of-order writers
   * cannot roll a channel back. 0 or absent: no check. Without history it is ignored, as in
   * Centrifugo.
   */
  version?: number;
  /** Scope of `version`: a publication in another epoch than the last one's is never skipped. */
  versionEpoch?: string;
}

/**
 * PublishResult is the position a publish was given. `suppressed` (set only when nothing was
 * published) says why: `idempotency`, a repeat of an idempotency key (the position is the
 * first publish's), or `version`, a version that was not newer (the stream's current position).
 */
export interface PublishResult extends StreamPosition {
  suppressed?: 'idempotency' | 'version';
}

/** HistoryQuery selects publications of a channel stream. */
export interface HistoryQuery {
  /** Return publications after this position. The epoch must be the stream's current one. */
  since?: StreamPosition;
  /** At most this many publications; 0 returns only the stream position; -1 means no limit. */
  limit: number;
  /** Newest first (before `since`, when given). */
  reverse?: boolean;
  /** Keep the stream position this long after this read (ms), creating it if missing. */
  metaTtlMs: number;
}

/** HistoryResult is a page of publications and the stream's current top position. */
export interface HistoryResult {
  publications: Publication[];
  offset: number;
  epoch: string;
}

/** BrokerEventHandler receives what the broker delivers to this node. */
export interface BrokerEventHandler {
  /**
   * A publication on a channel this node subscribed to, in offset order per channel; `prev` is
   * the stream's publication at offset − 1 when published with `delta` and still in history.
   */
  onPublication(channel: string, pub: Publication, epoch: string, prev?: Publication): void;
  onJoin(channel: string, info: ClientInfo): void;
  onLeave(channel: string, info: ClientInfo): void;
  /** A control message for the nodes (cluster commands). */
  onControl(data: RawJSON): void;
}

/**
 * Broker publishes to channels across nodes and keeps channel history.
 *
 * Contract:
 * - `publish` appends to history (when historySize > 0 and historyTtlMs > 0) and delivers to
 *   every node subscribed to the channel, atomically per channel: offsets are 1, 2, 3… within an
 *   epoch, delivery order equals offset order, and history holds exactly what was delivered.
 * - A stream's epoch changes only when its position is lost (meta TTL expiry, removal, engine
 *   restart); offsets never repeat within an epoch.
 * - `history` with `since` whose epoch differs from the stream's throws a ProtocolError
 *   {@link ErrorCode.UnrecoverablePosition}; otherwise returns publications with
 *   offset > since.offset (the caller checks for gaps left by trimming).
 * - Delivery is at most once per node; recovery through history closes the gaps.
 * - A publish whose `idempotencyKey` was already used on the channel within its result TTL, or
 *   (with history) whose `version` is not above the channel's last, stores and delivers
 *   nothing and resolves with `suppressed` set (see {@link PublishOptions}). The check and
 *   the append are one atomic step, so two concurrent repeats publish once.
 */
export interface Broker {
  /** start begins delivering to `handler`. Called once before anything else. */
  start(handler: BrokerEventHandler): Promise<void>;
  /** subscribe makes this node receive the channel's publications and join/leave events. */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  publish(channel: string, data: RawJSON, opts: PublishOptions): Promise<PublishResult>;
  /**
   * publishNow is `publish` completed within the call, where a broker can (the memory broker:
   * nothing to wait for): the same effect and result, or the same error thrown. Optional; the
   * server API answers a publish without a promise when the broker has it (issue 18).
   */
  publishNow?(channel: string, data: RawJSON, opts: PublishOptions): PublishResult;
  /**
   * publishesInCallOrder: publishes started without waiting for each other are applied in the
   * order they were started (one FIFO connection per channel, as Redis has), so a client's run
   * of publishes may be in flight together (client/publish-pipeline.ts). Absent means false.
   */
  readonly publishesInCallOrder?: boolean;
  publishJoin(channel: string, info: ClientInfo): Promise<void>;
  publishLeave(channel: string, info: ClientInfo): Promise<void>;
  publishControl(data: RawJSON): Promise<void>;
  history(channel: string, query: HistoryQuery): Promise<HistoryResult>;
  removeHistory(channel: string): Promise<void>;
  close(): Promise<void>;
  /**
   * isReady tells whether the broker can publish and deliver right now (an engine backed by a
   * service, such as Redis, is not while the service is unreachable). Optional: a broker
   * without it, such as the memory broker, is always ready.
   */
  isReady?(): boolean;
}
