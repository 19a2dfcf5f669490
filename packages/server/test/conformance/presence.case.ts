/**
 * The PresenceManager conformance suite: the behaviour every engine (memory, Redis) must
 * share. An engine's test file calls {@link runPresenceSuite} with a factory for fresh
 * managers. Channel names are unique per test; time moves with the fixture's `advance` when
 * given, else by sleeping past short real TTLs.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { PresenceManager } from '../../src/engine/presence.js';
import type { ClientInfo } from '../../src/protocol/types.js';
import { asRaw } from '../../src/protocol/types.js';
import { sleep } from './broker.case.js';

/** PresenceFixture is one fresh presence manager, with its clock and teardown. */
export interface PresenceFixture {
  presence: PresenceManager;
  /** Moves the engine's clock forward by `ms`; without it the suite sleeps for real. */
  advance?: (ms: number) => void | Promise<void>;
  /** Releases the manager (close it, drop connections, remove test keys). */
  cleanup: () => Promise<void>;
}

/**
 * runPresenceSuite registers the PresenceManager conformance tests under `describe(name)`.
 * `factory` is called once per test; `cleanup` runs after it.
 */
export function runPresenceSuite(name: string, factory: () => Promise<PresenceFixture>): void {
  describe(name, () => {
    let fx: PresenceFixture;
    let pm: PresenceManager;
    let prefix: string;

    const ch = (suffix = 'c'): string => `${prefix}${suffix}`;
    const advance = async (ms: number): Promise<void> => {
      if (fx.advance !== undefined) await fx.advance(ms);
      else await sleep(ms);
    };

    beforeEach(async () => {
      fx = await factory();
      pm = fx.presence;
      prefix = `conf-${randomBytes(4).toString('hex')}-`;
    });

    afterEach(async () => {
      await fx.cleanup();
    });

    it('reports an empty channel as empty', async () => {
      assert.deepEqual(await pm.presence(ch()), {});
      assert.deepEqual(await pm.presenceStats(ch()), { numClients: 0, numUsers: 0 });
    });

    it('lists entries keyed by client id, with their info', async () => {
      const a: ClientInfo = { user: 'u1', client: 'c1', conn_info: asRaw({ name: 'Ann' }), chan_info: asRaw([1]) };
      const b: ClientInfo = { user: 'u2', client: 'c2' };
      await pm.addPresence(ch(), a, LONG);
      await pm.addPresence(ch(), b, LONG);
      assert.deepEqual(await pm.presence(ch()), { c1: a, c2: b });
    });

    it('counts connections and distinct users', async () => {
      await pm.addPresence(ch(), { user: 'u1', client: 'c1' }, LONG);
      await pm.addPresence(ch(), { user: 'u1', client: 'c2' }, LONG);
      await pm.addPresence(ch(), { user: 'u2', client: 'c3' }, LONG);
      assert.deepEqual(await pm.presenceStats(ch()), { numClients: 3, numUsers: 2 });
      await pm.removePresence(ch(), 'c1', 'u1');
      assert.deepEqual(await pm.presenceStats(ch()), { numClients: 2, numUsers: 2 });
      await pm.removePresence(ch(), 'c2', 'u1');
      assert.deepEqual(await pm.presenceStats(ch()), { numClients: 1, numUsers: 1 });
    });

    it('replaces the entry of a client added again', async () => {
      await pm.addPresence(ch(), { user: 'u1', client: 'c1' }, LONG);
      const updated: ClientInfo = { user: 'u1', client: 'c1', chan_info: asRaw({ v: 2 }) };
      await pm.addPresence(ch(), updated, LONG);
      assert.deepEqual(await pm.presence(ch()), { c1: updated });
      assert.deepEqual(await pm.presenceStats(ch()), { numClients: 1, numUsers: 1 });
    });

    it('removes one client at once, leaving others and other channels', async () => {
      await pm.addPresence(ch('a'), { user: 'u1', client: 'c1' }, LONG);
      await pm.addPresence(ch('a'), { user: 'u2', client: 'c2' }, LONG);
      await pm.addPresence(ch('b'), { user: 'u1', client: 'c1' }, LONG);
      await pm.removePresence(ch('a'), 'c1', 'u1');
      assert.deepEqual(Object.keys(await pm.presence(ch('a'))), ['c2']);
      assert.deepEqual(Object.keys(await pm.presence(ch('b'))), ['c1']);
      await pm.removePresence(ch('a'), 'c2', 'u2');
      assert.deepEqual(await pm.presence(ch('a')), {});
      await pm.removePresence(ch('a'), 'nobody', 'u9'); // a no-op, not an error
    });

    it('expires entries after their TTL', async () => {
      await pm.addPresence(ch(), { user: 'u1', client: 'c1' }, TTL);
      await pm.addPresence(ch(), { user: 'u2', client: 'c2' }, LONG);
      assert.equal(Object.keys(await pm.presence(ch())).length, 2);
      await advance(TTL + MARGIN);
      assert.deepEqual(Object.keys(await pm.presence(ch())), ['c2']);
      assert.deepEqual(await pm.presenceStats(ch()), { numClients: 1, numUsers: 1 });
    });

    it('keeps entries that are added again before their TTL', async () => {
      await pm.addPresence(ch(), { user: 'u1', client: 'c1' }, 2 * TTL);
      await advance(TTL + MARGIN);
      await pm.addPresence(ch(), { user: 'u1', client: 'c1' }, 2 * TTL);
      await advance(TTL + MARGIN); // past the first add's TTL, within the second's
      assert.deepEqual(Object.keys(await pm.presence(ch())), ['c1']);
      await advance(2 * TTL + MARGIN);
      assert.deepEqual(await pm.presence(ch()), {});
      assert.deepEqual(await pm.presenceStats(ch()), { numClients: 0, numUsers: 0 });
    });
  });
}

/** A TTL short enough to wait for in real time, long enough for a few engine round trips. */
const TTL = 200;
/** How far past a TTL the suite moves the clock before expecting expiry. */
const MARGIN = 150;
/** A TTL no test outlives. */
const LONG = 60_000;
