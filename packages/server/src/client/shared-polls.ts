/**
 * Shared poll subscriptions on one node: who tracks which key of which channel, the last
 * value of each tracked item, and each active channel's cycle timer. The shared state (the
 * union of keys across nodes, who runs a cycle, versions, delivery of changes) is the
 * {@link SharedPollStore}'s; this class pushes the changes it delivers to the connections that
 * track the key here, and only to those, each once per version.
 *
 * A channel is active on this node while a connection is subscribed to it; its timer ticks
 * every refresh_interval (see shared-poll-cycle.ts). With nothing tracked and no subscriber
 * for channel_shutdown_delay, it is dropped.
 *
 * @module
 */
import type { ItemChange, SharedPollStore } from '../engine/shared-poll-store.js';
import type { Codec } from '../protocol/codec.js';
import type { Publication, Push, RawJSON } from '../protocol/types.js';
import { Semaphore, runTick } from './shared-poll-cycle.js';
import type { CycleHost, PollChannel, PollTracker, SharedPollsContext } from './shared-poll-types.js';
import type { SharedPollMetrics } from './shared-poll-metrics.js';

/** SharedPolls holds the shared poll channels of one node. */
export class SharedPolls implements CycleHost {
  readonly ctx: SharedPollsContext;
  readonly store: SharedPollStore;
  readonly metrics: SharedPollMetrics;
  /** Refresh calls in flight on this node (shared_poll.concurrency_limit). */
  readonly calls: Semaphore;
  readonly #channels = new Map<string, PollChannel>();
  #pairs = 0;
  #stopped = false;
  #starting: Promise<void> | undefined;

  constructor(ctx: SharedPollsContext, store: SharedPollStore, metrics: SharedPollMetrics) {
    this.ctx = ctx;
    this.store = store;
    this.metrics = metrics;
    this.calls = new Semaphore(ctx.config.shared_poll.concurrency_limit);
  }

  /** start begins receiving the changes the store delivers (once; later calls wait for the first). */
  start(): Promise<void> {
    this.#starting ??= this.store.start((channel, changes) => this.deliver(channel, changes));
    return this.#starting;
  }

  /** stop ends every channel's timer (drain); close releases the store. */
  stop(): void {
    this.#stopped = true;
    for (const c of this.#channels.values()) this.#stopTimers(c);
  }

  async close(): Promise<void> {
    this.stop();
    await this.store.close();
  }

  /** tracked is how many (connection, key) pairs this node holds. */
  get trackedPairs(): number {
    return this.#pairs;
  }

  /** channel returns the channel's state on this node, made (with its timer) on first use. */
  channel(name: string): PollChannel {
    let c = this.#channels.get(name);
    if (c !== undefined) {
      c.lastUsed = Date.now();
      return c;
    }
    const ns = this.ctx.rules.resolve(name).options;
    const target = this.ctx.proxies.sharedPollRefresh(ns);
    // The config rules refused a shared_poll namespace without a usable proxy.
    if (target === undefined) throw new Error(`shared poll: no refresh proxy for ${name}`);
    c = {
      name,
      opts: ns.shared_poll,
      target,
      versioned: ns.shared_poll.mode === 'versioned',
      byKey: new Map(),
      bySession: new Map(),
      cache: new Map(),
      cold: new Set(),
      coldTimer: undefined,
      timer: undefined,
      running: false,
      stale: false,
      lastUsed: Date.now(),
    };
    this.#channels.set(name, c);
    this.#schedule(c);
    return c;
  }

  /** subscribe registers a subscriber of the channel (no key yet). */
  subscribe(t: PollTracker, name: string): void {
    const c = this.channel(name);
    if (!c.bySession.has(t)) c.bySession.set(t, new Map());
  }

  /** release forgets every key a connection tracks in the channel (unsubscribe, disconnect). */
  release(t: PollTracker, name: string): void {
    const c = this.#channels.get(name);
    const keys = c?.bySession.get(t);
    if (c === undefined || keys === undefined) return;
    for (const key of [...keys.keys()]) this.#untrackOne(c, t, key);
    c.bySession.delete(t);
    c.lastUsed = Date.now();
  }

  /** isSubscribed tells whether the connection holds a shared poll subscription to the channel. */
  isSubscribed(t: PollTracker, name: string): boolean {
    return this.#channels.get(name)?.bySession.has(t) === true;
  }

  /** holds tells whether the connection tracks `key` in the channel. */
  holds(t: PollTracker, name: string, key: string): boolean {
    return this.#channels.get(name)?.bySession.get(t)?.has(key) === true;
  }

  /** keyCount is how many keys the connection tracks in the channel. */
  keyCount(t: PollTracker, name: string): number {
    return this.#channels.get(name)?.bySession.get(t)?.size ?? 0;
  }

  /**
   * track records the connection's keys (with the versions it holds) and returns the
   * publications of the items this node knows newer values of, for the track reply;
   * undefined when the connection is not subscribed (any more). Keys nobody holds a value of
   * are fetched from the backend at once (cold keys) when no other connection on the node
   * tracks them yet (as Centrifugo): a key the backend has no value for (a board's next post)
   * would otherwise cost a backend call per burst of tracks; once tracked, the cycle asks for it.
   */
  async track(
    t: PollTracker,
    name: string,
    items: ReadonlyArray<{ key: string; version: number; expireAt: number }>,
  ): Promise<Publication[] | undefined> {
    const c = this.channel(name);
    const missing = items.filter((i) => !c.cache.has(i.key)).map((i) => i.key);
    if (missing.length > 0) {
      for (const [key, item] of await this.store.items(name, missing)) {
        if (!c.cache.has(key)) c.cache.set(key, item);
      }
    }
    const keys = c.bySession.get(t);
    if (keys === undefined) return undefined;
    const out: Publication[] = [];
    for (const i of items) {
      let tr = keys.get(i.key);
      let firstOnNode = false;
      if (tr === undefined) {
        tr = { version: i.version, expireAt: i.expireAt };
        keys.set(i.key, tr);
        let trackers = c.byKey.get(i.key);
        if (trackers === undefined) {
          trackers = new Map();
          c.byKey.set(i.key, trackers);
          this.metrics.trackedKeys.inc();
          firstOnNode = true;
        }
        trackers.set(t, tr);
        this.#pairs++;
        this.metrics.trackedPairs.inc();
      } else {
        tr.version = Math.max(tr.version, i.version);
        tr.expireAt = i.expireAt;
      }
      const cached = c.cache.get(i.key);
      if (cached === undefined) {
        if (firstOnNode) c.cold.add(i.key);
      } else if (cached.version > i.version) {
        out.push(itemPublication(i.key, cached));
        tr.version = cached.version;
      }
    }
    c.lastUsed = Date.now();
    if (c.cold.size > 0) this.#scheduleCold(c);
    return out;
  }

  /**
   * publish stores an item's new value pushed by the backend (the shared_poll_publish API)
   * through the store, which keeps it only above the stored version and delivers it to every
   * node, each pushing it to its own trackers of the key. False when an equal or newer version
   * was already stored (nothing is sent).
   */
  async publish(name: string, key: string, version: number, data: RawJSON): Promise<boolean> {
    const accepted = await this.store.apply(name, [{ key, version, hash: '', data, removed: false }]);
    this.metrics.itemsChanged.inc(accepted.length);
    return accepted.length > 0;
  }

  /** untrack forgets keys of one connection (unknown keys are ignored). */
  untrack(t: PollTracker, name: string, keys: readonly string[]): void {
    const c = this.#channels.get(name);
    if (c === undefined) return;
    for (const key of keys) this.#untrackOne(c, t, key);
    c.lastUsed = Date.now();
  }

  #untrackOne(c: PollChannel, t: PollTracker, key: string): void {
    const keys = c.bySession.get(t);
    if (keys === undefined || !keys.delete(key)) return;
    const trackers = c.byKey.get(key);
    trackers?.delete(t);
    this.#pairs--;
    this.metrics.trackedPairs.dec();
    if (trackers !== undefined && trackers.size === 0) {
      c.byKey.delete(key);
      c.cache.delete(key);
      c.cold.delete(key);
      this.metrics.trackedKeys.dec();
    }
  }

  /** sweepExpired drops keys whose signature expired more than track_expired_extra_delay ago. */
  sweepExpired(c: PollChannel, now: number): void {
    const limit = now - c.opts.track_expired_extra_delay;
    for (const [t, keys] of c.bySession) {
      for (const [key, tr] of keys) if (tr.expireAt > 0 && tr.expireAt < limit) this.#untrackOne(c, t, key);
    }
  }

  /**
   * deliver pushes accepted changes to the connections tracking their keys here: a new value
   * to each that holds an older version, a removal to all (which stops tracking the key).
   */
  deliver(name: string, changes: readonly ItemChange[]): void {
    const c = this.#channels.get(name);
    if (c === undefined) return;
    for (const ch of changes) {
      c.cold.delete(ch.key);
      const trackers = c.byKey.get(ch.key);
      if (ch.removed) c.cache.delete(ch.key);
      else if (trackers !== undefined && (c.cache.get(ch.key)?.version ?? 0) < ch.version) {
        c.cache.set(ch.key, { version: ch.version, hash: ch.hash, data: ch.data });
      }
      if (trackers === undefined) continue;
      const pub: Publication = ch.removed
        ? { offset: 0, data: '' as Publication['data'], key: ch.key, removed: true }
        : itemPublication(ch.key, ch);
      const push: Push = { type: 'pub', channel: name, pub };
      const frames = new Map<Codec, Buffer>();
      for (const [t, tr] of [...trackers]) {
        if (!ch.removed && tr.version >= ch.version) continue;
        let frame = frames.get(t.codec);
        if (frame === undefined) {
          frame = t.codec.push(push);
          frames.set(t.codec, frame);
        }
        t.enqueue(frame);
        this.metrics.deliveries.inc();
        if (ch.removed) this.#untrackOne(c, t, ch.key);
        else tr.version = ch.version;
      }
    }
  }

  /** setStale records whether the channel's last cycle failed (the metric counts stale channels). */
  setStale(c: PollChannel, stale: boolean): void {
    if (c.stale === stale) return;
    c.stale = stale;
    this.metrics.staleChannels.inc(stale ? 1 : -1);
  }

  #schedule(c: PollChannel): void {
    if (this.#stopped) return;
    c.timer = setTimeout(() => {
      c.timer = undefined;
      if (this.#maybeDrop(c)) return;
      void runTick(this, c).finally(() => this.#schedule(c));
    }, c.opts.refresh_interval);
    c.timer.unref();
  }

  #scheduleCold(c: PollChannel): void {
    if (c.coldTimer !== undefined || this.#stopped) return;
    // A short wait gathers the keys of a burst of tracks into one backend call.
    c.coldTimer = setTimeout(() => {
      c.coldTimer = undefined;
      const keys = [...c.cold].filter((k) => c.byKey.has(k));
      c.cold.clear();
      if (keys.length > 0) void runTick(this, c, keys);
    }, 20);
    c.coldTimer.unref();
  }

  /** #maybeDrop drops a channel nobody uses here any more; true when dropped. */
  #maybeDrop(c: PollChannel): boolean {
    if (c.bySession.size > 0 || c.byKey.size > 0) return false;
    if (Date.now() - c.lastUsed < c.opts.channel_shutdown_delay) return false;
    this.#stopTimers(c);
    this.setStale(c, false);
    this.#channels.delete(c.name);
    return true;
  }

  #stopTimers(c: PollChannel): void {
    if (c.timer !== undefined) clearTimeout(c.timer);
    if (c.coldTimer !== undefined) clearTimeout(c.coldTimer);
    c.timer = undefined;
    c.coldTimer = undefined;
  }
}

/** itemPublication is the publication of an item's value for its trackers. */
export function itemPublication(key: string, item: { version: number; data: Publication['data'] }): Publication {
  return { offset: 0, data: item.data, key, version: item.version };
}
