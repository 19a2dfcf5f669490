/**
 * The parts of the configured engine as services: where each one is (the address its errors
 * carry), the config section that says so and its retry period while it cannot be reached at
 * start. With broker and presence_manager chosen apart from the engine (docs/ENGINES.md) a
 * failure must name the section of the service that failed, not the engine's.
 *
 * @module
 */
import type { Config } from '../config/schema.js';
import { redisOptions, resolveRedisOptions, type RedisSectionInput } from '../config/redis-options.js';
import { natsAddress } from './nats/fanout-nats.js';
import { describeDsn } from './postgres/database.js';

/** EnginePart is one service the engine uses. */
export interface EnginePart {
  /** Where it is, without credentials: what EngineUnavailableError.address holds. */
  readonly address: string;
  /** What runs there: "Redis", "PostgreSQL" or "NATS". */
  readonly service: string;
  /** Its config section, e.g. "broker.redis". */
  readonly section: string;
  /** Its reconnect_max_delay: the retry period while it cannot be reached at start (ms). */
  readonly retryMs: number;
}

/** engineParts lists the services `cfg` makes the engine use; the engine's own first. */
export function engineParts(cfg: Readonly<Config>): EnginePart[] {
  const parts: EnginePart[] = [];
  const redis = (section: string, r: RedisSectionInput): void => {
    let address: string;
    try {
      address = resolveRedisOptions(redisOptions(r)).description;
    } catch {
      address = section; // refused at config load; never reached here from a loaded config
    }
    parts.push({ address, service: 'Redis', section, retryMs: r.reconnect_max_delay });
  };
  const e = cfg.engine;
  if (e.type === 'redis') redis('engine.redis', e.redis);
  if (e.type === 'postgresql') {
    const p = e.postgresql;
    parts.push({
      address: describeDsn(p.dsn),
      service: 'PostgreSQL',
      section: 'engine.postgresql',
      retryMs: p.reconnect_max_delay,
    });
  }
  if (cfg.broker.enabled && cfg.broker.type === 'nats') {
    const n = cfg.broker.nats;
    parts.push({
      address: natsAddress(n.url),
      service: 'NATS',
      section: 'broker.nats',
      retryMs: n.reconnect_max_delay,
    });
  }
  if (cfg.broker.enabled && cfg.broker.type === 'redis') redis('broker.redis', cfg.broker.redis);
  const pm = cfg.presence_manager;
  if (pm.enabled && pm.type === 'redis') redis('presence_manager.redis', pm.redis);
  if (pm.enabled && pm.type === 'postgresql') {
    parts.push({
      address: describeDsn(pm.postgresql.dsn),
      service: 'PostgreSQL',
      section: 'presence_manager.postgresql',
      retryMs: pm.postgresql.reconnect_max_delay,
    });
  }
  return parts;
}

/**
 * partsAt returns the parts at `address` (several when sections share a service), or every
 * part when none is there (an address no part has: an injected engine).
 */
export function partsAt(parts: readonly EnginePart[], address: string): EnginePart[] {
  const at = parts.filter((p) => p.address === address);
  return at.length > 0 ? at : [...parts];
}
