/**
 * Publication tags filters: the filter language on its own (Centrifugo's operators, its
 * validation rules, client.tags_filter limits), then end to end with the real `centrifuge` SDK
 * in both formats on the memory and the Redis engine: the client's `tf` (match, no match, no
 * false gaps for positioned subscribers, filtered recovery, refused filters), and the
 * server-enforced `server_tags_filter` from a subscription token and from the subscribe proxy,
 * which the client's own filter cannot widen.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { PerformanceObserver } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { Centrifuge, PublicationContext, Subscription, SubscriptionOptions } from 'centrifuge';
import { FilterError, bothFilters, compileFilter, matches, type FilterLimits } from '../src/protocol/tags-filter.js';
import { describeRedis, redisUrl, uniquePrefix } from './helpers/redis.js';
import {
  nextEvent,
  newCentrifuge,
  rawClient,
  sleep,
  startTestServer,
  waitUntil,
  type TestServer,
} from './helpers/server.js';

const limits: FilterLimits = { maxDepth: 8, maxNodes: 64, maxValues: 128, maxValueLength: 256 };

// The publication of Centrifugo's documentation: every example filter there matches it.
const doc = { ticker: 'AAPL', source: 'NASDAQ', price: '150.25', category: 'tech', volume: '1000' };

describe('tags filter language', () => {
  const ok = (f: unknown, tags: Record<string, string> | undefined = doc) => matches(compileFilter(f, limits), tags);

  it("matches every example of Centrifugo's documentation, and fails their negations", () => {
    const examples = [
      { key: 'ticker', cmp: 'eq', val: 'AAPL' },
      { key: 'source', cmp: 'neq', val: 'TEST' },
      { key: 'category', cmp: 'in', vals: ['tech', 'finance'] },
      { key: 'ticker', cmp: 'nin', vals: ['MSFT', 'GOOGL'] },
      { key: 'price', cmp: 'ex' },
      { key: 'internal_id', cmp: 'nex' },
      { key: 'ticker', cmp: 'sw', val: 'AA' },
      { key: 'source', cmp: 'ew', val: 'DAQ' },
      { key: 'category', cmp: 'ct', val: 'ec' },
      { key: 'price', cmp: 'gt', val: '100' },
      { key: 'volume', cmp: 'gte', val: '1000' },
      { key: 'price', cmp: 'lt', val: '200' },
      { key: 'volume', cmp: 'lte', val: '1000' },
      {
        op: 'and',
        nodes: [
          { key: 'ticker', cmp: 'eq', val: 'AAPL' },
          { key: 'category', cmp: 'eq', val: 'tech' },
        ],
      },
      {
        op: 'or',
        nodes: [
          { key: 'ticker', cmp: 'eq', val: 'MSFT' },
          { key: 'category', cmp: 'eq', val: 'tech' },
        ],
      },
      { op: 'not', nodes: [{ key: 'source', cmp: 'eq', val: 'NYSE' }] },
    ];
    for (const f of examples) {
      assert.equal(ok(f), true, JSON.stringify(f));
      assert.equal(ok({ op: 'not', nodes: [f] }), false, `not ${JSON.stringify(f)}`);
    }
  });

  it('compares numbers as numbers, and a missing or non-numeric tag as false', () => {
    assert.equal(ok({ key: 'price', cmp: 'gt', val: '99.5' }, { price: '100' }), true);
    assert.equal(ok({ key: 'price', cmp: 'gt', val: '9' }, { price: '10' }), true, 'not compared as text');
    assert.equal(ok({ key: 'price', cmp: 'lt', val: '-1' }, { price: '-2.5' }), true);
    assert.equal(ok({ key: 'price', cmp: 'gt', val: '1' }, { price: 'abc' }), false);
    assert.equal(ok({ key: 'price', cmp: 'lt', val: '1' }, { price: '' }), false);
    assert.equal(ok({ key: 'price', cmp: 'lt', val: '1' }, {}), false);
    assert.equal(ok({ key: 'price', cmp: 'gt', val: 'x' }, { price: '5' }), false, 'a non-numeric operand');
  });

  it('compares decimals exactly, digit by digit (no exponent, no float rounding)', () => {
    const cmp = (tag: string, op: string, val: string) => ok({ key: 'x', cmp: op, val }, { x: tag });
    assert.equal(cmp('0.10', 'gte', '0.1') && cmp('0.10', 'lte', '0.1'), true, '0.10 = 0.1');
    assert.equal(cmp('-0', 'gte', '0') && cmp('-0.000', 'lte', '0'), true, '-0 = 0');
    assert.equal(cmp('12345678901234567890.5', 'gt', '12345678901234567890.4'), true, 'beyond float precision');
    assert.equal(cmp('9007199254740993', 'gt', '9007199254740992'), true, 'beyond 2^53');
    assert.equal(cmp('+5', 'gt', '4.99'), true);
    assert.equal(cmp('.5', 'lt', '0.6') && cmp('5.', 'gte', '5'), true);
    assert.equal(cmp('-10', 'lt', '-9.5') && cmp('-9.5', 'gt', '-10'), true);
    assert.equal(cmp('007', 'lt', '10'), true, 'leading zeros');
    for (const bad of ['1e3', ' 5', '5 ', '--5', '.', '-', '', '1.2.3', '0x10', 'Infinity', 'NaN']) {
      assert.equal(cmp(bad, 'gt', '-1000'), false, bad);
      assert.equal(cmp(bad, 'lte', '1000'), false, bad);
    }
  });

  it('evaluates without allocating: no garbage collection in millions of evaluations', async () => {
    const f = compileFilter(
      {
        op: 'and',
        nodes: [
          { key: 'region', cmp: 'in', vals: ['eu', 'us'] },
          { key: 'tier', cmp: 'gte', val: '2.5' },
          { op: 'not', nodes: [{ key: 'kind', cmp: 'sw', val: 'x' }] },
          {
            op: 'or',
            nodes: [
              { key: 'price', cmp: 'lt', val: '1000.25' },
              { key: 'gone', cmp: 'nex' },
            ],
          },
        ],
      },
      limits,
    );
    // Parsed JSON, as publications' tags are: flat strings.
    const samples = [
      JSON.parse('{"region":"eu","tier":"3.75","kind":"move","price":"150.25"}') as Record<string, string>,
      JSON.parse('{"region":"us","tier":"1","kind":"xmove","price":"99999.5"}') as Record<string, string>,
      undefined,
    ];
    /** gcsDuring counts the garbage collections while `fn` runs (entries arrive asynchronously). */
    const gcsDuring = async (fn: () => void): Promise<number> => {
      let gcs = 0;
      const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
      obs.observe({ entryTypes: ['gc'] });
      await sleep(20);
      gcs = 0;
      fn();
      await sleep(20);
      obs.disconnect();
      return gcs;
    };
    let hits = 0;
    const evaluate = (n: number) => {
      for (let i = 0; i < n; i++) if (matches(f, samples[i % 3])) hits++;
    };
    evaluate(200_000); // optimised before measuring
    // The method sees garbage: the same loop allocating one small array per evaluation.
    let keep: unknown;
    const control = await gcsDuring(() => {
      for (let i = 0; i < 2_000_000; i++) keep = [i, matches(f, samples[i % 3])];
    });
    assert.ok(control > 0, 'the control allocates and collects');
    assert.equal(await gcsDuring(() => evaluate(2_000_000)), 0, 'evaluation allocated');
    assert.ok(hits > 0 && keep !== undefined);
  });

  it('reads an absent tag as Centrifugo does: neq and nin pass, in passes only for ""', () => {
    assert.equal(ok({ key: 'k', cmp: 'neq', val: 'a' }, undefined), true);
    assert.equal(ok({ key: 'k', cmp: 'nin', vals: ['a'] }, {}), true);
    assert.equal(ok({ key: 'k', cmp: 'in', vals: ['a'] }, {}), false);
    assert.equal(ok({ key: 'k', cmp: 'in', vals: ['', 'a'] }, {}), true);
    assert.equal(ok({ key: 'k', cmp: 'eq', val: 'a' }, undefined), false);
    assert.equal(ok({ key: 'constructor', cmp: 'ex' }, {}), false, 'no inherited properties');
  });

  it('puts the server filter first and lets the client filter only narrow it', () => {
    const server = compileFilter({ key: 'region', cmp: 'eq', val: 'eu' }, limits);
    const client = compileFilter({ key: 'region', cmp: 'in', vals: ['eu', 'us'] }, limits);
    const both = bothFilters(server, client);
    assert.ok(both);
    assert.equal(matches(both, { region: 'eu' }), true);
    assert.equal(matches(both, { region: 'us' }), false);
    assert.equal(bothFilters(undefined, client), client);
    assert.equal(bothFilters(server, undefined), server);
  });

  it('refuses malformed filters, naming the node', () => {
    const bad: Array<[unknown, RegExp]> = [
      ['x', /tf: expected an object/],
      [{ cmp: 'eq' }, /needs val/],
      [{ key: 'k' }, /unknown comparison ""/],
      [{ key: 'k', cmp: 'like', val: 'a' }, /unknown comparison "like"/],
      [{ op: 'xor', nodes: [] }, /unknown operation "xor"/],
      [{ op: 'and', nodes: [] }, /at least one/],
      [
        {
          op: 'not',
          nodes: [
            { key: 'a', cmp: 'ex' },
            { key: 'b', cmp: 'ex' },
          ],
        },
        /exactly one/,
      ],
      [{ key: 'k', cmp: 'in', vals: [] }, /needs vals/],
      [{ key: 'k', cmp: 'in', val: 'a', vals: ['a'] }, /takes vals, not val/],
      [{ key: 'k', cmp: 'eq', val: 'a', vals: ['b'] }, /takes val, not vals/],
      [{ key: 'k', cmp: 'ex', val: 'a' }, /takes no val/],
      [{ cmp: 'eq', val: 'a' }, /needs a key/],
      [{ key: 'k', cmp: 'eq', val: 5 }, /tf\.val: expected a string/],
      [{ key: 'k', cmp: 'in', vals: ['a', 1] }, /tf\.vals\[1\]: expected a string/],
      [
        {
          op: 'and',
          nodes: [
            { key: 'a', cmp: 'ex' },
            { key: 'b', cmp: 'zz', val: 'v' },
          ],
        },
        /tf\.nodes\[1\]\.cmp/,
      ],
      [{ key: 'k', cmp: 'eq', val: 'v', nodes: [{}] }, /a comparison has no nodes/],
    ];
    for (const [f, msg] of bad)
      assert.throws(
        () => compileFilter(f, limits),
        (e: unknown) => e instanceof FilterError && msg.test(e.message),
        JSON.stringify(f),
      );
  });

  it('holds a filter to client.tags_filter limits: depth, nodes, values, lengths', () => {
    let deep: unknown = { key: 'k', cmp: 'ex' };
    for (let i = 0; i < 8; i++) deep = { op: 'not', nodes: [deep] };
    assert.throws(() => compileFilter(deep, limits), /nested deeper than 8/);
    assert.doesNotThrow(() => compileFilter((deep as { nodes: unknown[] }).nodes[0], limits));
    const wide = { op: 'or', nodes: Array.from({ length: 64 }, (_, i) => ({ key: `k${i}`, cmp: 'ex' })) };
    assert.throws(() => compileFilter(wide, limits), /more than 64 nodes/);
    const vals = { key: 'k', cmp: 'in', vals: Array.from({ length: 129 }, (_, i) => `v${i}`) };
    assert.throws(() => compileFilter(vals, limits), /more than 128 values/);
    assert.throws(() => compileFilter({ key: 'k'.repeat(257), cmp: 'ex' }, limits), /longer than 256/);
    assert.throws(() => compileFilter({ key: 'k', cmp: 'in', vals: ['v'.repeat(257)] }, limits), /longer than 256/);
  });
});

// ---------------------------------------------------------------- end to end

type Format = 'json' | 'protobuf';

/** payload reads a publication's data in either format (Protobuf carries the JSON's bytes). */
function payload(data: unknown): { n: number } {
  if (data instanceof Uint8Array) return JSON.parse(new TextDecoder().decode(data)) as { n: number };
  return data as { n: number };
}

/** Seen is a subscription and the `n` of each publication it got, in order. */
interface Seen {
  sub: Subscription;
  got: number[];
  resubscribes: number;
}

/** SubOptions are subscription options with a tags filter of any shape (to send bad ones too). */
type SubOptions = Omit<Partial<SubscriptionOptions>, 'tagsFilter'> & { tagsFilter?: object };

function watch(c: Centrifuge, channel: string, opts: SubOptions): Seen {
  const sub = c.newSubscription(channel, opts as Partial<SubscriptionOptions>);
  const seen: Seen = { sub, got: [], resubscribes: 0 };
  sub.on('publication', (ctx: PublicationContext) => seen.got.push(payload(ctx.data).n));
  sub.on('subscribing', () => seen.resubscribes++);
  return seen;
}

async function subscribed(seen: Seen): Promise<void> {
  const ok = nextEvent(seen.sub, 'subscribed');
  seen.sub.subscribe();
  await ok;
  seen.resubscribes = 0;
}

/** A tiny proxy backend answering each request with `answer(path, user)`. */
async function proxyBackend(answer: (path: string, user: string) => object): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const { user } = JSON.parse(body) as { user: string };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(answer(req.url ?? '', user)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const region = (r: string) => ({ key: 'region', cmp: 'eq', val: r });

function endToEnd(engine: 'memory' | 'redis'): void {
  let srv: TestServer;
  let backend: { url: string; server: Server };

  before(async () => {
    // The backend puts each user in the region named by the user id's prefix ("eu-1" → eu).
    // Subscribe: a user "bad-…" gets a filter no node can compile (the backend's mistake).
    // Connect (clients without a token): user "px", two server-side subscriptions, one filtered.
    backend = await proxyBackend((path, user) =>
      path === '/connect'
        ? { result: { user: 'px', subs: { 'guild:px-eu': { server_tags_filter: region('eu') }, 'guild:px-all': {} } } }
        : {
            result: {
              server_tags_filter: user.startsWith('bad')
                ? { key: 'region', cmp: '??' }
                : region(user.split('-')[0] ?? ''),
            },
          },
    );
    const common = { history_size: 50, history_ttl: '300s', force_recovery: true };
    srv = await startTestServer({
      ...(engine === 'redis'
        ? { engine: { type: 'redis', redis: { address: [redisUrl], prefix: uniquePrefix() } } }
        : {}),
      client: { proxy: { connect: { enabled: true, endpoint: `${backend.url}/connect` } } },
      channel: {
        proxy: { subscribe: { endpoint: `${backend.url}/subscribe` } },
        namespaces: [
          { name: 'market', ...common, allow_tags_filter: true, allow_subscribe_for_client: true },
          { name: 'plain', ...common, allow_subscribe_for_client: true },
          // Tokens or the backend decide: clients may filter further.
          { name: 'guild', ...common, allow_tags_filter: true, allow_history_for_subscriber: true },
          { name: 'shard', ...common, subscribe_proxy_enabled: true, allow_tags_filter: true },
        ],
      },
    });
  });
  after(async () => {
    await srv.close();
    backend.server.close();
  });

  async function client(t: TestContext, user: string, format: Format): Promise<Centrifuge> {
    const c = newCentrifuge(srv.url, { token: await srv.token(user) }, format);
    const ok = nextEvent(c, 'connected');
    c.connect();
    await ok;
    t.after(() => c.disconnect());
    return c;
  }

  /** publishAll publishes {n: 1..} with the regions given, in order. */
  async function publishAll(channel: string, regions: string[], from = 1): Promise<void> {
    for (let i = 0; i < regions.length; i++) {
      await srv.node.publish(channel, { n: from + i }, { tags: { region: regions[i] as string } });
    }
  }

  for (const format of ['json', 'protobuf'] as const) {
    describe(format, () => {
      it('delivers only matching publications to a filtered subscriber, all to the others, with no false gaps', async (t) => {
        const ch = `market:${format}-live`;
        const c = await client(t, 'u1', format);
        const eu = watch(c, ch, { tagsFilter: region('eu') });
        const all = watch(c, ch + '-all', {});
        const all2 = watch(await client(t, 'u2', format), ch, {});
        await subscribed(eu);
        await subscribed(all2);
        await subscribed(all);
        await publishAll(ch, ['eu', 'us', 'us', 'eu', 'asia', 'eu']);
        await waitUntil(() => all2.got.length === 6 && eu.got.length === 3, 3000, 'deliveries');
        await sleep(50);
        assert.deepEqual(eu.got, [1, 4, 6]);
        assert.deepEqual(all2.got, [1, 2, 3, 4, 5, 6]);
        assert.equal(eu.resubscribes, 0, 'skipped offsets are not a gap (no 2500)');
      });

      it('recovers only matching publications, and the position stays continuous', async (t) => {
        const ch = `market:${format}-rec`;
        const c = await client(t, 'u3', format);
        const eu = watch(c, ch, { tagsFilter: region('eu') });
        await subscribed(eu);
        await publishAll(ch, ['eu', 'us']);
        await waitUntil(() => eu.got.length === 1, 3000, 'first');
        const back = nextEvent(eu.sub, 'subscribed', 5000);
        c.once('connecting', () => void publishAll(ch, ['us', 'eu', 'eu', 'us'], 3));
        await srv.api('disconnect', { user: 'u3', disconnect: { code: 3011, reason: 'reconnect' } });
        const ctx = await back;
        assert.equal(ctx.wasRecovering, true);
        assert.equal(ctx.recovered, true);
        await waitUntil(() => eu.got.length === 3, 3000, 'recovered');
        await publishAll(ch, ['us', 'eu'], 7);
        await waitUntil(() => eu.got.length === 4, 3000, 'live after recovery');
        assert.deepEqual(eu.got, [1, 4, 5, 8]);
        assert.equal(eu.resubscribes, 1, 'only the forced reconnect');
      });

      it('refuses bad filters with 107 and leaves the connection working', async (t) => {
        const c = await client(t, 'u4', format);
        for (const [ch, tf, msg] of [
          [`plain:${format}`, region('eu'), /not allowed/],
          [`market:${format}-bad1`, { key: 'region', cmp: 'like', val: 'e' }, /unknown comparison/],
          [`market:${format}-bad2`, { op: 'not', nodes: [] }, /exactly one/],
          [
            `market:${format}-bad3`,
            { key: 'region', cmp: 'in', vals: Array.from({ length: 200 }, (_, i) => `r${i}`) },
            /more than 128/,
          ],
        ] as const) {
          const s = c.newSubscription(ch, { tagsFilter: tf } as Partial<SubscriptionOptions>);
          const failed = nextEvent(s, 'unsubscribed');
          s.subscribe();
          const e = await failed;
          assert.equal(e.code, 107, ch);
          assert.match(e.reason, msg);
          c.removeSubscription(s);
        }
        const good = watch(c, `market:${format}-good`, { tagsFilter: region('eu') });
        await subscribed(good);
        await publishAll(`market:${format}-good`, ['eu']);
        await waitUntil(() => good.got.length === 1, 3000, 'still works');
      });

      it("enforces a subscription token's server_tags_filter: the client filter narrows it and cannot widen it", async (t) => {
        const ch = `guild:${format}-tok`;
        const c = await client(t, 'g1', format);
        const claims = { server_tags_filter: region('eu') };
        const token = await srv.subToken('g1', ch, { claims });
        const widen = watch(c, ch, { token, tagsFilter: { key: 'region', cmp: 'in', vals: ['eu', 'us'] } });
        const token2 = await srv.subToken('g1', ch + 'b', { claims });
        const narrow = watch(c, ch + 'b', { token: token2, tagsFilter: { key: 'n', cmp: 'ex' } });
        const none = watch(c, ch + 'c', { token: await srv.subToken('g1', ch + 'c', { claims }) });
        await subscribed(widen);
        await subscribed(narrow);
        await subscribed(none);
        await publishAll(ch, ['eu', 'us', 'eu']);
        await publishAll(ch + 'c', ['us', 'eu', 'asia']);
        await srv.node.publish(ch + 'b', { n: 1 }, { tags: { region: 'eu' } });
        await srv.node.publish(ch + 'b', { n: 2 }, { tags: { region: 'eu', n: '2' } });
        await srv.node.publish(ch + 'b', { n: 3 }, { tags: { region: 'us', n: '3' } });
        await waitUntil(() => widen.got.length === 2 && none.got.length === 1 && narrow.got.length === 1, 3000, 'x');
        await sleep(50);
        assert.deepEqual(widen.got, [1, 3], 'the client widened nothing');
        assert.deepEqual(none.got, [2]);
        assert.deepEqual(narrow.got, [2], 'both filters apply');
        // The client's history reads of the channel are held to the server filter too.
        const h = await widen.sub.history({ limit: 10 });
        assert.deepEqual(
          h.publications.map((p) => payload(p.data).n),
          [1, 3],
        );
      });

      it("enforces server_tags_filter on the server-side subscriptions of a connection token's subs", async (t) => {
        const ch = `guild:${format}-subs`;
        const token = await srv.token('s1', {
          claims: { subs: { [ch]: { server_tags_filter: region('eu') }, [ch + '-all']: {} } },
        });
        const c = newCentrifuge(srv.url, { token }, format);
        const got: Record<string, number[]> = { [ch]: [], [ch + '-all']: [] };
        c.on('publication', (ctx) => got[ctx.channel]?.push(payload(ctx.data).n));
        const ok = nextEvent(c, 'connected');
        c.connect();
        await ok;
        t.after(() => c.disconnect());
        await publishAll(ch, ['eu', 'us', 'eu']);
        await publishAll(ch + '-all', ['eu', 'us']);
        await waitUntil(() => got[ch]?.length === 2 && got[ch + '-all']?.length === 2, 3000, 'server-side');
        await sleep(50);
        assert.deepEqual(got, { [ch]: [1, 3], [ch + '-all']: [1, 2] });
      });

      it("enforces the subscribe proxy's server_tags_filter per user", async (t) => {
        const ch = `shard:${format}-proxy`;
        const eu = watch(await client(t, 'eu-7', format), ch, {});
        const us = watch(await client(t, 'us-7', format), ch, { tagsFilter: region('eu') });
        await subscribed(eu);
        await subscribed(us);
        await publishAll(ch, ['eu', 'us', 'us', 'eu']);
        await waitUntil(() => eu.got.length === 2, 3000, 'eu');
        await sleep(100);
        assert.deepEqual(eu.got, [1, 4]);
        assert.deepEqual(us.got, [], "a client filter cannot reach outside the server's");
      });
    });
  }

  it("enforces server_tags_filter on the connect proxy's subs; a malformed one in subs skips that channel", async () => {
    const raw = await rawClient(srv.url);
    const reply = await raw.connect();
    assert.deepEqual(Object.keys(reply.connect?.subs ?? {}).sort(), ['guild:px-all', 'guild:px-eu']);
    await publishAll('guild:px-eu', ['us', 'eu']);
    const push = await raw.waitFor((m) => m.push?.pub !== undefined);
    assert.equal(push.push?.channel, 'guild:px-eu');
    assert.deepEqual(push.push?.pub?.data, { n: 2 });
    raw.close();

    const token = await srv.token('s2', {
      claims: { subs: { 'guild:s2-bad': { server_tags_filter: { op: 'not', nodes: [] } }, 'guild:s2-ok': {} } },
    });
    const raw2 = await rawClient(srv.url);
    const r = await raw2.connect(token);
    assert.deepEqual(Object.keys(r.connect?.subs ?? {}), ['guild:s2-ok'], 'never subscribed without its filter');
    raw2.close();
  });

  it('refuses a malformed server_tags_filter: 103 from a token, 100 (temporary) from the proxy', async () => {
    const raw = await rawClient(srv.url);
    await raw.connect(await srv.token('eu-9'));
    const token = await srv.subToken('eu-9', 'guild:badtok', {
      claims: { server_tags_filter: { key: 'k', cmp: '??' } },
    });
    const r1 = await raw.call('subscribe', { channel: 'guild:badtok', token });
    assert.equal(r1.error?.code, 103);
    const token2 = await srv.subToken('eu-9', 'guild:badtok2', { claims: { server_tags_filter: 'region=eu' } });
    const r2 = await raw.call('subscribe', { channel: 'guild:badtok2', token: token2 });
    assert.equal(r2.error?.code, 103);
    raw.send({ id: 99, subscribe: { channel: 'market:raw', tf: 'region=eu' } });
    assert.equal((await raw.waitClose()).code, 3501, 'a tf that is not an object is a malformed command');

    const raw2 = await rawClient(srv.url);
    await raw2.connect(await srv.token('bad-1'));
    const r4 = await raw2.call('subscribe', { channel: 'shard:bad' });
    assert.equal(r4.error?.code, 100);
    assert.equal(r4.error?.temporary, true);
    // Nothing was half-made: the channel is not subscribed, and a good subscribe still works.
    assert.equal(srv.node.hub.hasSubscribers('shard:bad'), false);
    const r5 = await raw2.call('subscribe', { channel: 'market:fine', tf: region('eu') });
    assert.equal(r5.error, undefined);
    raw2.close();
  });
}

describe('tags filters end to end (memory engine)', () => endToEnd('memory'));
await describeRedis('tags filters end to end (Redis engine)', () => endToEnd('redis'));
