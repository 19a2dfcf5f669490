/**
 * What a client session needs from its node. An interface (not the Node class) so the
 * session depends on capabilities, not on how the node wires them.
 *
 * @module
 */
import type { Logger } from 'pino';
import type { ChannelRules, ResolvedChannel } from '../channel-rules.js';
import type { Config } from '../config/schema.js';
import type { Broker } from '../engine/broker.js';
import type { MapBroker } from '../engine/map-broker.js';
import type { PresenceManager } from '../engine/presence.js';
import type { BurstLog } from '../protection/burst-log.js';
import type { CommandRateLimiter } from '../protection/rate-limit.js';
import type { KillSwitches } from '../protection/kill-switches.js';
import type { SheddingState } from '../protection/load-shedder.js';
import type { Metrics } from '../metrics.js';
import type { ClientInfo, RawJSON, StreamPosition } from '../protocol/types.js';
import type { ConnectTokenClaims, SubscriptionTokenClaims, SubscriptionTokenPurpose } from '../auth/token-verifier.js';
import type { BackendProxy } from '../proxy/backend-proxy.js';
import type { RpcCache } from '../proxy/rpc-cache.js';
import type { ProxyResolver } from '../proxy/proxies.js';
import type { Flushable } from './flush-scheduler.js';
import type { Hub } from './hub.js';
import type { Permissions } from './permissions.js';
import type { SharedPolls } from './shared-polls.js';
import type { TimerWheel } from './timer-wheel.js';

/** RpcContext is what an RPC handler learns about its caller. */
export interface RpcContext {
  client: string;
  user: string;
  info?: RawJSON;
}

/** RpcHandler answers an RPC method: it returns the reply data, or throws a ProtocolError. */
export type RpcHandler = (data: unknown, ctx: RpcContext) => unknown | Promise<unknown>;

/** MessageHandler receives `send` commands (fire-and-forget messages from clients). */
export type MessageHandler = (data: unknown, ctx: RpcContext) => void | Promise<void>;

/** SessionContext is the node as seen by a session. */
export interface SessionContext {
  readonly config: Readonly<Config>;
  readonly rules: ChannelRules;
  readonly hub: Hub;
  /** What clients may do on channels (see permissions.ts). */
  readonly permissions: Permissions;
  readonly broker: Broker;
  readonly presence: PresenceManager;
  /** The state of map channels (map subscriptions). */
  readonly mapBroker: MapBroker;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Command rate limits (per connection buckets live on the session, per user ones here). */
  readonly rateLimiter: CommandRateLimiter;
  /** What load shedding refuses right now (see protection/load-shedder.ts). */
  readonly shedder: SheddingState;
  /** Kill switches on this node (see protection/kill-switches.ts). */
  readonly killSwitches: KillSwitches;
  /** Logs protection events once per burst (see protection/burst-log.ts). */
  readonly burstLog: BurstLog;
  readonly nodeId: string;
  readonly version: string;
  readonly rpcHandlers: ReadonlyMap<string, RpcHandler>;
  readonly messageHandler: MessageHandler | undefined;
  /** verifyConnectToken verifies a connection token; `expectedUser` is set on refresh. */
  verifyConnectToken(token: string, expectedUser?: string): Promise<ConnectTokenClaims>;
  /** verifySubscriptionToken verifies a subscription token for this client and channel. */
  verifySubscriptionToken(
    token: string,
    channel: string,
    user: string,
    clientId: string,
    purpose: SubscriptionTokenPurpose,
  ): Promise<SubscriptionTokenClaims>;
  /** scheduleFlush queues a write queue for a flush pass: the next one if urgent, else after client.write_delay. */
  scheduleFlush(queue: Flushable, urgent: boolean): void;
  /** nodeSubscribe makes the broker deliver `channel` to this node (idempotent, shared). */
  nodeSubscribe(channel: string): Promise<void>;
  /** nodeUnsubscribe stops delivery of `channel` when no local subscriber is left. */
  nodeUnsubscribe(channel: string): Promise<void>;
  /**
   * publishFromClient appends to history and fans out, with the namespace's options; a publish
   * proxy may ask to skip history or add tags.
   */
  publishFromClient(
    rc: ResolvedChannel,
    data: RawJSON,
    info?: ClientInfo,
    opts?: { skipHistory?: boolean; tags?: Record<string, string> | undefined },
  ): Promise<StreamPosition>;
  /** Which backend proxy, if any, handles an event (see proxy/proxies.ts). */
  readonly proxies: ProxyResolver;
  /** Sends proxy events to the backend (see proxy/backend-proxy.ts). */
  readonly backend: BackendProxy;
  /** Answers the cacheable RPC methods (proxy.cache.rpc) through the protected cache. */
  readonly rpcCache: RpcCache;
  /** The wheel that serves every session deadline (ping, pong, stale, expiry). */
  readonly wheel: TimerWheel;
  /** Presence entries are refreshed at this period and live for a few periods. */
  readonly presenceTtlMs: number;
  /** Shared poll subscriptions on this node (see shared-polls.ts). */
  readonly sharedPolls: SharedPolls;
}
