/**
 * The Redis presence manager: who is in a channel, shared by every node on one Redis. It
 * matches the memory presence manager's behaviour (both run
 * `test/conformance/presence.case.ts`).
 *
 * @module
 */
import type { ClientInfo } from '../../protocol/types.js';
import type { PresenceManager, PresenceStats } from '../presence.js';
import { decodeClientInfo, MalformedMessageError } from './codec.js';
import { closeClient, connectClient, createClient, evalScript, watchClient, withDeadline } from './connection.js';
import type { LuaScript, RedisClient } from './connection.js';
import { toEngineError } from './errors.js';
import { resolveRedisOptions } from '../../config/redis-options.js';
import type { RedisEngineOptions, ResolvedRedisOptions } from '../../config/redis-options.js';
import {
  presenceAddScript,
  presenceGetScript,
  presenceKeys,
  presenceRemoveScript,
  presenceStatsScript,
} from './scripts.js';

/** RedisPresenceOptions configures a {@link RedisPresenceManager}. */
export interface RedisPresenceOptions extends RedisEngineOptions {
  /** Called when the connection becomes ready (`true`) or is lost (`false`), on changes only. */
  onStateChange?: (up: boolean) => void;
  /**
   * Receives what cannot be reported to a caller: a malformed presence entry (skipped) and the
   * first connection error of each outage. Defaults to `console.error`.
   */
  onError?: (err: unknown) => void;
}

/**
 * RedisPresenceManager implements {@link PresenceManager} on Redis.
 *
 * Contract, beyond the PresenceManager interface (and the memory manager's semantics): entry
 * expiry uses the Redis server's clock, so all nodes agree on it; expired entries are removed
 * by the scripts themselves (on every add, remove and read), and a channel's keys expire with
 * its longest-lived entry. `numUsers` counts distinct users among live entries, from a
 * per-channel count kept by the same scripts. Call `start` to connect (and learn at once that
 * Redis is unreachable; a manager whose start failed cannot be reused); calls made before it
 * connect in the background and fail fast until it is ready. While Redis is unreachable, calls
 * reject within about `commandTimeoutMs` with an EngineUnavailableError, never an
 * EngineOutcomeUnknownError: every presence call is safe to repeat.
 */
export class RedisPresenceManager implements PresenceManager {
  private readonly o: ResolvedRedisOptions;
  private readonly client: RedisClient;
  private readonly onError: (err: unknown) => void;
  private up = false;

  constructor(options: RedisPresenceOptions = {}) {
    this.o = resolveRedisOptions(options);
    this.client = createClient(this.o, 'command');
    this.onError = options.onError ?? ((err) => console.error('bulwark: redis presence', err));
    const onStateChange = options.onStateChange;
    const set = (up: boolean): void => {
      if (up === this.up) return;
      this.up = up;
      try {
        onStateChange?.(up);
      } catch (err) {
        this.onError(err);
      }
    };
    watchClient(this.client, {
      onUp: () => set(true),
      onDown: () => set(false),
      onError: (err) => this.onError(toEngineError(err, this.o.description)),
    });
  }

  /** isReady tells whether the connection to Redis is up. */
  isReady(): boolean {
    return this.up;
  }

  /**
   * start connects to Redis; rejects with an EngineUnavailableError if it is not reachable in
   * time. It does nothing when a call made before it already started connecting.
   */
  async start(): Promise<void> {
    if (this.client.status === 'wait') await connectClient(this.client, this.o);
  }

  /** addPresence adds or refreshes a client's entry in the channel for `ttlMs`. */
  async addPresence(channel: string, info: ClientInfo, ttlMs: number): Promise<void> {
    await this.run(presenceAddScript, channel, [info.client, info.user, JSON.stringify(info), Math.ceil(ttlMs)]);
  }

  /**
   * removePresence removes a client's entry at once. `userId` is not needed: the user whose
   * count drops is read from the stored entry.
   */
  async removePresence(channel: string, clientId: string, _userId: string): Promise<void> {
    await this.run(presenceRemoveScript, channel, [clientId]);
  }

  /** presence returns the live entries of the channel, keyed by client id. */
  async presence(channel: string): Promise<Record<string, ClientInfo>> {
    const reply = await this.run(presenceGetScript, channel, []);
    if (!Array.isArray(reply)) throw new MalformedMessageError('presence reply', typeof reply);
    const out: Record<string, ClientInfo> = {};
    for (let i = 0; i + 1 < reply.length; i += 2) {
      const client: unknown = reply[i];
      const text: unknown = reply[i + 1];
      try {
        if (typeof client !== 'string' || typeof text !== 'string') {
          throw new MalformedMessageError('presence entry', 'not a string');
        }
        out[client] = decodeClientInfo(text);
      } catch (err) {
        this.onError(err); // one bad entry must not hide the channel's other entries
      }
    }
    return out;
  }

  /** presenceStats counts the channel's live connections and distinct users. */
  async presenceStats(channel: string): Promise<PresenceStats> {
    const reply = await this.run(presenceStatsScript, channel, []);
    if (!Array.isArray(reply) || typeof reply[0] !== 'number' || typeof reply[1] !== 'number') {
      throw new MalformedMessageError('presence stats reply', JSON.stringify(reply));
    }
    return { numClients: reply[0], numUsers: reply[1] };
  }

  /** close closes the connection; idempotent. */
  async close(): Promise<void> {
    await closeClient(this.client, this.o);
  }

  private async run(script: LuaScript, channel: string, args: (string | number)[]): Promise<unknown> {
    const call = evalScript(this.client, script, presenceKeys(this.o.prefix, channel), args);
    try {
      return await (this.o.mode === 'cluster' ? withDeadline(call, this.o.commandTimeoutMs) : call);
    } catch (err) {
      throw toEngineError(err, this.o.description);
    }
  }
}
