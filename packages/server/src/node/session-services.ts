/**
 * What the node does for its client sessions beyond lending them its parts: verifying their
 * tokens, the broker subscriptions they share (one per channel per node), write flushing and
 * the periodic refresh of their presence entries.
 *
 * @module
 */
import type { Logger } from 'pino';
import { TokenVerifier, tokenVerifierOptions } from '../auth/token-verifier.js';
import { ChannelRules } from '../channel-rules.js';
import { FlushScheduler, type Flushable } from '../client/flush-scheduler.js';
import { refreshMapPresence } from '../client/map-presence.js';
import type { ClientSession } from '../client/session.js';
import type { Config } from '../config/schema.js';
import type { Broker } from '../engine/broker.js';
import type { MapBroker } from '../engine/map-broker.js';
import type { PresenceManager } from '../engine/presence.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';

/** SessionServicesContext is what the session services need from their node. */
export interface SessionServicesContext {
  /** client.token, client.subscription_token, client.write_delay, client.presence_update_interval. */
  readonly config: Readonly<Config>;
  readonly log: Logger;
  readonly rules: Pick<ChannelRules, 'resolve'>;
  /** This node's sessions (the hub). */
  readonly hub: {
    sessions(): Iterable<Pick<ClientSession, 'subs' | 'info' | 'id' | 'user' | 'ctx'>>;
    hasSubscribers(channel: string): boolean;
  };
  /** The engine's broker and presence manager, as they are now. */
  readonly broker: Pick<Broker, 'subscribe' | 'unsubscribe'>;
  /** The map broker delivers the channels of map namespaces. */
  readonly mapBroker: Pick<MapBroker, 'subscribe' | 'unsubscribe'>;
  readonly presence: Pick<PresenceManager, 'addPresence'>;
  /** How long a presence entry lives. */
  readonly presenceTtlMs: number;
}

/** SessionServices serves one node's sessions. */
export class SessionServices {
  readonly #ctx: SessionServicesContext;
  readonly #connectVerifier: TokenVerifier | undefined;
  readonly #subVerifier: TokenVerifier | undefined;
  readonly #nodeSubs = new Map<string, Promise<void>>();
  readonly #flusher: FlushScheduler;
  #presenceTimer: NodeJS.Timeout | undefined;

  constructor(ctx: SessionServicesContext) {
    this.#ctx = ctx;
    const cfg = ctx.config;
    const tok = cfg.client.token;
    if (tok.hmac_secret_key || tok.rsa_public_key || tok.ecdsa_public_key) {
      this.#connectVerifier = new TokenVerifier(tokenVerifierOptions(tok, 'client.token'));
    }
    const sub = cfg.client.subscription_token;
    this.#subVerifier = sub.enabled
      ? new TokenVerifier(tokenVerifierOptions(sub, 'client.subscription_token'))
      : this.#connectVerifier;
    this.#flusher = new FlushScheduler(cfg.client.write_delay);
  }

  /** verifyConnectToken verifies a connection token; `expectedUser` is set on refresh. */
  verifyConnectToken(token: string, expectedUser?: string) {
    if (!this.#connectVerifier) throw new ProtocolError(ErrorCode.Unauthorized, 'no token keys configured');
    return this.#connectVerifier.verifyConnectToken(token, expectedUser === undefined ? {} : { expectedUser });
  }

  /** verifySubscriptionToken verifies a subscription token for this client and channel. */
  verifySubscriptionToken(
    token: string,
    channel: string,
    user: string,
    clientId: string,
    purpose: 'subscribe' | 'sub_refresh',
  ) {
    if (!this.#subVerifier) throw new ProtocolError(ErrorCode.PermissionDenied, 'no token keys configured');
    return this.#subVerifier.verifySubscriptionToken(token, channel, user, { clientId, purpose });
  }

  /** scheduleFlush queues a session's write queue for a flush pass. */
  scheduleFlush(queue: Flushable, urgent: boolean): void {
    this.#flusher.schedule(queue, urgent);
  }

  /** nodeSubscribe makes the broker deliver `channel` to this node (idempotent, shared). */
  nodeSubscribe(channel: string): Promise<void> {
    let p = this.#nodeSubs.get(channel);
    if (!p) {
      p = this.#deliverer(channel).subscribe(channel);
      this.#nodeSubs.set(channel, p);
      p.catch(() => this.#nodeSubs.delete(channel));
    }
    return p;
  }

  /** nodeUnsubscribe stops delivery of `channel` when no local subscriber is left. */
  async nodeUnsubscribe(channel: string): Promise<void> {
    if (this.#ctx.hub.hasSubscribers(channel)) return;
    this.#nodeSubs.delete(channel);
    await this.#deliverer(channel).unsubscribe(channel);
  }

  /** #deliverer is what delivers `channel` to this node: the map broker for map channels, else the broker. */
  #deliverer(channel: string): Pick<Broker, 'subscribe' | 'unsubscribe'> {
    return ChannelRules.isMap(this.#ctx.rules.resolve(channel).options) ? this.#ctx.mapBroker : this.#ctx.broker;
  }

  /** start refreshes the sessions' presence entries every client.presence_update_interval. */
  start(): void {
    this.#presenceTimer = setInterval(
      () => void this.#refreshPresence(),
      this.#ctx.config.client.presence_update_interval,
    );
    this.#presenceTimer.unref();
  }

  /** stop ends the presence refresh. */
  stop(): void {
    if (this.#presenceTimer) clearInterval(this.#presenceTimer);
  }

  /** close cancels a pending write pass. */
  close(): void {
    this.#flusher.close();
  }

  async #refreshPresence(): Promise<void> {
    const { hub, rules, presence, presenceTtlMs, log } = this.#ctx;
    for (const s of hub.sessions()) {
      for (const [channel, state] of s.subs) {
        refreshMapPresence(s, state);
        const rc = rules.resolve(channel);
        if (!rc.options.presence) continue;
        await presence.addPresence(channel, s.info(), presenceTtlMs).catch((err: unknown) => {
          log.warn({ err, channel }, 'presence refresh failed');
        });
      }
    }
  }
}
