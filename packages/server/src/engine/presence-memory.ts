/**
 * The embedded memory presence manager: who is in a channel, inside one process. The Redis
 * engine must match its behaviour (both run `test/conformance/presence.case.ts`).
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { clearInterval, setInterval } from 'node:timers';
import type { ClientInfo } from '../protocol/types.js';
import { DeadlineQueue, type QueueEntry } from './deadline-queue.js';
import type { PresenceManager, PresenceStats } from './presence.js';

/** MemoryPresenceOptions tunes a {@link MemoryPresenceManager}; every field is optional. */
export interface MemoryPresenceOptions {
  /** Clock for expiry, in milliseconds. Defaults to a monotonic clock (`performance.now()`). */
  now?: () => number;
  /** How often expired entries are freed (ms). Defaults to 1000; 0 disables the timer (call `sweep()`). */
  sweepIntervalMs?: number;
}

interface Entry {
  readonly info: ClientInfo;
  readonly expireAt: number;
}

interface ChannelPresence {
  readonly channel: string;
  readonly entries: Map<string, Entry>;
  /**
   * This channel's entry in the expiry queue (undefined: none); its deadline is a lower bound
   * of the entries' expiry. Refreshes only push expiry later, so they leave it: when it pops,
   * the channel is pruned and queued again at its true earliest expiry. A channel that is
   * forgotten takes its entry out, so the queue never holds state nobody else does.
   */
  queued: QueueEntry<ChannelPresence> | undefined;
}

/**
 * MemoryPresenceManager implements {@link PresenceManager} in process memory.
 *
 * Contract, beyond the PresenceManager interface: an entry is visible while now ≤ its add time
 * + ttlMs; adding the same client again replaces its info and expiry; expired entries are
 * dropped lazily on read and by a periodic sweep, and an empty channel is forgotten, so memory
 * is bounded by live entries. `presenceStats` counts connections and distinct user ids (the
 * anonymous user '' counts as one user, as in Centrifugo). `info` is copied on add; the
 * returned objects are shared and must be treated as read-only. `close` stops the timer and
 * forgets everything.
 */
export class MemoryPresenceManager implements PresenceManager {
  private readonly now: () => number;
  private readonly channels = new Map<string, ChannelPresence>();
  private readonly expiry = new DeadlineQueue<ChannelPresence>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: MemoryPresenceOptions = {}) {
    this.now = options.now ?? (() => performance.now());
    const interval = options.sweepIntervalMs ?? 1000;
    if (interval > 0) {
      this.timer = setInterval(() => this.sweep(), interval);
      this.timer.unref();
    }
  }

  /** size is the number of channels with presence entries held (expired ones not yet swept included). */
  get size(): number {
    return this.channels.size;
  }

  /** queuedDeadlines is the number of entries in the expiry queue (≤ size; for tests). */
  get queuedDeadlines(): number {
    return this.expiry.size;
  }

  /** addPresence adds or refreshes a client's entry in the channel for `ttlMs`. */
  async addPresence(channel: string, info: ClientInfo, ttlMs: number): Promise<void> {
    let state = this.channels.get(channel);
    if (state === undefined) {
      state = { channel, entries: new Map(), queued: undefined };
      this.channels.set(channel, state);
    }
    const expireAt = this.now() + ttlMs;
    state.entries.set(info.client, { info: { ...info }, expireAt });
    this.schedule(state, expireAt);
  }

  /** removePresence removes a client's entry at once (`userId` is unused in memory). */
  async removePresence(channel: string, clientId: string, _userId: string): Promise<void> {
    const state = this.channels.get(channel);
    if (state === undefined) return;
    state.entries.delete(clientId);
    if (state.entries.size === 0) this.forget(state);
  }

  /** presence returns the live entries of the channel, keyed by client id. */
  async presence(channel: string): Promise<Record<string, ClientInfo>> {
    const out: Record<string, ClientInfo> = {};
    const state = this.prune(channel, this.now());
    if (state === undefined) return out;
    for (const [client, entry] of state.entries) out[client] = entry.info;
    return out;
  }

  /** presenceStats counts the channel's live connections and distinct users. */
  async presenceStats(channel: string): Promise<PresenceStats> {
    const state = this.prune(channel, this.now());
    if (state === undefined) return { numClients: 0, numUsers: 0 };
    const users = new Set<string>();
    for (const entry of state.entries.values()) users.add(entry.info.user);
    return { numClients: state.entries.size, numUsers: users.size };
  }

  /** close stops the sweep timer and forgets every entry. */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.channels.clear();
    this.expiry.clear();
  }

  /**
   * sweep drops expired entries of the channels that are due and forgets emptied channels. The
   * timer calls it; tests with an injected clock call it directly.
   */
  sweep(): void {
    const now = this.now();
    for (let due = this.expiry.popDue(now); due !== undefined; due = this.expiry.popDue(now)) {
      const state = due.item;
      state.queued = undefined;
      if (this.channels.get(state.channel) === state) this.prune(state.channel, now);
    }
  }

  /**
   * prune drops the channel's expired entries, forgets it if emptied, otherwise reschedules it
   * at its earliest expiry; returns the remaining state. O(entries of the channel).
   */
  private prune(channel: string, now: number): ChannelPresence | undefined {
    const state = this.channels.get(channel);
    if (state === undefined) return undefined;
    let earliest = Infinity;
    for (const [client, entry] of state.entries) {
      if (now > entry.expireAt) state.entries.delete(client);
      else if (entry.expireAt < earliest) earliest = entry.expireAt;
    }
    if (state.entries.size === 0) {
      this.forget(state);
      return undefined;
    }
    this.schedule(state, earliest);
    return state;
  }

  private schedule(state: ChannelPresence, deadline: number): void {
    if (state.queued === undefined) state.queued = this.expiry.push(deadline, state);
    else if (deadline < state.queued.at) this.expiry.reschedule(state.queued, deadline);
  }

  /** forget drops an emptied channel and its expiry entry: nothing of it stays reachable. */
  private forget(state: ChannelPresence): void {
    this.channels.delete(state.channel);
    if (state.queued !== undefined) this.expiry.remove(state.queued);
    state.queued = undefined;
  }
}
