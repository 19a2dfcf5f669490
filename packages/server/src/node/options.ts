/**
 * The options of a node and of a server-side publish (library API types).
 *
 * @module
 */
import type { Logger } from 'pino';
import type { Broker } from '../engine/broker.js';
import type { PresenceManager } from '../engine/presence.js';
import type { FdLimitsReader } from '../protection/fd-limit.js';
import type { ProxyGuard } from '../proxy/http-proxy-client.js';
import type { ClientInfo, PublicationVariant } from '../protocol/types.js';

/** NodeOptions injects parts of a node; everything is optional. */
export interface NodeOptions {
  /** A pino logger; by default one is made from `log.level`, writing JSON to stdout. */
  logger?: Logger;
  /** The broker; defaults to the one engine.type names. Given, it replaces the configured engine. */
  broker?: Broker;
  /** The presence manager (with `broker`); defaults to the embedded memory presence manager. */
  presence?: PresenceManager;
  /**
   * Reads the process's open-file limits at start (see protection/fd-limit.ts); defaults to
   * /proc/self/limits on Linux. Returning undefined skips the check. For tests.
   */
  readFdLimits?: FdLimitsReader;
  /**
   * Wraps every proxy call to the backend (see proxy/http-proxy-client.ts): the seam for
   * protected calls (concurrency limit, circuit breaker, kill switch per target). Defaults to
   * the timeout-only guard: each call is bounded by its proxy's `timeout` and nothing else.
   */
  proxyGuard?: ProxyGuard;
}

/** PublishOptionsApi are the options of a server-side publish. */
export interface NodePublishOptions {
  /** Publish without appending to history (live subscribers only). */
  skipHistory?: boolean;
  tags?: Record<string, string>;
  info?: ClientInfo;
  /** Publish at most once per channel and key within channel.idempotent_result_ttl. */
  idempotencyKey?: string;
  /** Skip the publication unless its version is above the channel's last (channels with history). */
  version?: number;
  versionEpoch?: string;
  /** Payloads for clients of other capability (resolved: see node.resolveVariants). */
  variants?: PublicationVariant[];
}
