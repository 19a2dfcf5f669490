/**
 * The shared poll store on Redis (engine.type redis): how the nodes of a cluster ask the
 * backend once per cycle for the union of their tracked keys, and all push its changes.
 *
 * Keys (under engine.redis.prefix):
 * - `<prefix>.sp.keys.<channel>` — sorted set of tracked keys, scored by when their
 *   registration lapses; each node re-registers its keys every cycle tick;
 * - `<prefix>.sp.cycle.<channel>` — hash `next` (no cycle before), `until` (a cycle runs until
 *   then: its lease) and `fails` (failed cycles in a row), judged by the Redis clock
 *   (`TIME`), so the nodes' clocks need not agree;
 * - `<prefix>.sp.items.<channel>` — hash of key → `version:hash:data`, plus the channel's
 *   epoch under a field no key can have (keys never hold a NUL byte). Every write refreshes
 *   its expiry; when it lapses, the epoch goes with the versions and clients start over.
 *
 * Accepted changes travel on the Redis channel `<prefix>.sp.changes` to every node, this one
 * included, which pushes them to its own trackers. A change is stored by a script that keeps
 * it only when its version is above the stored one, so two writers (a cycle and the
 * shared_poll_publish API) never move an item back.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { RawJSON } from '../../protocol/types.js';
import {
  backoffDelay,
  type ChangeHandler,
  type CycleBackoff,
  type CycleTicket,
  type ItemChange,
  type SharedPollStore,
  type StoredItem,
} from '../shared-poll-store.js';
import { evalScript, lua, type RedisClient } from './connection.js';

/** How long shared state of a channel outlives its last write (or 20 refresh intervals, if longer). */
const STATE_TTL_MS = 10 * 60 * 1000;
/** The items hash's field holding the epoch: no key has a NUL byte. */
const EPOCH_FIELD = '\u0000epoch';

const nowLua = `local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

const acquireScript = lua(`
${nowLua}
local h = redis.call('HMGET', KEYS[1], 'next', 'until', 'fails')
local fails = tonumber(h[3] or '0')
if tonumber(h[2] or '0') > now or tonumber(h[1] or '0') > now then return {0, fails} end
redis.call('HSET', KEYS[1], 'next', now + tonumber(ARGV[1]), 'until', now + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, fails}
`);

const releaseScript = lua(`
${nowLua}
local fails = tonumber(redis.call('HGET', KEYS[1], 'fails') or '0')
if ARGV[1] == '1' then
  fails = fails + 1
  redis.call('HSET', KEYS[1], 'fails', fails, 'until', 0, 'next', now + tonumber(ARGV[2]) * 2 ^ math.min(20, fails - 1))
  if now + tonumber(ARGV[3]) < tonumber(redis.call('HGET', KEYS[1], 'next')) then
    redis.call('HSET', KEYS[1], 'next', now + tonumber(ARGV[3]))
  end
else
  fails = 0
  redis.call('HSET', KEYS[1], 'fails', 0, 'until', 0)
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return fails
`);

const applyScript = lua(`
local out = {}
for i = 2, #ARGV, 4 do
  local k = ARGV[i]
  local cur = redis.call('HGET', KEYS[1], k)
  local cv = 0
  if cur then cv = tonumber(string.match(cur, '^(%d+):')) end
  if ARGV[i + 3] == '1' then
    if cur then redis.call('HDEL', KEYS[1], k); out[#out + 1] = k end
  elseif tonumber(ARGV[i + 1]) > cv then
    redis.call('HSET', KEYS[1], k, ARGV[i + 2]); out[#out + 1] = k
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return out
`);

const epochScript = lua(`
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('HGET', KEYS[1], ARGV[1])
`);

function parseStored(value: string): StoredItem | undefined {
  const a = value.indexOf(':');
  const b = value.indexOf(':', a + 1);
  if (a < 1 || b < 0) return undefined;
  return { version: Number(value.slice(0, a)), hash: value.slice(a + 1, b), data: value.slice(b + 1) as RawJSON };
}

/** parseChanges reads a change message from another node (external input: anything odd is dropped). */
export function parseChanges(message: string): { channel: string; changes: ItemChange[] } | undefined {
  let v: unknown;
  try {
    v = JSON.parse(message);
  } catch {
    return undefined;
  }
  const m = v as { c?: unknown; i?: unknown };
  if (typeof m.c !== 'string' || !Array.isArray(m.i)) return undefined;
  const changes: ItemChange[] = [];
  for (const e of m.i as unknown[]) {
    if (!Array.isArray(e) || typeof e[0] !== 'string' || typeof e[1] !== 'number' || typeof e[2] !== 'string') {
      return undefined;
    }
    const removed = e[3] === null;
    if (!removed && typeof e[3] !== 'string') return undefined;
    changes.push({ key: e[0], version: e[1], hash: e[2], data: (removed ? '' : e[3]) as RawJSON, removed });
  }
  return { channel: m.c, changes };
}

/** RedisSharedPollStoreOptions: the connections and names the store uses. */
export interface RedisSharedPollStoreOptions {
  /** Commands and scripts. */
  client: RedisClient;
  /** Subscribed to the changes channel only. */
  subscriber: RedisClient;
  /** engine.redis.prefix */
  prefix: string;
  log: Logger;
  /** Connects both clients (at start). */
  connect: () => Promise<void>;
}

/** RedisSharedPollStore shares shared poll state between the nodes through Redis. */
export class RedisSharedPollStore implements SharedPollStore {
  readonly #o: RedisSharedPollStoreOptions;
  readonly #changes: string;
  #handler: ChangeHandler = () => undefined;

  constructor(o: RedisSharedPollStoreOptions) {
    this.#o = o;
    this.#changes = `${o.prefix}.sp.changes`;
  }

  #key(kind: 'keys' | 'cycle' | 'items', channel: string): string {
    return `${this.#o.prefix}.sp.${kind}.${channel}`;
  }

  async start(handler: ChangeHandler): Promise<void> {
    this.#handler = handler;
    await this.#o.connect();
    this.#o.subscriber.on('message', (ch: string, message: string) => {
      if (ch !== this.#changes) return;
      const parsed = parseChanges(message);
      if (parsed === undefined) {
        this.#o.log.warn({ bytes: message.length }, 'shared poll change message dropped: malformed');
        return;
      }
      this.#handler(parsed.channel, parsed.changes);
    });
    await this.#o.subscriber.subscribe(this.#changes);
  }

  async close(): Promise<void> {
    this.#o.subscriber.disconnect();
    this.#o.client.disconnect();
    return Promise.resolve();
  }

  async epoch(channel: string): Promise<string> {
    const e = await evalScript(
      this.#o.client,
      epochScript,
      [this.#key('items', channel)],
      [EPOCH_FIELD, randomUUID().slice(0, 8), STATE_TTL_MS],
    );
    return String(e);
  }

  async register(channel: string, keys: readonly string[], ttlMs: number): Promise<void> {
    if (keys.length === 0) return;
    const key = this.#key('keys', channel);
    const until = Date.now() + ttlMs;
    const pipe = this.#o.client.pipeline();
    for (let i = 0; i < keys.length; i += 1000) {
      const args: (string | number)[] = [];
      for (const k of keys.slice(i, i + 1000)) args.push(until, k);
      pipe.zadd(key, ...args);
    }
    pipe.pexpire(key, Math.max(ttlMs * 2, 60_000));
    await pipe.exec();
  }

  async trackedKeys(channel: string): Promise<string[]> {
    const key = this.#key('keys', channel);
    const now = Date.now();
    const r = await this.#o.client.pipeline().zremrangebyscore(key, '-inf', now).zrange(key, 0, -1).exec();
    const last = r?.[1];
    if (last === undefined || last[0] !== null) throw last?.[0] ?? new Error('shared poll: no answer');
    return last[1] as string[];
  }

  async acquire(channel: string, gapMs: number, leaseMs: number): Promise<CycleTicket> {
    const ttl = Math.max(STATE_TTL_MS, gapMs * 20);
    const r = (await evalScript(
      this.#o.client,
      acquireScript,
      [this.#key('cycle', channel)],
      [gapMs, leaseMs, ttl],
    )) as [number, number];
    return { acquired: r[0] === 1, failures: Number(r[1]) };
  }

  async release(channel: string, failed: boolean, backoff: CycleBackoff): Promise<number> {
    const ttl = Math.max(STATE_TTL_MS, backoffDelay(1, backoff) * 20);
    const fails = await evalScript(
      this.#o.client,
      releaseScript,
      [this.#key('cycle', channel)],
      [failed ? '1' : '0', backoff.baseMs, backoff.maxMs, ttl],
    );
    return Number(fails);
  }

  async items(channel: string, keys: readonly string[]): Promise<Map<string, StoredItem>> {
    const out = new Map<string, StoredItem>();
    if (keys.length === 0) return out;
    const values = await this.#o.client.hmget(this.#key('items', channel), ...keys);
    keys.forEach((k, i) => {
      const v = values[i];
      const item = typeof v === 'string' ? parseStored(v) : undefined;
      if (item !== undefined) out.set(k, item);
    });
    return out;
  }

  async apply(channel: string, changes: readonly ItemChange[]): Promise<ItemChange[]> {
    if (changes.length === 0) return [];
    const args: (string | number)[] = [STATE_TTL_MS];
    for (const c of changes) args.push(c.key, c.version, `${c.version}:${c.hash}:${c.data}`, c.removed ? '1' : '0');
    const kept = new Set(
      (await evalScript(this.#o.client, applyScript, [this.#key('items', channel)], args)) as string[],
    );
    const accepted = changes.filter((c) => kept.has(c.key));
    if (accepted.length === 0) return accepted;
    const entries = accepted.map((c) => [c.key, c.version, c.hash, c.removed ? null : c.data]);
    await this.#o.client.publish(this.#changes, JSON.stringify({ c: channel, i: entries }));
    return accepted;
  }
}
