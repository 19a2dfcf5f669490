/**
 * Engine supervision: starts the engine (broker, presence, map broker), delivering what it brings to
 * the hub and the control bus, and, while its service is
 * unreachable at start, retries with a fresh one; follows it up and down afterwards (readiness,
 * bulwark_engine_up, logs), checks subscribers' stream positions when it comes back, and
 * classifies engine errors (Redis refusing authentication, unavailable, other).
 *
 * @module
 */
import type { Logger } from 'pino';
import { ChannelRules } from '../channel-rules.js';
import type { ClientSession } from '../client/session.js';
import type { Config } from '../config/schema.js';
import type { Broker, BrokerEventHandler } from '../engine/broker.js';
import type { Engine, EngineEvents } from '../engine/engine.js';
import { engineParts, partsAt } from '../engine/engine-parts.js';
import { EngineUnavailableError } from '../engine/errors.js';
import type { MapBroker } from '../engine/map-broker.js';
import type { PresenceManager } from '../engine/presence.js';
import type { Metrics } from '../metrics.js';
import type { BurstLog } from '../protection/burst-log.js';
import type { ClientInfo, Publication, RawJSON } from '../protocol/types.js';

type Subscription = Parameters<ClientSession['checkPosition']>[0];

/** EngineSupervisorContext is what engine supervision needs from its node. */
export interface EngineSupervisorContext {
  /** engine.<type>.reconnect_max_delay: the retry period while the engine cannot start. */
  readonly config: Readonly<Config>;
  readonly log: Logger;
  readonly burstLog: Pick<BurstLog, 'error'>;
  readonly metrics: Pick<Metrics, 'engineUp' | 'deliveries'>;
  readonly rules: Pick<ChannelRules, 'resolve' | 'historyMetaTtlMs' | 'mapRetention'>;
  /** The hub: publications, joins and leaves go to it; the position check walks its subscriptions. */
  readonly hub: {
    broadcastPublication(channel: string, pub: Publication, epoch: string, prev?: Publication): number;
    broadcastJoin(channel: string, info: ClientInfo): void;
    broadcastLeave(channel: string, info: ClientInfo): void;
    channels(): Iterable<[string, number]>;
    subscriptions(channel: string): Iterable<[ClientSession, Subscription]>;
  };
  /** Control messages from the other nodes go to the control bus. */
  readonly control: { receive(data: RawJSON): void };
}

/** EngineHooks are called as the engine comes up. */
export interface EngineHooks {
  /** started is called when the engine started (at start, or on a later retry). */
  started(): void;
  /** reconnected is called when the engine's service is reachable again after it was not. */
  reconnected(): void;
}

/** EngineSupervisor holds one node's engine. */
export class EngineSupervisor {
  readonly #ctx: EngineSupervisorContext;
  readonly #make: (events: EngineEvents) => Engine;
  readonly #hooks: EngineHooks;
  /** The engine: replaced by a fresh one on each retry while it cannot start (see start). */
  #engine: Engine;
  /** True once the engine started: until then upgrades are refused and the node is not ready. */
  #started = false;
  #up = true;
  #retry: NodeJS.Timeout | undefined;
  /** Set by stop(): no more start retries. */
  #stopped = false;
  /** The last error Redis itself answered while starting (e.g. NOAUTH), for the start failure message. */
  #refusal: string | undefined;

  /** `make` makes a fresh (unstarted) engine reporting to `events`. */
  constructor(ctx: EngineSupervisorContext, make: (events: EngineEvents) => Engine, hooks: EngineHooks) {
    this.#ctx = ctx;
    this.#make = make;
    this.#hooks = hooks;
    this.#engine = this.#fresh();
  }

  /** The broker of the current engine. */
  get broker(): Broker {
    return this.#engine.broker;
  }

  /** The presence manager of the current engine. */
  get map(): MapBroker {
    return this.#engine.map;
  }

  get presence(): PresenceManager {
    return this.#engine.presence;
  }

  /** Where the engine's service is (for logs). */
  get address(): string {
    return this.#engine.address;
  }

  /** started is false until the engine could start. */
  get started(): boolean {
    return this.#started;
  }

  /** ready is true once the engine started and while its service is reachable. */
  get ready(): boolean {
    return this.#started && this.#engine.isReady();
  }

  /**
   * start starts the engine. When its service is unreachable (Redis down at start) the node
   * neither crashes (a crash loop would hammer Redis and the orchestrator) nor falls back to
   * memory (a silent split brain): it logs a loud error naming the address, stays up with
   * /ready false and upgrades refused, and tries again with a fresh engine every
   * reconnect_max_delay of the part that could not be reached (engine.redis,
   * engine.postgresql, broker.nats, broker.redis, presence_manager.*: engine-parts.ts) until
   * it starts.
   */
  async start(): Promise<void> {
    const ctx = this.#ctx;
    try {
      await this.#engine.start(this.#handler);
    } catch (err) {
      if (!(err instanceof EngineUnavailableError)) throw err;
      // The failing service may be the engine's, the fan-out's or the presence manager's.
      const parts = partsAt(engineParts(ctx.config), err.address);
      const retryMs =
        parts.length === 0 ? ctx.config.engine.redis.reconnect_max_delay : Math.min(...parts.map((p) => p.retryMs));
      const check =
        parts.length === 0
          ? `the engine's service runs at ${err.address}`
          : parts.map((p) => `${p.service} runs at ${err.address} and ${p.section}.* is right`).join(', or that ');
      ctx.metrics.engineUp.set(0);
      const why = this.#refusal ?? err.message.replace(/\.+$/, '');
      ctx.burstLog.error(
        'engine.start',
        { err: why, address: this.#engine.address, retryMs },
        `engine unavailable at start: ${why}. The node is up but NOT READY (/ready 503, connections refused) and retries every ${retryMs} ms; check that ${check}.`,
      );
      this.#refusal = undefined;
      this.#retry = setTimeout(() => {
        if (this.#stopped) return;
        this.#engine = this.#fresh();
        void this.start().catch((e: unknown) => ctx.log.error({ err: e }, 'engine start failed'));
      }, retryMs);
      this.#retry.unref();
      return;
    }
    this.#started = true;
    this.#up = true;
    ctx.metrics.engineUp.set(1);
    this.#hooks.started();
  }

  /** stop ends the start retries (at shutdown). */
  stop(): void {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
  }

  /** What the engine delivers to this node. */
  readonly #handler: BrokerEventHandler = {
    onPublication: (channel, pub, epoch, prev) => {
      const n = this.#ctx.hub.broadcastPublication(channel, pub, epoch, prev);
      if (n > 0) this.#ctx.metrics.deliveries.inc(n);
    },
    onJoin: (channel, info) => this.#ctx.hub.broadcastJoin(channel, info),
    onLeave: (channel, info) => this.#ctx.hub.broadcastLeave(channel, info),
    onControl: (data) => this.#ctx.control.receive(data),
  };

  #fresh(): Engine {
    return this.#make({ onStateChange: () => this.#stateChanged(), onError: (err) => this.#error(err) });
  }

  #stateChanged(): void {
    if (!this.#started) return;
    const ctx = this.#ctx;
    const up = this.#engine.isReady();
    if (up === this.#up) return;
    this.#up = up;
    ctx.metrics.engineUp.set(up ? 1 : 0);
    if (up) {
      ctx.log.info({ address: this.#engine.address }, 'engine reachable again: node ready');
      this.#hooks.reconnected();
      // Publications sent while the engine was unreachable never reached this node.
      void this.#checkPositions();
    } else {
      ctx.log.error(
        { address: this.#engine.address },
        'engine unreachable: node NOT READY; publishes, history and presence fail with temporary errors; connected clients stay connected',
      );
    }
  }

  /**
   * #checkPositions compares every positioned subscription with its stream's position after
   * the engine came back: a subscriber that missed publications meanwhile is told to
   * resubscribe (2500), and its SDK recovers them from history where history still holds
   * them. One history read (limit 0) per channel with such subscribers; for a map channel with
   * a change stream (durable, persistent), one map stream read (limit 0) instead.
   */
  async #checkPositions(): Promise<void> {
    const { hub, rules, log } = this.#ctx;
    for (const [channel] of [...hub.channels()]) {
      const rc = rules.resolve(channel);
      let top;
      try {
        if (ChannelRules.isMap(rc.options)) {
          const retention = rules.mapRetention(rc.options);
          if (retention.streamSize === 0) continue;
          top = await this.map.readStream(channel, { limit: 0, metaTtlMs: retention.metaTtlMs });
        } else {
          if (!ChannelRules.hasHistory(rc.options)) continue;
          top = await this.broker.history(channel, { limit: 0, metaTtlMs: rules.historyMetaTtlMs(rc.options) });
        }
      } catch (err) {
        log.warn({ err, channel }, 'position check failed');
        return;
      }
      for (const [session, state] of hub.subscriptions(channel)) session.checkPosition(state, top.offset, top.epoch);
    }
  }

  #error(err: unknown): void {
    const ctx = this.#ctx;
    const refusal = err instanceof Error && err.name === 'ReplyError' ? err.message : undefined;
    if (refusal !== undefined && !this.#started) {
      // Redis answered, and said no: most often a missing or wrong password (incident 3).
      this.#refusal = /NOAUTH|WRONGPASS|invalid password/i.test(refusal)
        ? `Redis at ${this.#engine.address} refused authentication (${refusal.replace(/\.+$/, '')}): ${passwordHint(ctx.config)}`
        : `Redis at ${this.#engine.address} answered: ${refusal}`;
      return;
    }
    if (err instanceof EngineUnavailableError) {
      ctx.burstLog.error('engine.error', { err: err.message, address: err.address }, 'engine unavailable');
      return;
    }
    ctx.log.error({ err }, 'engine error');
  }
}

/**
 * passwordHint says which password to set when a Redis refused authentication: the Redis
 * sections in use (engine.redis, broker.redis, presence_manager.redis), since the refusal does
 * not say which of them answered.
 */
function passwordHint(cfg: Readonly<Config>): string {
  const sections = engineParts(cfg)
    .filter((p) => p.service === 'Redis')
    .map((p) => p.section);
  return (sections.length > 0 ? sections : ['engine.redis'])
    .map(
      (s) => `set ${s}.password (BULWARK_${s.replace('.', '_').toUpperCase()}_PASSWORD) and ${s}.user if it uses ACLs`,
    )
    .join('; or ');
}
