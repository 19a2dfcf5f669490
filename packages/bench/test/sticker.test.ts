/**
 * Tests of the sticker scenario (incident 2 end to end): the players' builds and what they
 * declare, reading back which payload a delivery carried, the plan of posts, the ledger's exact
 * counts, the verdict and each cache mode's config; the chat client against a scripted server
 * (what it declares at connect, pushes and history it reads); and, when Redis answers, one
 * tiny run of the whole scenario on 3 real Bulwark processes.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { readFlags } from '../src/harness/flags.js';
import { Progress } from '../src/harness/progress.js';
import { redisReachable } from '../src/harness/redis-keys.js';
import type { ScenarioContext } from '../src/harness/scenario.js';
import { waitFor } from '../src/harness/util.js';
import { ChatClient, type ChatPublication } from '../src/load/chat-client.js';
import { stickerScenario } from '../src/scenarios/sticker/index.js';
import { emptyDeliveries, ReceiptLedger } from '../src/scenarios/sticker/ledger.js';
import { parseModes } from '../src/scenarios/sticker/options.js';
import { retryable } from '../src/scenarios/sticker/posting.js';
import { modeConfig } from '../src/scenarios/sticker/run.js';
import {
  fallbackAnswer,
  identityOf,
  kindOf,
  planPosts,
  publishBody,
  readPayload,
  stickerIndex,
} from '../src/scenarios/sticker/stickers.js';
import type { ModeResult, StickerOptions } from '../src/scenarios/sticker/types.js';
import { judgeSticker, originLimit } from '../src/scenarios/sticker/verdict.js';

const opts: StickerOptions = {
  nodes: 3,
  clients: 10,
  oldPercent: 50,
  stickers: 100,
  postsPerSticker: 10,
  burstConcurrency: 64,
  durationSeconds: 1,
  settleSeconds: 5,
  historySample: 2,
  serviceMs: 20,
  slack: 0.02,
  modes: ['shared', 'local', 'none'],
  redisUrl: 'redis://127.0.0.1:6379',
  shedding: false,
  connectConcurrency: 10,
};

describe('the players and their payloads', () => {
  it('spreads old builds evenly: every other player at 50 %, none at 0 %, all at 100 %', () => {
    const kinds = (p: number) => Array.from({ length: 100 }, (_, i) => kindOf(i, p));
    assert.deepEqual(kinds(50).slice(0, 4), ['new', 'old', 'new', 'old']);
    assert.equal(kinds(0).filter((k) => k === 'old').length, 0);
    assert.equal(kinds(100).filter((k) => k === 'old').length, 100);
    assert.equal(kinds(30).filter((k) => k === 'old').length, 30);
  });

  it('gives new builds the feature and version 5.3.0, old builds no feature and 5.1.0', () => {
    assert.deepEqual(identityOf(0, 'new'), {
      user: 'p0',
      name: 'bulwark-chat',
      version: '5.3.0',
      features: ['animated_stickers'],
    });
    assert.deepEqual(identityOf(1, 'old'), { user: 'p1', name: 'bulwark-chat', version: '5.1.0', features: undefined });
  });

  it('posts the sticker with a variant for clients lacking the feature, answered by the fallback RPC', () => {
    assert.deepEqual(JSON.parse(publishBody(7, 'post-3')), {
      channel: 'chat:lobby',
      data: { type: 'sticker', id: 'st7', animated: true },
      variants: [{ when: { lacks: 'animated_stickers' }, rpc: { method: 'sticker.fallback', data: { id: 'st7' } } }],
      idempotency_key: 'post-3',
    });
  });

  it('retries a post whose outcome is unknown or temporary, never one the server refused', () => {
    assert.equal(retryable('socket hang up'), true);
    assert.equal(retryable('read ECONNRESET'), true);
    assert.equal(retryable('publish: HTTP 200: 100 internal server error'), true);
    assert.equal(retryable('publish: HTTP 503: unparsable body <html>'), true);
    assert.equal(retryable('publish: HTTP 200: 107 bad request'), false);
    assert.equal(retryable('publish: HTTP 401: undefined undefined'), false);
  });

  it('reads which payload a delivery carried, and refuses look-alikes', () => {
    assert.deepEqual(readPayload({ type: 'sticker', id: 'st3' }), { kind: 'new', sticker: 3 });
    assert.deepEqual(readPayload(fallbackAnswer('st4').result.data), { kind: 'old', sticker: 4 });
    assert.deepEqual(readPayload({ type: 'text', sticker: 'st4', text: 'hello' }), { kind: undefined, sticker: -1 });
    assert.deepEqual(readPayload('st4'), { kind: undefined, sticker: -1 });
    assert.equal(stickerIndex('stx'), -1);
    assert.equal(stickerIndex('st12'), 12);
  });
});

describe('planPosts', () => {
  it('posts each sticker once per node in the cold burst, copies side by side, then the rest', () => {
    const posts = planPosts(4, 5, 3);
    assert.equal(posts.length, 20);
    const burst = posts.filter((p) => p.burst);
    assert.equal(burst.length, 12);
    assert.deepEqual(
      burst.slice(0, 3).map((p) => [p.sticker, p.node]),
      [
        [0, 0],
        [0, 1],
        [0, 2],
      ],
    );
    assert.ok(posts.slice(0, 12).every((p) => p.burst));
    for (let k = 0; k < 4; k++) assert.equal(posts.filter((p) => p.sticker === k).length, 5);
    assert.ok(posts.every((p) => p.node >= 0 && p.node < 3));
    assert.deepEqual(planPosts(4, 5, 3), posts, 'the same plan every run');
  });

  it('has no more burst copies than posts per sticker', () => {
    const posts = planPosts(2, 2, 3);
    assert.equal(posts.length, 4);
    assert.ok(posts.every((p) => p.burst));
  });
});

describe('ReceiptLedger', () => {
  const accepted = {
    stickerAt: Int32Array.from([-1, 0, 1, 2, -1]),
    sentAt: Float64Array.from([0, 100, 200, 300, 0]),
    burst: Uint8Array.from([0, 1, 0, 0, 0]),
  };
  const sticker = (k: number) => ({ kind: 'new' as const, sticker: k });
  const text = (k: number) => ({ kind: 'old' as const, sticker: k });

  it('counts right payloads with their latency, and nothing else, for complete clients', () => {
    const l = new ReceiptLedger(['new', 'old'], 4);
    for (const off of [1, 2, 3]) {
      l.record(0, off, sticker(off - 1), 100 * off + 5);
      l.record(1, off, text(off - 1), 100 * off + 7);
    }
    assert.equal(l.totalDistinct, 6);
    const t = l.tally(accepted);
    assert.equal(t.new.right, 3);
    assert.equal(t.new.expected, 3);
    assert.equal(t.old.right, 3);
    assert.equal(t.new.latencyMs.burst.max, 5);
    assert.equal(t.old.latencyMs.burst.p50, 7);
    assert.equal(t.old.latencyMs.after.count, 2, 'offsets 2 and 3 were posted after the burst');
    assert.equal(t.new.missing + t.old.missing + t.new.otherKind + t.old.duplicates, 0);
  });

  it('tells the other build’s payload, another sticker, missing, doubled and unexpected apart', () => {
    const l = new ReceiptLedger(['old'], 4);
    l.record(0, 1, sticker(0), 110); // an old client shown the sticker
    l.record(0, 2, text(2), 210); // the text of another sticker
    l.record(0, 2, text(1), 220); // again: a duplicate, not counted twice
    l.record(0, 4, text(0), 400); // an offset no accepted post has
    l.record(0, 9, text(0), 900); // out of range
    // offset 3 never arrives
    const t = l.tally(accepted).old;
    assert.deepEqual([t.right, t.otherKind, t.wrongSticker, t.missing, t.duplicates, t.unexpected], [0, 1, 1, 1, 1, 2]);
  });

  it('counts an unreadable payload as a wrong one', () => {
    const l = new ReceiptLedger(['new'], 4);
    l.record(0, 1, { kind: undefined, sticker: -1 }, 101);
    assert.equal(l.tally(accepted).new.wrongSticker, 1);
  });
});

/** result builds a mode's result that passes, with `change` applied. */
function result(mode: ModeResult['mode'], change: (r: ModeResult) => void = () => undefined): ModeResult {
  const deliveries = { new: emptyDeliveries(), old: emptyDeliveries() };
  for (const d of Object.values(deliveries)) Object.assign(d, { clients: 5, expected: 5000, right: 5000 });
  const calls = mode === 'shared' ? 100 : mode === 'local' ? 300 : 1000;
  const r: ModeResult = {
    mode,
    posts: 1000,
    burstPosts: 300,
    publishErrors: {},
    publishRetries: {},
    offsetAnomalies: 0,
    publishMs: { burst: deliveries.new.latencyMs.burst, after: deliveries.new.latencyMs.after },
    origin: { calls, stickers: 100, maxPerSticker: calls / 100, stickersCalledAgain: 0, failed: 0 },
    deliveries,
    history: { clients: 4, publications: 4000, wrong: 0, short: 0 },
    disconnects: {},
    seconds: 12,
    bulwark: {
      variantDeliveries: { '0': 5000, default: 5000 },
      rpcCache: {},
      rpcCacheShared: {},
      httpSocketsClosed: {},
    },
  };
  change(r);
  return r;
}

describe('judgeSticker', () => {
  it('passes every mode that delivered each build its payload, with one call per sticker when shared', () => {
    const checks = judgeSticker([result('shared'), result('local'), result('none')], opts);
    assert.deepEqual(
      checks.filter((c) => !c.pass),
      [],
    );
    assert.ok(checks.some((c) => c.name === 'shared: origin calls' && c.limit === 102));
    assert.ok(checks.some((c) => c.name === 'local: origin calls' && c.limit === 306));
    assert.ok(!checks.some((c) => c.name === 'none: origin calls'), 'no cache is the before-picture, not judged');
  });

  it('fails a shared tier that did not share, a leaked sticker, a lost delivery and a wrong history', () => {
    const failing = (r: ModeResult) =>
      judgeSticker([r], opts)
        .filter((c) => !c.pass)
        .map((c) => c.name);
    assert.deepEqual(failing(result('shared', (r) => (r.origin.calls = 300))), ['shared: origin calls']);
    assert.deepEqual(
      failing(
        result('shared', (r) => {
          r.deliveries.old.right--;
          r.deliveries.old.otherKind++;
        }),
      ),
      ['shared: old builds given the upgrade text', 'shared: old builds shown the sticker'],
    );
    assert.deepEqual(
      failing(
        result('local', (r) => {
          r.deliveries.new.right--;
          r.deliveries.new.missing++;
        }),
      ),
      ['local: new builds given the sticker', 'local: deliveries lost'],
    );
    assert.deepEqual(failing(result('none', (r) => (r.history.wrong = 1))), ["none: history: another build's payload"]);
    assert.deepEqual(failing(result('none', (r) => (r.publishErrors = { '100': 1 }))), [
      'none: posts refused or failed',
    ]);
  });

  it('allows K (shared) or M × K (local) plus the margin, rounded up', () => {
    assert.equal(originLimit('shared', { ...opts, stickers: 30 }), 31);
    assert.equal(originLimit('local', { ...opts, stickers: 30, slack: 0 }), 90);
    assert.equal(originLimit('none', opts), undefined);
  });
});

describe('options and config', () => {
  it('parses --caches, refusing unknown names and empty lists', () => {
    assert.deepEqual(parseModes('local, shared,local'), ['local', 'shared']);
    assert.throws(() => parseModes('redis'), /unknown mode "redis"/);
    assert.throws(() => parseModes(' , '), /at least one/);
  });

  it('caches the fallback RPC shared, per node or not at all, on Redis under the run’s prefix', () => {
    /** The parts of a mode's config looked at here. */
    interface Cfg {
      proxy: { cache: { rpc: unknown[]; shared: boolean } };
      engine: unknown;
      rpc: { proxy: { endpoint: string } };
      channel: { namespaces: Array<{ name: string; history_size: number }> };
      client: { history_max_publication_limit: number };
    }
    const cfg = (m: ModeResult['mode']) => modeConfig(m, opts, 'http://127.0.0.1:1', 'pfx') as unknown as Cfg;
    assert.deepEqual(cfg('shared').proxy.cache, {
      rpc: [{ method: 'sticker.fallback', ttl: '10m', per_user: false }],
      shared: true,
    });
    assert.equal(cfg('local').proxy.cache.shared, false);
    assert.deepEqual(cfg('none').proxy.cache.rpc, []);
    assert.deepEqual(cfg('shared').engine, { type: 'redis', redis: { address: [opts.redisUrl], prefix: 'pfx' } });
    assert.equal(cfg('shared').rpc.proxy.endpoint, 'http://127.0.0.1:1/rpc');
    const ns = cfg('shared').channel.namespaces[0]!;
    assert.equal(ns.name, 'chat');
    assert.equal(ns.history_size, 1000, 'the whole chat is kept');
    assert.equal(cfg('shared').client.history_max_publication_limit, 1000);
  });
});

describe('ChatClient', () => {
  it('declares name, version and features; reads pushes, several per frame; answers pings; reads history', async (t) => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    t.after(() => wss.close());
    /** A command as the scripted server got it. */
    interface Command {
      id?: number;
      connect?: { token: string; name: string; version: string };
      subscribe?: unknown;
      history?: unknown;
    }
    const seen: Command[] = [];
    wss.on('connection', (ws) => {
      ws.on('message', (raw: Buffer) => {
        const msg = JSON.parse(raw.toString()) as Command;
        seen.push(msg);
        if (msg.connect) ws.send(`{"id":${msg.id},"connect":{"client":"c1","version":"0"}}`);
        if (msg.subscribe) {
          ws.send(`{"id":${msg.id},"subscribe":{}}`);
          ws.send(
            [
              '{"push":{"channel":"chat:lobby","pub":{"data":{"type":"sticker","id":"st1"},"offset":1}}}',
              '{}',
              '{"push":{"channel":"other","pub":{"data":1,"offset":5}}}',
              '{"push":{"channel":"chat:lobby","pub":{"data":{"type":"sticker","id":"st2"},"offset":2}}}',
            ].join('\n'),
          );
        }
        if (msg.history) ws.send(`{"id":${msg.id},"history":{"publications":[{"data":{"a":1},"offset":1}]}}`);
      });
    });
    const port = (wss.address() as { port: number }).port;
    const got: ChatPublication[] = [];
    const c = new ChatClient(`ws://127.0.0.1:${port}`, 'chat:lobby', (p) => got.push(p));
    t.after(() => c.terminate());
    await c.join({ user: 'u1', name: 'bulwark-chat', version: '5.3.0', features: ['animated_stickers'] }, 'secret');
    assert.ok(await waitFor(() => got.length === 2 && seen.some((m) => Object.keys(m).length === 0), 2000));
    assert.deepEqual(
      got.map((p) => p.offset),
      [1, 2],
    );
    const connect = seen.find((m) => m.connect)!.connect!;
    assert.equal(connect.name, 'bulwark-chat');
    assert.equal(connect.version, '5.3.0');
    const claims = JSON.parse(Buffer.from(connect.token.split('.')[1]!, 'base64url').toString()) as {
      sub?: string;
      features?: string[];
    };
    assert.deepEqual([claims.sub, claims.features], ['u1', ['animated_stickers']]);
    assert.deepEqual(await c.history(10), [{ data: { a: 1 }, offset: 1 }]);
    assert.ok(c.bytesReceived > 0);
  });
});

const redisDown = await redisReachable(opts.redisUrl, 500);

describe('the sticker scenario on 3 Bulwark processes', { skip: redisDown }, () => {
  it('gives each build its payload of every post, with one origin call per sticker', async () => {
    const values = {
      clients: '12',
      stickers: '4',
      'posts-per-sticker': '4',
      duration: '0.3',
      'history-sample': '1',
      caches: 'shared',
    };
    const quiet = new Writable({ write: (_c, _e, done) => done() }) as unknown as NodeJS.WriteStream;
    const ctx: ScenarioContext = {
      quick: true,
      flags: readFlags(values, true),
      log: () => undefined,
      progress: new Progress(quiet),
      bulwark: {},
      targets: ['bulwark'],
      workers: 1,
      loadgenCpu: null,
    };
    const out = await stickerScenario.run(ctx);
    assert.deepEqual(
      out.checks.filter((c) => !c.pass),
      [],
    );
    const shared = (out.results as { modes: ModeResult[] }).modes[0]!;
    assert.equal(shared.origin.calls, 4);
    assert.equal(shared.deliveries.old.right, 6 * 16);
    assert.equal(shared.deliveries.new.right, 6 * 16);
  });
});
