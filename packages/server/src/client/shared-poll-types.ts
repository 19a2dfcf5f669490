/**
 * The shapes shared poll's parts share: a tracking connection, one channel's state on a node,
 * and what a cycle needs of the node (shared-polls.ts implements it, shared-poll-cycle.ts uses
 * it), so neither file imports the other's class.
 *
 * @module
 */
import type { Logger } from 'pino';
import type { ChannelRules } from '../channel-rules.js';
import type { Config } from '../config/schema.js';
import type { SharedPollNamespaceOptions } from '../config/sections/shared-poll.js';
import type { SharedPollStore, StoredItem } from '../engine/shared-poll-store.js';
import type { BurstLog } from '../protection/burst-log.js';
import type { Codec } from '../protocol/codec.js';
import type { BackendProxy } from '../proxy/backend-proxy.js';
import type { ProxyResolver, ProxyTarget } from '../proxy/proxies.js';
import type { SharedPollMetrics } from './shared-poll-metrics.js';

/** PollTracker is a connection as shared poll sees it: where its pushes go. */
export interface PollTracker {
  readonly codec: Codec;
  enqueue(frame: Buffer, urgent?: boolean): void;
}

/** Tracked is one connection's tracking of one key. */
export interface Tracked {
  /** The version the client holds (0: none). */
  version: number;
  /** Signature expiry in ms since epoch; 0: never. */
  expireAt: number;
}

/** PollChannel is one shared poll channel's state on this node. */
export interface PollChannel {
  readonly name: string;
  readonly opts: SharedPollNamespaceOptions;
  readonly target: ProxyTarget;
  readonly versioned: boolean;
  readonly byKey: Map<string, Map<PollTracker, Tracked>>;
  readonly bySession: Map<PollTracker, Map<string, Tracked>>;
  /** The last values this node saw (from the store or a change). */
  readonly cache: Map<string, StoredItem>;
  /** Keys tracked here with no value known anywhere: fetched at once, not at the next cycle. */
  readonly cold: Set<string>;
  coldTimer: NodeJS.Timeout | undefined;
  timer: NodeJS.Timeout | undefined;
  running: boolean;
  stale: boolean;
  /** When the channel last had a subscriber or a tracked key (ms). */
  lastUsed: number;
}

/** SharedPollsContext is what shared poll needs from its node. */
export interface SharedPollsContext {
  readonly config: Readonly<Config>;
  readonly rules: ChannelRules;
  readonly proxies: ProxyResolver;
  readonly backend: BackendProxy;
  readonly log: Logger;
  readonly burstLog: BurstLog;
}

/** CycleHost is the node's shared poll state a cycle works with. */
export interface CycleHost {
  readonly ctx: SharedPollsContext;
  readonly store: SharedPollStore;
  readonly metrics: SharedPollMetrics;
  /** Bounds the node's refresh calls in flight (shared_poll.concurrency_limit). */
  readonly calls: { run<T>(fn: () => Promise<T>): Promise<T> };
  sweepExpired(c: PollChannel, now: number): void;
  setStale(c: PollChannel, stale: boolean): void;
}
