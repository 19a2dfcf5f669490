/**
 * The map subscription scenario across two real `bulwark start` processes on one shared engine,
 * with real `centrifuge` SDK clients, run by map-processes.test.ts for each engine with a map
 * broker shared by processes (Redis, PostgreSQL): a change made through one process's API
 * reaches map subscribers on the other; players on two processes racing for the same lobby
 * slot (`client_key_mode: if_new`) get exactly one winner and one 113, slot after slot; and a
 * subscriber forced to reconnect to the other process catches up on the changes made meanwhile
 * (`recovered: true`, the mirror equal to `map_read_state`).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it, type TestContext } from 'node:test';
import type { Centrifuge, MapSubscription, MapUpdateContext } from 'centrifuge';
import { signConnectionToken } from '../../src/auth/token-signer.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { ErrorCode } from '../../src/protocol/codes.js';
import { callApi, startBulwark, writeConfigFile, type BulwarkProcess } from './process.js';
import { connected, nextEvent, waitUntil } from './server.js';

/** Mirror is what a map subscriber holds: its `sync` snapshot with every `update` applied. */
class Mirror {
  readonly map = new Map<string, unknown>();
  syncs = 0;
  updates = 0;

  constructor(sub: MapSubscription) {
    sub.on('sync', (ctx) => {
      this.syncs++;
      this.map.clear();
      for (const e of ctx.entries) this.map.set(e.key, e.data);
    });
    sub.on('update', (ctx: MapUpdateContext) => {
      this.updates++;
      if (ctx.removed) this.map.delete(ctx.key);
      else this.map.set(ctx.key, ctx.data);
    });
  }

  toObject(): Record<string, unknown> {
    return Object.fromEntries([...this.map.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
  }
}

/**
 * mapProcessesScenario registers the scenario as one test. `engine(t)` returns the `engine`
 * config section of a fresh deployment (a key or table prefix of its own), cleaned up after `t`.
 */
export function mapProcessesScenario(engine: (t: TestContext) => ConfigInput['engine']): void {
  const secret = randomBytes(24).toString('hex');
  const apiKey = randomBytes(24).toString('hex');

  /** twoProcesses starts two processes on a fresh deployment of the engine, stopped after the test. */
  async function twoProcesses(t: TestContext): Promise<[BulwarkProcess, BulwarkProcess]> {
    const config: ConfigInput = {
      http_server: { address: '127.0.0.1' },
      log: { level: 'warn' },
      client: { token: { hmac_secret_key: secret } },
      http_api: { key: apiKey },
      engine: engine(t),
      drain: { window: '0s' },
      channel: {
        namespaces: [
          {
            name: 'lobby',
            subscription_type: 'map',
            allow_subscribe_for_client: true,
            map: {
              mode: 'durable',
              allow_publish_for_subscriber: true,
              client_key_mode: 'if_new',
              max_keys: 100,
              min_page_size: 1,
              default_page_size: 3,
            },
          },
        ],
      },
    };
    const cfg = writeConfigFile(config);
    t.after(() => cfg.remove());
    return Promise.all([startBulwark(cfg.path, {}, t), startBulwark(cfg.path, {}, t)]);
  }

  async function client(t: TestContext, proc: BulwarkProcess, user: string): Promise<Centrifuge> {
    const c = await connected(proc.url, { token: await signConnectionToken({ secret, user }) });
    t.after(() => c.disconnect());
    return c;
  }

  async function subscribed(c: Centrifuge, channel: string): Promise<{ sub: MapSubscription; mirror: Mirror }> {
    const sub = c.newMapSubscription(channel);
    const mirror = new Mirror(sub);
    const synced = nextEvent(sub, 'sync', 5000);
    sub.subscribe();
    await synced;
    return { sub, mirror };
  }

  async function api(proc: BulwarkProcess, method: string, body: unknown): Promise<Record<string, unknown>> {
    const res = await callApi(proc.httpUrl, apiKey, method, body);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body?.error, undefined, JSON.stringify(res.body));
    return res.body.result as Record<string, unknown>;
  }

  async function readState(proc: BulwarkProcess, channel: string): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    let cursor = '';
    do {
      const r = await api(proc, 'map_read_state', { channel, cursor, limit: 2 });
      for (const p of r.publications as Array<{ key: string; data: unknown }>) out[p.key] = p.data;
      cursor = (r.cursor as string | undefined) ?? '';
    } while (cursor !== '');
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  it('changes through one process reach subscribers on the other; slot races have one winner; recovery across processes', async (t) => {
    const [a, b] = await twoProcesses(t);
    const ch = 'lobby:arena';
    for (let i = 0; i < 5; i++) await api(a, 'map_publish', { channel: ch, key: `seed${i}`, data: { i } });

    // Subscribers on both processes; changes made through A's API reach B's subscriber.
    const onA = await subscribed(await client(t, a, 'watcher-a'), ch);
    const onB = await subscribed(await client(t, b, 'watcher-b'), ch);
    assert.equal(onB.mirror.map.size, 5);
    await api(a, 'map_publish', { channel: ch, key: 'seed1', data: 'edited on A' });
    await api(a, 'map_remove', { channel: ch, key: 'seed2' });
    await api(b, 'map_publish', { channel: ch, key: 'new', data: 'made on B' });
    for (const m of [onA.mirror, onB.mirror]) await waitUntil(() => m.updates >= 3, 3000, 'three updates');
    const afterWrites = await readState(b, ch);
    assert.deepEqual(onA.mirror.toObject(), afterWrites);
    assert.deepEqual(onB.mirror.toObject(), afterWrites);

    // Two players, one per process, race for each of 20 slots: exactly one wins, the other gets 113.
    const alice = await subscribed(await client(t, a, 'alice'), ch);
    const bob = await subscribed(await client(t, b, 'bob'), ch);
    for (let slot = 0; slot < 20; slot++) {
      const results = await Promise.allSettled([
        alice.sub.publish(`slot${slot}`, { player: 'alice' }),
        bob.sub.publish(`slot${slot}`, { player: 'bob' }),
      ]);
      const lost = results.filter((r) => r.status === 'rejected');
      assert.equal(lost.length, 1, `slot ${slot}: one winner`);
      assert.equal((lost[0] as PromiseRejectedResult).reason.code, ErrorCode.Conflict);
    }
    const slots = await readState(a, ch);
    assert.equal(Object.keys(slots).filter((k) => k.startsWith('slot')).length, 20);

    // B's watcher is forced to reconnect through A's API (a cluster command); changes made
    // meanwhile through A; it comes back to B recovered.
    const resubscribed = nextEvent(onB.sub, 'subscribed', 8000, (ctx) => ctx.wasRecovering);
    const away = nextEvent(onB.sub, 'subscribing', 3000);
    await api(a, 'disconnect', { user: 'watcher-b', disconnect: { code: 3011, reason: 'force reconnect' } });
    await away;
    await api(a, 'map_publish', { channel: ch, key: 'seed0', data: 'changed while away' });
    await api(a, 'map_remove', { channel: ch, key: 'seed3' });
    await api(a, 'map_publish', { channel: ch, key: 'late', data: 'added while away' });
    const ctx = await resubscribed;
    assert.equal(ctx.recovered, true);
    await waitUntil(() => onB.mirror.map.get('late') === 'added while away', 3000, 'caught up');
    assert.equal(onB.mirror.syncs, 1, 'recovered by updates, not a second snapshot');
    assert.deepEqual(onB.mirror.toObject(), await readState(b, ch));
  });
}
