/**
 * The shared poll cycle of one channel on one node, run every refresh_interval (a tick):
 *
 * 1. drop keys whose signature expired past track_expired_extra_delay;
 * 2. register this node's tracked keys in the store (they lapse after 3 intervals unless
 *    registered again);
 * 3. ask the store for the cycle's ticket: across the cluster at most one cycle per 0.9 ×
 *    refresh_interval and never two at once, later after failures (backoff doubling up to
 *    refresh_interval_max);
 * 4. with the ticket, ask the backend for the union of tracked keys, refresh_batch_size at a
 *    time, one call in flight per channel, at most shared_poll.concurrency_limit on the node,
 *    each through the protected proxy (timeout, concurrency limit, breaker, kill switch);
 * 5. compare with the stored items (versionless: content hash, versioned: the backend's
 *    versions) and store the changes, which the store delivers to every node.
 *
 * A failed call ends the cycle (the next is the retry: never a retry storm); items keep their
 * last values, the channel counts as stale, and the failure is logged once per burst.
 * Cold keys (tracked with no value known anywhere) are fetched at once, without a ticket.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import type { ItemChange, StoredItem } from '../engine/shared-poll-store.js';
import type { RawJSON } from '../protocol/types.js';
import type { RefreshedItem, RefreshItemRequest } from '../proxy/shared-poll-refresh.js';
import type { CycleHost, PollChannel } from './shared-poll-types.js';

/** Semaphore bounds how many calls run at once. */
export class Semaphore {
  #free: number;
  readonly #waiting: Array<() => void> = [];

  constructor(slots: number) {
    this.#free = slots;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#free++;
    }
  }
}

/** contentHash identifies an item's value in versionless mode. */
export function contentHash(data: string): string {
  return createHash('sha1').update(data).digest('base64url');
}

/**
 * diffItems turns the backend's answer into changes against the stored items: only keys that
 * were asked for; versionless: a new content hash makes the next version; versioned: a version
 * above the stored one with data (no data: unchanged); `removed` removes a stored item.
 */
export function diffItems(
  asked: ReadonlySet<string>,
  answer: readonly RefreshedItem[],
  stored: ReadonlyMap<string, StoredItem>,
  versioned: boolean,
): ItemChange[] {
  const out = new Map<string, ItemChange>();
  for (const item of answer) {
    if (!asked.has(item.key)) continue;
    const cur = stored.get(item.key);
    if (item.removed) {
      if (cur !== undefined)
        out.set(item.key, { key: item.key, version: cur.version, hash: '', data: '' as RawJSON, removed: true });
      continue;
    }
    if (item.data === undefined) continue;
    const data = JSON.stringify(item.data) as RawJSON;
    if (versioned) {
      if (item.version === undefined || item.version === 0 || (cur !== undefined && item.version <= cur.version))
        continue;
      out.set(item.key, { key: item.key, version: item.version, hash: '', data, removed: false });
    } else {
      const hash = contentHash(data);
      if (cur !== undefined && cur.hash === hash) continue;
      out.set(item.key, { key: item.key, version: (cur?.version ?? 0) + 1, hash, data, removed: false });
    }
  }
  return [...out.values()];
}

/** refreshBatch asks the backend for one batch and stores what changed; throws when the call fails. */
async function refreshBatch(host: CycleHost, c: PollChannel, keys: readonly string[]): Promise<void> {
  const stored = await host.store.items(c.name, keys);
  const req: RefreshItemRequest[] = c.versioned
    ? keys.map((key) => ({ key, version: stored.get(key)?.version ?? 0 }))
    : keys.map((key) => ({ key }));
  let answer;
  try {
    answer = await host.calls.run(() => host.ctx.backend.sharedPollRefresh(c.target, c.name, req));
  } catch (err) {
    host.metrics.originRequests.inc({ result: 'error' });
    throw err;
  }
  host.metrics.originRequests.inc({ result: 'ok' });
  const changes = diffItems(new Set(keys), answer.items, stored, c.versioned);
  if (changes.length === 0) return;
  const accepted = await host.store.apply(c.name, changes);
  host.metrics.itemsChanged.inc(accepted.length);
}

/** refreshKeys runs the batches of one cycle (or of cold keys); false when one failed. */
async function refreshKeys(host: CycleHost, c: PollChannel, keys: readonly string[]): Promise<boolean> {
  const size = c.opts.refresh_batch_size;
  for (let i = 0; i < keys.length; i += size) {
    try {
      await refreshBatch(host, c, keys.slice(i, i + size));
    } catch (err) {
      host.ctx.burstLog.warn(
        'shared_poll.refresh',
        { channel: c.name, target: c.target.name, err: err instanceof Error ? err.message : String(err) },
        'shared poll refresh failed: clients keep the last data; the next cycle tries again',
      );
      return false;
    }
  }
  return true;
}

/**
 * runTick runs one tick of the channel (see the module note); with `cold`, fetches only those
 * keys. Never throws: a store or backend failure is logged and counted, and the next tick
 * tries again.
 */
export async function runTick(host: CycleHost, c: PollChannel, cold?: readonly string[]): Promise<void> {
  const log = host.ctx.burstLog;
  try {
    if (cold !== undefined) {
      await refreshKeys(host, c, cold);
      return;
    }
    const now = Date.now();
    host.sweepExpired(c, now);
    const interval = c.opts.refresh_interval;
    const local = [...c.byKey.keys()];
    await host.store.register(c.name, local, interval * 3);
    if (c.running || local.length === 0) return;
    const lease = Math.max(2 * interval, 4 * c.target.timeoutMs);
    const ticket = await host.store.acquire(c.name, Math.floor(interval * 0.9), lease);
    host.setStale(c, ticket.failures > 0);
    if (!ticket.acquired) return;
    c.running = true;
    const started = performance.now();
    let ok = false;
    try {
      ok = await refreshKeys(host, c, await host.store.trackedKeys(c.name));
    } finally {
      c.running = false;
      host.metrics.cycleDuration.observe((performance.now() - started) / 1000);
      const max = c.opts.refresh_interval_max > 0 ? c.opts.refresh_interval_max : interval * 8;
      const failures = await host.store.release(c.name, !ok, { baseMs: interval * 2, maxMs: Math.max(max, interval) });
      host.setStale(c, failures > 0);
    }
  } catch (err) {
    log.warn(
      'shared_poll.store',
      { channel: c.name, err: err instanceof Error ? err.message : String(err) },
      'shared poll cycle skipped: the shared state cannot be reached',
    );
  }
}
