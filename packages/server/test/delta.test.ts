/**
 * Delta compression (Fossil) end to end with the real `centrifuge` SDK, in its JSON and
 * Protobuf builds: a board-like channel of ~2 KB JSON state with small edits is reconstructed
 * exactly by every subscriber (compared with what was published) while the SDK's delta stats
 * show the bytes saved — for a subscriber from the start, one that joins midway, one that
 * recovers after a forced disconnect, one that subscribes while publications race, and across
 * two nodes on Redis. Plus the refusals (107) and the engines carrying the previous publication.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { Centrifuge, DeltaStats, Subscription } from 'centrifuge';
import { makeDelta } from '../src/client/delta.js';
import { loadConfig } from '../src/config/load.js';
import { MemoryBroker } from '../src/engine/broker-memory.js';
import type { BrokerEventHandler } from '../src/engine/broker.js';
import { RedisBroker } from '../src/engine/redis/broker-redis.js';
import { decodeEvent, MalformedMessageError } from '../src/engine/redis/codec.js';
import type { Publication, RawJSON } from '../src/protocol/types.js';
import { describeRedis, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';
import {
  nextEvent,
  newCentrifuge,
  rawClient,
  sleep,
  startTestServer,
  waitUntil,
  type TestServer,
} from './helpers/server.js';

type Format = 'json' | 'protobuf';

/** The board namespace: history with recovery, and Fossil deltas allowed. */
const boardNamespace = {
  name: 'board',
  history_size: 100,
  history_ttl: '300s',
  force_recovery: true,
  allow_subscribe_for_client: true,
  allowed_delta_types: ['fossil' as const],
};

/**
 * Board is a team board of ~2 KB JSON (non-ASCII text included) that changes a little with
 * each edit: one cell's votes, owner or text.
 */
class Board {
  readonly cells = Array.from({ length: 16 }, (_, i) => ({
    id: `cell-${i}`,
    owner: `player-${(i * 7) % 13}`,
    text: `Raid at dawn, bring potions — бой ${i} ⚔️`,
    votes: i,
    tags: ['raid', 'guild', i % 2 ? 'east' : 'west'],
  }));
  step = 0;

  /** edit changes one cell and returns the whole state. */
  edit(): { step: number; cells: Board['cells'] } {
    this.step++;
    const cell = this.cells[(this.step * 5) % this.cells.length] as Board['cells'][number];
    if (this.step % 3 === 0) cell.owner = `player-${this.step % 17}`;
    else if (this.step % 3 === 1) cell.votes += this.step;
    else cell.text = `Edit ${this.step}: meet at the gate — ворота ${this.step}`;
    return structuredClone({ step: this.step, cells: this.cells });
  }
}

/** Received is what a subscription decoded: each publication's data (parsed) and offset. */
interface Received {
  sub: Subscription;
  data: unknown[];
  offsets: number[];
  errors: unknown[];
}

/** dataOf parses a publication's data as the SDK hands it over: an object (JSON) or bytes (Protobuf). */
function dataOf(data: unknown): unknown {
  return data instanceof Uint8Array ? JSON.parse(Buffer.from(data).toString('utf8')) : data;
}

/** subscribeBoard subscribes with delta "fossil" and records what arrives; resolves once subscribed. */
async function subscribeBoard(c: Centrifuge, channel: string): Promise<Received> {
  const sub = c.newSubscription(channel, { delta: 'fossil' });
  const r: Received = { sub, data: [], offsets: [], errors: [] };
  sub.on('publication', (ctx) => {
    r.data.push(dataOf(ctx.data));
    r.offsets.push(ctx.offset ?? 0);
  });
  sub.on('error', (ctx) => r.errors.push(ctx.error));
  const subscribed = nextEvent(sub, 'subscribed');
  sub.subscribe();
  await subscribed;
  return r;
}

/** connect makes a client of `format` as `user` and waits until it is connected. */
async function connect(srv: TestServer, t: TestContext, user: string, format: Format): Promise<Centrifuge> {
  const c = newCentrifuge(srv.url, { token: await srv.token(user) }, format);
  t.after(() => c.disconnect());
  const ready = nextEvent(c, 'connected');
  c.connect();
  await ready;
  return c;
}

/** assertSaved checks that the SDK counted `full` full payloads, the rest deltas, and bytes saved. */
function assertSaved(stats: DeltaStats, total: number, full: number): void {
  assert.equal(stats.numPublications, total, JSON.stringify(stats));
  assert.equal(stats.numFullPayloads, full, JSON.stringify(stats));
  assert.equal(stats.numDeltaPayloads, total - full, JSON.stringify(stats));
  // Small edits of ~2 KB: the deltas are a small fraction of the state.
  assert.ok(stats.bytesReceived * 3 < stats.bytesDecoded, JSON.stringify(stats));
}

describe('delta compression', () => {
  let srv: TestServer;

  before(async () => {
    srv = await startTestServer({
      channel: {
        namespaces: [
          boardNamespace,
          // History, but subscribers are not positioned: nothing checks they got offset N − 1.
          { ...boardNamespace, name: 'loose', force_recovery: false },
          { ...boardNamespace, name: 'tagged', allow_tags_filter: true },
        ],
      },
    });
  });
  after(() => srv.close());

  it('the board state is about 2 KB', () => {
    const size = Buffer.byteLength(JSON.stringify(new Board().edit()));
    assert.ok(size > 1800 && size < 2600, `board is ${size} bytes`);
  });

  for (const format of ['json', 'protobuf'] as const) {
    it(`${format}: every publication is reconstructed exactly; the first is full, the rest deltas`, async (t) => {
      const ch = `board:exact-${format}`;
      const c = await connect(srv, t, 'alice', format);
      const r = await subscribeBoard(c, ch);
      const board = new Board();
      const published: unknown[] = [];
      for (let i = 0; i < 30; i++) {
        const state = board.edit();
        published.push(state);
        await srv.node.publish(ch, state);
      }
      await waitUntil(() => r.data.length === 30, 3000, '30 publications');
      assert.deepEqual(r.data, published);
      assertSaved(r.sub.deltaStats(), 30, 1);
    });

    it(`${format}: a subscriber joining midway gets the state in full, then deltas`, async (t) => {
      const ch = `board:midway-${format}`;
      const first = await subscribeBoard(await connect(srv, t, 'alice', format), ch);
      const board = new Board();
      const published: unknown[] = [];
      for (let i = 0; i < 10; i++) {
        published.push(board.edit());
        await srv.node.publish(ch, published.at(-1));
      }
      const late = await subscribeBoard(await connect(srv, t, 'bob', format), ch);
      for (let i = 0; i < 10; i++) {
        published.push(board.edit());
        await srv.node.publish(ch, published.at(-1));
      }
      await waitUntil(() => first.data.length === 20 && late.data.length === 10, 3000, 'all publications');
      assert.deepEqual(first.data, published);
      assert.deepEqual(late.data, published.slice(10));
      assertSaved(first.sub.deltaStats(), 20, 1);
      assertSaved(late.sub.deltaStats(), 10, 1);
    });

    it(`${format}: after a forced disconnect, the recovered publications and the next live ones are exact`, async (t) => {
      const ch = `board:recover-${format}`;
      const user = `carol-${format}`;
      const c = await connect(srv, t, user, format);
      const r = await subscribeBoard(c, ch);
      const board = new Board();
      const published: unknown[] = [];
      for (let i = 0; i < 5; i++) {
        published.push(board.edit());
        await srv.node.publish(ch, published.at(-1));
      }
      await waitUntil(() => r.data.length === 5, 3000, 'first 5');

      // Publish 8 while the client is away, from the 'connecting' handler the SDK emits as
      // its transport closes (before any reconnect attempt).
      const resubscribed = nextEvent(r.sub, 'subscribed');
      c.once('connecting', () => {
        for (let i = 0; i < 8; i++) {
          published.push(board.edit());
          void srv.node.publish(ch, published.at(-1));
        }
      });
      await srv.api('disconnect', { user, disconnect: { code: 3011, reason: 'force reconnect' } });
      const ctx = await resubscribed;
      assert.equal(ctx.recovered, true);
      for (let i = 0; i < 5; i++) {
        published.push(board.edit());
        await srv.node.publish(ch, published.at(-1));
      }
      await waitUntil(() => r.data.length === 18, 3000, 'all 18');
      assert.deepEqual(r.data, published);
      assert.deepEqual(
        r.offsets,
        Array.from({ length: 18 }, (_, i) => i + 1),
      );
      // Full: the first of the subscription, and the first recovered one.
      assertSaved(r.sub.deltaStats(), 18, 2);
    });

    it(`${format}: publications racing with the subscribe arrive exactly, each once`, async (t) => {
      const ch = `board:race-${format}`;
      const c = await connect(srv, t, 'dave', format);
      const board = new Board();
      const byOffset = new Map<number, unknown>();
      const publishing = (async () => {
        for (let i = 0; i < 60; i++) {
          const state = board.edit();
          const pos = await srv.node.publish(ch, state);
          byOffset.set(pos.offset, state);
          await sleep(1);
        }
      })();
      const r = await subscribeBoard(c, ch);
      await publishing;
      await waitUntil(() => r.offsets.at(-1) === 60, 3000, 'the last publication');
      const first = r.offsets[0] as number;
      assert.deepEqual(
        r.offsets,
        Array.from({ length: 61 - first }, (_, i) => first + i),
      );
      assert.deepEqual(
        r.data,
        r.offsets.map((o) => byOffset.get(o)),
      );
      assert.equal(r.sub.deltaStats().numFullPayloads, 1);
    });
  }

  it('data that does not shrink as a delta is sent in full', async (t) => {
    const ch = 'board:unlike';
    const r = await subscribeBoard(await connect(srv, t, 'erin', 'json'), ch);
    const published = [{ a: 'x'.repeat(50) }, { b: 'completely different' }, { c: [1, 2, 3] }];
    for (const p of published) await srv.node.publish(ch, p);
    await waitUntil(() => r.data.length === 3, 3000, '3 publications');
    assert.deepEqual(r.data, published);
    assert.equal(r.sub.deltaStats().numFullPayloads, 3);
  });

  for (const format of ['json', 'protobuf'] as const) {
    it(`${format}: an edit inside a multi-byte character (é → è) is sent in full, not as a broken delta`, async (t) => {
      // The Fossil delta of this edit copies the first byte of the character and inserts the
      // second alone: not valid UTF-8, which a JSON string cannot carry.
      const pad = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(4);
      const published = [{ t: `${pad}é${pad}` }, { t: `${pad}è${pad}` }, { t: `${pad}è${pad}!` }];
      const [a, b] = published.map((p) => Buffer.from(JSON.stringify(p)));
      assert.equal(makeDelta(JSON.stringify(published[0]) as RawJSON, b as Buffer), undefined);
      assert.ok(a && b && a.length === b.length);
      const ch = `board:utf8-${format}`;
      const r = await subscribeBoard(await connect(srv, t, 'ivan', format), ch);
      for (const p of published) await srv.node.publish(ch, p);
      await waitUntil(() => r.data.length === 3, 3000, '3 publications');
      assert.deepEqual(r.data, published);
      // Full: the first, and the one whose delta was not UTF-8; the last is a delta again.
      assert.equal(r.sub.deltaStats().numFullPayloads, 2);
      assert.equal(r.sub.deltaStats().numDeltaPayloads, 1);
    });
  }

  it('publication variants: each client rebuilds its own payload; a delta only against the base it holds', async (t) => {
    const ch = 'board:variants';
    const client = async (user: string, version: string) => {
      const c = newCentrifuge(srv.url, { token: await srv.token(user), name: 'android', version });
      t.after(() => c.disconnect());
      const ready = nextEvent(c, 'connected');
      c.connect();
      await ready;
      return subscribeBoard(c, ch);
    };
    const fresh = await client('new', '6.0');
    const old = await client('old', '5.1');
    const board = new Board();
    const [s1, s2, s3, s4] = [board.edit(), board.edit(), board.edit(), board.edit()];
    const v2 = { ...s2, note: 'update the game to see the new board' };
    for (const [data, variants] of [[s1], [s2, [{ when: { version_below: '5.2' }, data: v2 }]], [s3], [s4]]) {
      // `delta: true`, as Centrifugo's API takes it, is accepted and changes nothing.
      const res = await srv.api('publish', { channel: ch, data, delta: true, ...(variants ? { variants } : {}) });
      assert.equal(res.body.error, undefined, JSON.stringify(res.body));
    }
    await waitUntil(() => fresh.data.length === 4 && old.data.length === 4, 3000, '4 publications each');
    assert.deepEqual(fresh.data, [s1, s2, s3, s4]);
    assert.deepEqual(old.data, [s1, v2, s3, s4]);
    assert.equal(fresh.sub.deltaStats().numDeltaPayloads, 3);
    // The old client held v2, not s2: s3 came in full, s4 as a delta again.
    assert.ok(old.sub.deltaStats().numFullPayloads >= 2, JSON.stringify(old.sub.deltaStats()));
    assert.ok(old.sub.deltaStats().numDeltaPayloads >= 1, JSON.stringify(old.sub.deltaStats()));
  });

  it('a subscription that is not positioned gets every publication in full', async (t) => {
    const ch = 'loose:board';
    const r = await subscribeBoard(await connect(srv, t, 'hank', 'json'), ch);
    const board = new Board();
    const published = Array.from({ length: 5 }, () => board.edit());
    for (const p of published) await srv.node.publish(ch, p);
    await waitUntil(() => r.data.length === 5, 3000, '5 publications');
    assert.deepEqual(r.data, published);
    assert.equal(r.sub.deltaStats().numFullPayloads, 5);
  });

  it('the subscribe reply says delta: true; a publication carries delta: true only as a delta', async () => {
    const raw = await rawClient(srv.url);
    try {
      await raw.connect(await srv.token('frank'));
      const sub = await raw.call('subscribe', { channel: 'board:wire', delta: 'fossil' });
      assert.equal((sub.subscribe as { delta?: boolean }).delta, true);
      const board = new Board();
      const states = [board.edit(), board.edit()];
      for (const s of states) await srv.node.publish('board:wire', s);
      const pubs = [];
      for (let i = 0; i < 2; i++) pubs.push(await raw.waitFor((m) => m.push?.pub?.offset === i + 1));
      const [full, delta] = pubs.map((m) => m.push?.pub as { data: unknown; delta?: boolean });
      // JSON: in delta mode data travels as a string, the full JSON text first.
      assert.equal(full?.delta, undefined);
      assert.deepEqual(JSON.parse(full?.data as string), states[0]);
      assert.equal(delta?.delta, true);
      assert.equal(typeof delta?.data, 'string');
      assert.ok((delta?.data as string).length < JSON.stringify(states[1]).length / 4);
    } finally {
      raw.close();
    }
  });

  it('a subscription with a tags filter is made without delta compression, as in Centrifugo', async () => {
    const raw = await rawClient(srv.url);
    try {
      await raw.connect(await srv.token('jill'));
      const tf = { key: 'team', cmp: 'eq', val: 'red' };
      const filtered = await raw.call('subscribe', { channel: 'tagged:b', delta: 'fossil', tf });
      assert.equal(filtered.error, undefined);
      assert.equal((filtered.subscribe as { delta?: boolean }).delta, undefined);
      const plain = await raw.call('subscribe', { channel: 'tagged:c', delta: 'fossil' });
      assert.equal((plain.subscribe as { delta?: boolean }).delta, true);
      await srv.api('publish', { channel: 'tagged:b', data: { a: 1 }, tags: { team: 'red' } });
      const pub = await raw.waitFor((m) => m.push?.channel === 'tagged:b');
      assert.deepEqual(pub.push?.pub?.data, { a: 1 }); // plain JSON, not the delta mode's string
    } finally {
      raw.close();
    }
  });

  it('gives full payloads where the namespace does not allow deltas, and refuses an unknown type with 107', async (t) => {
    const raw = await rawClient(srv.url);
    try {
      await raw.connect(await srv.token('gina'));
      // As Centrifugo: subscribed, without delta (the reply has no delta: true).
      const notAllowed = await raw.call('subscribe', { channel: 'chat:room', delta: 'fossil' });
      assert.equal(notAllowed.error, undefined);
      assert.equal((notAllowed.subscribe as { delta?: boolean }).delta, undefined);
      await raw.call('unsubscribe', { channel: 'chat:room' });
      const unknown = await raw.call('subscribe', { channel: 'board:x', delta: 'xdelta' });
      assert.equal(unknown.error?.code, 107);
      assert.match(unknown.error?.message ?? '', /unknown delta type "xdelta"/);
      const long = await raw.call('subscribe', { channel: 'board:x', delta: 'z'.repeat(5000) });
      assert.equal(long.error?.code, 107);
      assert.ok((long.error?.message.length ?? 0) < 80, long.error?.message);
      // Nothing was half-made: the same channels subscribe fine without the option.
      assert.equal((await raw.call('subscribe', { channel: 'chat:room' })).error, undefined);
      assert.equal((await raw.call('subscribe', { channel: 'board:x' })).error, undefined);
    } finally {
      raw.close();
    }
    // The SDK, asking for deltas where they are not allowed, subscribes and decodes full payloads.
    const c = await connect(srv, t, 'gina', 'protobuf');
    const sub = c.newSubscription('chat:sdk', { delta: 'fossil' });
    const got = new Promise((resolve) => sub.on('publication', (ctx) => resolve(dataOf(ctx.data))));
    const subscribed = nextEvent(sub, 'subscribed');
    sub.subscribe();
    await subscribed;
    await srv.api('publish', { channel: 'chat:sdk', data: { full: true } });
    assert.deepEqual(await got, { full: true });
  });
});

describe('delta compression: config', () => {
  it('allowed_delta_types takes only fossil, and says which key is wrong', () => {
    const base = { http_api: { key: 'k' }, client: { token: { hmac_secret_key: 's' } } };
    const ns = (types: string[]) => ({
      ...base,
      channel: { namespaces: [{ name: 'ab', allowed_delta_types: types }] },
    });
    assert.deepEqual(loadConfig({ object: ns(['fossil']), env: {} }).channel.namespaces[0]?.allowed_delta_types, [
      'fossil',
    ]);
    assert.throws(
      () => loadConfig({ object: ns(['xdelta']), env: {} }),
      /channel\.namespaces\[0\]\.allowed_delta_types/,
    );
  });
});

describe('delta compression: the Redis message carrying the previous publication', () => {
  it('decodes it, and refuses one whose previous data is not a JSON string', () => {
    const ev = decodeEvent('d\n7\nep\n\n"{\\"a\\":\\n1}"\n{"b":2}');
    assert.deepEqual(ev, {
      kind: 'publication',
      pub: { offset: 7, data: '{"b":2}' },
      epoch: 'ep',
      prev: { offset: 6, data: '{"a":\n1}' },
    });
    assert.throws(() => decodeEvent('d\n7\nep\n\n{"a":1}\n{"b":2}'), MalformedMessageError);
    assert.throws(() => decodeEvent('d\n7\nep\n\n'), MalformedMessageError);
  });
});

/** recorder records the `prev` each publication was delivered with. */
function recorder(): { handler: BrokerEventHandler; got: Array<[Publication, Publication | undefined]> } {
  const got: Array<[Publication, Publication | undefined]> = [];
  const handler: BrokerEventHandler = {
    onPublication: (_ch, pub, _epoch, prev) => got.push([pub, prev]),
    onJoin: () => {},
    onLeave: () => {},
    onControl: () => {},
  };
  return { handler, got };
}

// Data with a newline and non-ASCII text: the previous publication must come back byte for byte.
const tricky = ['{"a":\n"ворота ⚔️"}', '{"b":"\\n\\"x\\"/y"}', '{"c":3}'] as RawJSON[];
const historyOpts = { historySize: 2, historyTtlMs: 60_000, historyMetaTtlMs: 60_000 };

describe('delta compression: the memory engine carries the previous publication', () => {
  it('with delta, each publication comes with the one before it; without, alone', async () => {
    const broker = new MemoryBroker({ sweepIntervalMs: 0 });
    const { handler, got } = recorder();
    await broker.start(handler);
    await broker.subscribe('c');
    for (const data of tricky) await broker.publish('c', data, { ...historyOpts, delta: true });
    await broker.publish('c', '{"d":4}' as RawJSON, historyOpts);
    assert.deepEqual(
      got.map(([pub, prev]) => [pub.offset, prev?.offset, prev?.data]),
      [
        [1, undefined, undefined],
        [2, 1, tricky[0]],
        [3, 2, tricky[1]],
        [4, undefined, undefined],
      ],
    );
    await broker.close();
  });
});

await describeRedis('delta compression on Redis', () => {
  it('the Redis engine carries the previous publication byte for byte', async (t) => {
    const prefix = uniquePrefix();
    const broker = new RedisBroker({ addresses: [redisUrl], prefix });
    t.after(async () => {
      await broker.close();
      await removeKeys(prefix);
    });
    const { handler, got } = recorder();
    await broker.start(handler);
    await broker.subscribe('c');
    for (const data of tricky) await broker.publish('c', data, { ...historyOpts, delta: true });
    await broker.publish('c', '{"d":4}' as RawJSON, historyOpts);
    await waitUntil(() => got.length === 4, 3000, '4 publications');
    assert.deepEqual(
      got.map(([pub, prev]) => [pub.offset, pub.data, prev?.offset, prev?.data]),
      [
        [1, tricky[0], undefined, undefined],
        [2, tricky[1], 1, tricky[0]],
        [3, tricky[2], 2, tricky[1]],
        [4, '{"d":4}', undefined, undefined],
      ],
    );
  });

  it('two nodes: a node that never saw the previous publication still sends exact deltas', async (t) => {
    const prefix = uniquePrefix();
    const engine = { type: 'redis' as const, redis: { address: [redisUrl], prefix } };
    const config = (name: string) => ({ engine, node: { name }, channel: { namespaces: [boardNamespace] } });
    const a = await startTestServer(config('a'));
    const b = await startTestServer(config('b'));
    t.after(async () => {
      await Promise.all([a.close(), b.close()]);
      await removeKeys(prefix);
    });
    const ch = 'board:two-nodes';
    const onA = await subscribeBoard(await connect(a, t, 'alice', 'protobuf'), ch);
    const user = 'bob-on-b';
    const bc = await connect(b, t, user, 'json');
    const onB = await subscribeBoard(bc, ch);
    const board = new Board();
    const published: unknown[] = [];
    const publish = async () => {
      published.push(board.edit());
      const res = await a.api('publish', { channel: ch, data: published.at(-1) });
      assert.equal(res.body.error, undefined, JSON.stringify(res.body));
    };
    for (let i = 0; i < 5; i++) await publish();
    await waitUntil(() => onB.data.length === 5, 3000, 'first 5 on b');

    // Bob leaves node b (its only subscriber: b stops receiving the channel) while 5 are
    // published, and recovers them from history on his return; b then delivers the next ones
    // as deltas against a publication only Redis handed it.
    const resubscribed = nextEvent(onB.sub, 'subscribed');
    let away: Promise<void> = Promise.resolve();
    bc.once('connecting', () => {
      away = (async () => {
        for (let i = 0; i < 5; i++) await publish();
      })();
    });
    await b.api('disconnect', { user, disconnect: { code: 3011, reason: 'force reconnect' } });
    assert.equal((await resubscribed).recovered, true);
    await away;
    for (let i = 0; i < 5; i++) await publish();
    await waitUntil(() => onA.data.length === 15 && onB.data.length === 15, 5000, 'all 15 on both nodes');
    assert.deepEqual(onA.data, published);
    assert.deepEqual(onB.data, published);
    assertSaved(onA.sub.deltaStats(), 15, 1);
    assertSaved(onB.sub.deltaStats(), 15, 2);
  });
});
