/**
 * The Fanout contract: the part of a broker that only carries messages between nodes, with no
 * history and no numbering of its own (NATS: nats/fanout-nats.ts; Redis pub/sub:
 * redis/fanout-redis.ts; broker.type chooses, fanout-choice.ts). A {@link ComposedBroker}
 * puts one in front of an engine's broker, which keeps history and numbers publications, as
 * Centrifugo v6 lets a broker be chosen apart from the engine.
 *
 * @module
 */
import type { ClientInfo, Publication, RawJSON } from '../protocol/types.js';

/** FanoutEvent is one channel event carried between nodes. */
export type FanoutEvent =
  | { kind: 'publication'; pub: Publication; epoch: string; delta: boolean }
  | { kind: 'join' | 'leave'; info: ClientInfo };

/** FanoutEvents receive what the fan-out brings to this node. */
export interface FanoutEvents {
  /** An event on a subscribed channel, in the order the fan-out received it. */
  onEvent(channel: string, event: FanoutEvent): void;
  /** A control message (from any node, this one included). */
  onControl(data: RawJSON): void;
  /** The fan-out became usable again (true) or was lost (false), after start. */
  onStateChange(up: boolean): void;
  /** What no caller can receive: malformed messages, the first error of each outage. */
  onError(err: unknown): void;
}

/**
 * Fanout carries channel events and control messages between nodes, at most once.
 *
 * Contract:
 * - `start` connects and listens to control messages; it rejects with an
 *   EngineUnavailableError naming the config key when the service cannot be reached, and
 *   leaves nothing running.
 * - `subscribe` resolves once events published after it reach this node; `unsubscribe` stops
 *   them at once.
 * - `publish` and `publishControl` hand the message over or reject: an EngineUnavailableError
 *   while the service is known to be down (nothing was sent), an EngineOutcomeUnknownError
 *   when it may have been sent (Redis: no answer in time). NATS hands over to its client's
 *   buffer and resolves at once; Redis resolves once Redis answered the PUBLISH.
 * - Events of one channel sent by one node arrive in the order that node sent them; events
 *   from different nodes may interleave in any order (the composed broker reorders).
 */
export interface Fanout {
  /** Where the service is, without credentials (for logs). */
  readonly address: string;
  start(events: FanoutEvents): Promise<void>;
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  publish(channel: string, event: FanoutEvent): Promise<void>;
  publishControl(data: RawJSON): Promise<void>;
  isReady(): boolean;
  /** unavailable makes the error a call gets while the service is down. */
  unavailable(cause?: unknown): Error;
  /**
   * notHandedOver makes the coded error logged when a publication stored in history could not
   * be handed to the fan-out (BW_ERR_NATS_FANOUT, BW_ERR_REDIS_FANOUT); `what` says which.
   */
  notHandedOver(what: string, cause: unknown): Error;
  close(): Promise<void>;
}
