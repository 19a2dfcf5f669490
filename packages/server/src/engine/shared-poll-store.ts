/**
 * The shared poll store: what the nodes of a cluster share about shared poll channels, so the
 * backend is asked once per cycle for the whole cluster (docs/SHARED_POLL.md):
 *
 * - which keys are tracked anywhere (each node registers its own; an entry lapses unless
 *   registered again, so a node that died stops costing backend calls);
 * - who runs a channel's cycle: a ticket at most once per `gapMs` and never while a cycle is
 *   under way (its lease), with a backoff after failed cycles that the whole cluster keeps;
 * - the items' last values and versions, and the delivery of every accepted change to every
 *   node (this one included), so each pushes it to its own trackers.
 *
 * {@link MemorySharedPollStore} is the single-node store (the memory engine); the Redis one is
 * redis/shared-poll-redis.ts.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { RawJSON } from '../protocol/types.js';

/** StoredItem is an item's last known value. */
export interface StoredItem {
  version: number;
  /** Content hash of `data` (versionless mode); '' in versioned mode. */
  hash: string;
  data: RawJSON;
}

/** ItemChange is a new value of an item (or its removal), with its version. */
export interface ItemChange {
  key: string;
  version: number;
  hash: string;
  /** '' for a removal. */
  data: RawJSON;
  removed: boolean;
}

/** CycleTicket says whether this node runs the cycle now, and how many cycles failed in a row. */
export interface CycleTicket {
  acquired: boolean;
  failures: number;
}

/** ChangeHandler receives accepted changes of a channel (on every node). */
export type ChangeHandler = (channel: string, changes: readonly ItemChange[]) => void;

/** Backoff of failed cycles: the next cycle waits `baseMs` × 2^(failures − 1), at most `maxMs`. */
export interface CycleBackoff {
  baseMs: number;
  maxMs: number;
}

/** SharedPollStore is the shared state of shared poll channels (see the module note). */
export interface SharedPollStore {
  /** start begins delivering changes to `handler`. */
  start(handler: ChangeHandler): Promise<void>;
  close(): Promise<void>;
  /** epoch of the channel's versions (versionless mode): made on first use, new when the state was lost. */
  epoch(channel: string): Promise<string>;
  /** register marks `keys` tracked on this node for `ttlMs`. */
  register(channel: string, keys: readonly string[], ttlMs: number): Promise<void>;
  /** trackedKeys is the union of the keys registered on every node and not lapsed. */
  trackedKeys(channel: string): Promise<string[]>;
  /** acquire asks to run the channel's cycle now: at most once per `gapMs`, not while one runs (`leaseMs`). */
  acquire(channel: string, gapMs: number, leaseMs: number): Promise<CycleTicket>;
  /** release ends the cycle; after a failure the next waits per `backoff`. Returns the failures in a row. */
  release(channel: string, failed: boolean, backoff: CycleBackoff): Promise<number>;
  /** items returns the stored values of `keys` (missing keys are absent). */
  items(channel: string, keys: readonly string[]): Promise<Map<string, StoredItem>>;
  /**
   * apply stores the changes whose version is above the stored one (and removals of stored
   * items), delivers the accepted ones to every node, and returns them.
   */
  apply(channel: string, changes: readonly ItemChange[]): Promise<ItemChange[]>;
}

/** backoffDelay is the wait after `failures` failed cycles in a row. */
export function backoffDelay(failures: number, b: CycleBackoff): number {
  return Math.min(b.maxMs, b.baseMs * 2 ** Math.min(20, Math.max(0, failures - 1)));
}

interface MemoryChannel {
  epoch: string;
  items: Map<string, StoredItem>;
  keys: Map<string, number>;
  next: number;
  until: number;
  failures: number;
}

/** MemorySharedPollStore keeps the shared state in this process (a single node). */
export class MemorySharedPollStore implements SharedPollStore {
  readonly #channels = new Map<string, MemoryChannel>();
  #handler: ChangeHandler = () => undefined;

  #channel(channel: string): MemoryChannel {
    let c = this.#channels.get(channel);
    if (c === undefined) {
      c = { epoch: randomUUID().slice(0, 8), items: new Map(), keys: new Map(), next: 0, until: 0, failures: 0 };
      this.#channels.set(channel, c);
    }
    return c;
  }

  start(handler: ChangeHandler): Promise<void> {
    this.#handler = handler;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#channels.clear();
    return Promise.resolve();
  }

  /** forget drops a channel's state (no tracker left on the single node). */
  forget(channel: string): void {
    this.#channels.delete(channel);
  }

  epoch(channel: string): Promise<string> {
    return Promise.resolve(this.#channel(channel).epoch);
  }

  register(channel: string, keys: readonly string[], ttlMs: number): Promise<void> {
    const c = this.#channel(channel);
    const until = Date.now() + ttlMs;
    for (const k of keys) c.keys.set(k, until);
    return Promise.resolve();
  }

  trackedKeys(channel: string): Promise<string[]> {
    const c = this.#channel(channel);
    const now = Date.now();
    for (const [k, until] of c.keys) if (until <= now) c.keys.delete(k);
    // Values of keys nobody tracks any more are not kept: memory follows what is tracked.
    for (const k of c.items.keys()) if (!c.keys.has(k)) c.items.delete(k);
    return Promise.resolve([...c.keys.keys()]);
  }

  acquire(channel: string, gapMs: number, leaseMs: number): Promise<CycleTicket> {
    const c = this.#channel(channel);
    const now = Date.now();
    if (c.until > now || c.next > now) return Promise.resolve({ acquired: false, failures: c.failures });
    c.next = now + gapMs;
    c.until = now + leaseMs;
    return Promise.resolve({ acquired: true, failures: c.failures });
  }

  release(channel: string, failed: boolean, backoff: CycleBackoff): Promise<number> {
    const c = this.#channel(channel);
    c.until = 0;
    if (failed) {
      c.failures++;
      c.next = Date.now() + backoffDelay(c.failures, backoff);
    } else {
      c.failures = 0;
    }
    return Promise.resolve(c.failures);
  }

  items(channel: string, keys: readonly string[]): Promise<Map<string, StoredItem>> {
    const c = this.#channel(channel);
    const out = new Map<string, StoredItem>();
    for (const k of keys) {
      const item = c.items.get(k);
      if (item !== undefined) out.set(k, item);
    }
    return Promise.resolve(out);
  }

  apply(channel: string, changes: readonly ItemChange[]): Promise<ItemChange[]> {
    const c = this.#channel(channel);
    const accepted: ItemChange[] = [];
    for (const ch of changes) {
      const cur = c.items.get(ch.key);
      if (ch.removed) {
        if (cur === undefined) continue;
        c.items.delete(ch.key);
      } else {
        if (cur !== undefined && ch.version <= cur.version) continue;
        c.items.set(ch.key, { version: ch.version, hash: ch.hash, data: ch.data });
      }
      accepted.push(ch);
    }
    if (accepted.length > 0) this.#handler(channel, accepted);
    return Promise.resolve(accepted);
  }
}
