/**
 * Bad input on every door: malformed and hostile client frames (one by one, then a seeded
 * fuzz storm while a well-behaved SDK client keeps receiving), clients that do not pong, do
 * not connect or do not read, and bad server API requests.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { commandMethods } from '../src/protocol/types.js';
import {
  connected,
  nextEvent,
  rawClient,
  sleep,
  startTestServer,
  waitUntil,
  type RawClient,
  type ServerMessage,
  type TestServer,
} from './helpers/server.js';
import { steadyStream } from './helpers/steady-stream.js';
import { mulberry32 } from './helpers/prng.js';

const sizeLimit = 4096;

describe('bad client frames', () => {
  let srv: TestServer;

  before(async () => {
    srv = await startTestServer({
      client: { ping_interval: '600ms', pong_timeout: '300ms', stale_close_delay: '300ms' },
      websocket: { message_size_limit: sizeLimit },
    });
  });
  after(() => srv.close());

  /** connectedRaw opens a raw client and connects it as `user`. */
  async function connectedRaw(t: TestContext, user = 'raw', opts: Parameters<typeof rawClient>[1] = {}) {
    const c = await rawClient(srv.url, opts);
    t.after(() => c.close());
    const reply = await c.connect(await srv.token(user));
    assert.ok(reply.connect?.client, JSON.stringify(reply));
    return c;
  }

  it('malformed JSON closes with 3501 (before and after connect)', async (t) => {
    const a = await connectedRaw(t);
    a.send('{"id":1,"ping":{}');
    assert.deepEqual(await a.waitClose(), { code: 3501, reason: 'bad request' });
    const b = await rawClient(srv.url);
    t.after(() => b.close());
    b.send('not json at all');
    assert.equal((await b.waitClose()).code, 3501);
  });

  it('an unknown command gets error 104 and the connection stays', async (t) => {
    const c = await connectedRaw(t);
    c.send('{"id":7,"foo":{}}');
    const reply = await c.waitFor((m) => m.id === 7);
    assert.equal(reply.error?.code, 104);
    // The ping command is answered 108, as Centrifugo answers it (protocol v2 has no client ping).
    const ping = await c.call('ping');
    assert.deepEqual(ping, { id: ping.id, error: { code: 108, message: 'not available' } });
    assert.equal(c.open, true);
  });

  it('a command before connect closes with 3501', async (t) => {
    const c = await rawClient(srv.url);
    t.after(() => c.close());
    c.send({ id: 1, subscribe: { channel: 'chat:early' } });
    assert.equal((await c.waitClose()).code, 3501);
  });

  it('a frame over websocket.message_size_limit closes with 1009; one under it is fine', async (t) => {
    const ok = await connectedRaw(t);
    const fits = await ok.call('rpc', { method: 'x', data: 'y'.repeat(sizeLimit - 100) });
    assert.equal(fits.error?.code, 108, 'handled (no RPC on this node: not available), not closed');
    const c = await connectedRaw(t);
    c.send(JSON.stringify({ id: 2, rpc: { method: 'x', data: 'y'.repeat(sizeLimit + 1) } }));
    assert.equal((await c.waitClose()).code, 1009);
  });

  it('wrong field types close with 3501', async (t) => {
    const frames = [
      '{"id":1,"subscribe":{"channel":5}}',
      '{"id":1,"subscribe":"chat:x"}',
      '{"id":1,"subscribe":{"channel":"chat:x","recover":"yes"}}',
      '{"id":1,"subscribe":{"channel":"chat:x","offset":-1}}',
      '{"id":1,"publish":{"channel":"chat:x"}}',
      '{"id":1,"history":{"channel":"chat:x","limit":"10"}}',
      '{"id":1,"history":{"channel":"chat:x","since":{"offset":1.5}}}',
      '{"id":"abc","ping":{}}',
      '{"id":-1,"ping":{}}',
      '{"id":4294967296,"ping":{}}',
      '{"id":1,"ping":{},"rpc":{}}',
      '{"id":1,"refresh":{}}',
      '[{"id":1,"ping":{}}]',
      '42',
      '"connect"',
      'null',
    ];
    await Promise.all(
      frames.map(async (frame) => {
        const c = await connectedRaw(t);
        c.send(frame);
        const closed = await c.waitClose();
        assert.equal(closed.code, 3501, `frame ${frame}: closed with ${JSON.stringify(closed)}`);
      }),
    );
  });

  it('a binary frame closes with 3506 (the JSON protocol is text)', async (t) => {
    const c = await connectedRaw(t);
    c.send(Buffer.from('{"id":1,"ping":{}}'), { binary: true });
    assert.equal((await c.waitClose()).code, 3506);
  });

  it('a client that does not answer pings is closed with 3012; one that does stays', async (t) => {
    const silent = await connectedRaw(t, 'silent', { autoPong: false });
    const polite = await connectedRaw(t, 'polite');
    const started = Date.now();
    const closed = await silent.waitClose(2500);
    assert.deepEqual(closed, { code: 3012, reason: 'no pong' });
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 800 && elapsed < 1500, `closed after ${elapsed} ms (ping 600 ms + pong timeout 300 ms)`);
    assert.equal(silent.pings, 1);
    await sleep(1400 - elapsed);
    assert.equal(polite.open, true);
    assert.ok(polite.pings >= 2, `polite got ${polite.pings} pings`);
  });

  it('a connection that never sends connect is closed with 3502 (stale)', async (t) => {
    const c = await rawClient(srv.url);
    t.after(() => c.close());
    const started = Date.now();
    assert.deepEqual(await c.waitClose(1500), { code: 3502, reason: 'stale' });
    assert.ok(Date.now() - started >= 250);
  });
});

describe('deeply nested JSON', () => {
  let srv: TestServer;

  before(async () => {
    srv = await startTestServer(); // default 64 KiB frames: room for 20 000 levels of nesting
  });
  after(() => srv.close());

  // 40 KB of brackets parse fine but overflow JSON.stringify's recursion when re-encoded.
  const depth = 20_000;
  const nested = '['.repeat(depth) + ']'.repeat(depth);

  it('client publish of deeply nested data is not an internal error, and the connection stays', async (t) => {
    const c = await rawClient(srv.url);
    t.after(() => c.close());
    await c.connect(await srv.token('nester'));
    const sub = await c.call('subscribe', { channel: 'open:deep' });
    assert.equal(sub.error, undefined);
    c.send(`{"id":50,"publish":{"channel":"open:deep","data":${nested}}}`);
    const reply = await c.waitFor((m) => m.id === 50);
    assert.equal(reply.error?.code, 107, `expected bad request, got ${JSON.stringify(reply)}`);
    const probe = await c.call('presence_stats', { channel: 'open:deep' });
    assert.equal(probe.error, undefined);
    assert.equal(c.open, true);
  });

  it('API publish of deeply nested data is not an internal error', async () => {
    const res = await srv.api('publish', undefined, { rawBody: `{"channel":"open:deep2","data":${nested}}` });
    assert.equal(res.status, 200);
    assert.equal(res.body.error?.code, 107, `expected bad request, got ${JSON.stringify(res.body)}`);
  });
});

// ---------------------------------------------------------------- fuzz storm

type Kind = 'bytes' | 'binary' | 'big' | 'json' | 'method' | 'batch';

interface FuzzFrame {
  kind: Kind;
  payload: string | Buffer;
  binary: boolean;
  /** The id of the command, when the frame is one command with a positive id. */
  id: number;
}

const methods = [...commandMethods, 'foo'];
const fieldNames = [
  'channel',
  'token',
  'data',
  'recover',
  'epoch',
  'offset',
  'limit',
  'since',
  'reverse',
  'method',
  'positioned',
  'recoverable',
  'join_leave',
  'subs',
  'name',
  'version',
];
const channelPool = [
  'chat:fz',
  'open:fz',
  'news:fz',
  'tiny:fz',
  'locked:fz',
  'nope:fz',
  '$chat:fz',
  '$open:fz',
  '',
  ' ',
  'chat:a\u0000b',
  'chat:' + 'x'.repeat(300),
  'open:room#fuzz0,fuzz1',
];

class Fuzzer {
  readonly #rnd: () => number;
  #nextId = 1_000;

  constructor(seed: number) {
    this.#rnd = mulberry32(seed);
  }

  int(n: number): number {
    return Math.floor(this.#rnd() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  string(): string {
    const alphabet = 'ab:$#,. \n\t"\\\u0000\u00e9\u4e2d\ud83d\ude00{}[]0';
    let s = '';
    const len = this.int(12);
    for (let i = 0; i < len; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }

  value(depth = 0): unknown {
    switch (this.int(depth > 2 ? 6 : 9)) {
      case 0:
        return this.int(2000) - 1000;
      case 1:
        return this.pick([0, -1, 1.5, 1e300, -0, 4294967296, Number.MAX_SAFE_INTEGER, 2 ** 64]);
      case 2:
        return this.string();
      case 3:
        return this.#rnd() < 0.5;
      case 4:
        return null;
      case 5:
        return this.pick(channelPool);
      case 6:
      case 7: {
        const o: Record<string, unknown> = {};
        const n = this.int(4);
        for (let i = 0; i < n; i++)
          o[this.#rnd() < 0.7 ? this.pick(fieldNames) : this.string()] = this.value(depth + 1);
        return o;
      }
      default:
        return Array.from({ length: this.int(4) }, () => this.value(depth + 1));
    }
  }

  /** command is a command of a known (or unknown) method whose fields have random types. */
  command(): { text: string; id: number } {
    const method = this.pick(methods);
    const body: Record<string, unknown> = {};
    // Mostly plausible fields: a channel from the pool, other fields of random types.
    if (this.#rnd() < 0.8) body['channel'] = this.#rnd() < 0.8 ? this.pick(channelPool) : this.value();
    const n = this.int(4);
    for (let i = 0; i < n; i++) body[this.pick(fieldNames)] = this.value(1);
    if (method === 'publish' && !('data' in body) && this.#rnd() < 0.8) body['data'] = this.value();
    const id = this.#rnd() < 0.9 ? this.#nextId++ : 0;
    const cmd: Record<string, unknown> = id > 0 ? { id } : {};
    cmd[method] = this.#rnd() < 0.9 ? body : this.value();
    return { text: JSON.stringify(cmd), id: id };
  }

  frame(): FuzzFrame {
    const r = this.#rnd();
    if (r < 0.12) {
      const bytes = Buffer.alloc(1 + this.int(200));
      for (let i = 0; i < bytes.length; i++) bytes[i] = this.int(256);
      return { kind: 'bytes', payload: bytes, binary: false, id: 0 };
    }
    if (r < 0.15) return { kind: 'binary', payload: Buffer.from(this.command().text), binary: true, id: 0 };
    if (r < 0.18) {
      return { kind: 'big', payload: `{"id":1,"send":{"data":"${'z'.repeat(sizeLimit)}"}}`, binary: false, id: 0 };
    }
    if (r < 0.35) return { kind: 'json', payload: JSON.stringify(this.value()), binary: false, id: 0 };
    if (r < 0.9) {
      const c = this.command();
      return { kind: 'method', payload: c.text, binary: false, id: c.id };
    }
    const lines = Array.from({ length: 2 + this.int(3) }, () => this.command().text);
    return { kind: 'batch', payload: lines.join('\n'), binary: false, id: 0 };
  }
}

/** Outcome of one fuzz frame. */
type Outcome = { closed: number } | { error: number } | { ok: true } | { none: true };

describe('fuzz storm', () => {
  let srv: TestServer;
  const seed = Number(process.env['BULWARK_FUZZ_SEED'] ?? 20240611);

  before(async () => {
    srv = await startTestServer({ websocket: { message_size_limit: sizeLimit } });
    // Fuzzed `send` commands are taken, not closed with 3508 (no message handler).
    srv.node.onMessage(() => undefined);
  });
  after(() => srv.close());

  it('1000+ hostile frames get an error or a disconnect; a good client misses nothing', async (t) => {
    // The well-behaved client, receiving a steady stream during and after the storm.
    const stream = await steadyStream(srv, t, 'chat:storm', 3);
    const { received, client: good } = stream;

    const tokens = await Promise.all(Array.from({ length: 8 }, (_, i) => srv.token(`fuzz${i}`)));
    const outcomes: Array<{ kind: Kind; outcome: Outcome; frame: string }> = [];
    const framesPerClient = 150;
    let sentinel = 100_000_000;

    const runFuzzer = async (i: number) => {
      const fz = new Fuzzer(seed + i);
      const token = tokens[i] as string;
      let c: RawClient | undefined;
      for (let k = 0; k < framesPerClient; k++) {
        if (!c || !c.open) {
          c = await rawClient(srv.url);
          const conn = c;
          t.after(() => conn.close());
          // One connection in ten gets a fuzz frame before connecting.
          if (fz.int(10) === 0) {
            const f = fz.frame();
            conn.send(f.payload, { binary: f.binary });
            const reply = await Promise.race([
              conn.connect(token).catch(() => undefined),
              conn.closed.then(() => undefined),
            ]);
            const fuzzError = conn.messages.find((m) => m.error !== undefined)?.error?.code;
            const outcome: Outcome = !reply?.connect
              ? { closed: (await conn.waitClose(3000)).code }
              : fuzzError !== undefined
                ? { error: fuzzError }
                : { none: true };
            outcomes.push({ kind: f.kind, outcome, frame: String(f.payload).slice(0, 200) });
            continue;
          }
          const reply = await conn.connect(token);
          assert.ok(reply.connect, `fuzz${i} could not connect: ${JSON.stringify(reply)}`);
        }
        const conn = c;
        const f = fz.frame();
        conn.messages.length = 0;
        conn.send(f.payload, { binary: f.binary });
        const sid = ++sentinel;
        if (conn.open) conn.send({ id: sid, ping: {} });
        const answered = await Promise.race([
          conn.waitFor((m) => m.id === sid, 3000, 'sentinel').then(() => true),
          conn.closed.then(() => false),
        ]).catch(() => false);
        let outcome: Outcome;
        if (!answered) {
          const closed = await conn.waitClose(3000);
          outcome = { closed: closed.code };
        } else {
          const replies = conn.messages.filter((m: ServerMessage) => f.id > 0 && m.id === f.id);
          const errors = conn.messages.filter((m: ServerMessage) => m.error !== undefined);
          if (errors.length > 0) outcome = { error: errors[0]?.error?.code ?? -1 };
          else if (replies.length > 0) outcome = { ok: true };
          else outcome = { none: true };
        }
        outcomes.push({ kind: f.kind, outcome, frame: String(f.payload).slice(0, 200) });
      }
      c?.close();
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: 8 }, (_, i) => runFuzzer(i)));
    const stormMs = Date.now() - started;
    const published = await stream.stop(20);
    await waitUntil(() => received.length >= published, 3000, 'good client caught up');

    // Every frame had an outcome; hostile bytes always cost the connection.
    assert.equal(outcomes.length, 8 * framesPerClient);
    const allowedCloses = new Set([1007, 1009, 3500, 3501, 3506]);
    const histogram: Record<string, number> = {};
    for (const { kind, outcome, frame } of outcomes) {
      const label =
        'closed' in outcome
          ? `close ${outcome.closed}`
          : 'error' in outcome
            ? `error ${outcome.error}`
            : 'ok' in outcome
              ? 'ok'
              : 'none';
      histogram[`${kind}: ${label}`] = (histogram[`${kind}: ${label}`] ?? 0) + 1;
      if ('closed' in outcome) {
        assert.ok(allowedCloses.has(outcome.closed), `unexpected close ${outcome.closed} for ${kind} frame ${frame}`);
      }
      if ('error' in outcome) {
        assert.notEqual(outcome.error, 100, `internal error for ${kind} frame ${frame}`);
      }
      if (kind === 'bytes' || kind === 'binary' || kind === 'big') {
        assert.ok('closed' in outcome, `${kind} frame did not cost the connection: ${frame}`);
      }
    }
    t.diagnostic(`seed ${seed}, ${outcomes.length} frames in ${stormMs} ms: ${JSON.stringify(histogram)}`);
    const count = (prefix: string) =>
      Object.entries(histogram)
        .filter(([k]) => k.includes(prefix))
        .reduce((s, [, v]) => s + v, 0);
    assert.ok(count('close') > 50, 'the storm caused disconnects');
    assert.ok(count('error') > 50, 'the storm caused error replies');

    // The good client saw every publication once, in order, without reconnecting.
    assert.deepEqual(
      received,
      Array.from({ length: published }, (_, i) => i + 1),
    );
    assert.equal(stream.reconnects(), 0, 'the good client never reconnected');
    assert.equal(good.state, 'connected');
    // The server still serves: health, API, new connections.
    assert.equal((await fetch(`${srv.httpUrl}/health`)).status, 200);
    assert.equal((await srv.api('info')).body.result.nodes[0].num_clients >= 1, true);
    const late = await rawClient(srv.url);
    t.after(() => late.close());
    assert.ok((await late.connect(await srv.token('late'))).connect);
  });
});

// ---------------------------------------------------------------- server API

describe('bad server API requests', () => {
  let srv: TestServer;

  before(async () => {
    srv = await startTestServer({ http_api: { max_body_size: 1024 } });
  });
  after(() => srv.close());

  async function offsetOf(channel: string): Promise<number> {
    const res = await srv.api('history', { channel, limit: 0 });
    return res.body.result.offset as number;
  }

  it('a missing or wrong key is 401 and changes nothing; both header forms work', async () => {
    const body = { channel: 'chat:auth', data: 1 };
    const missing = await srv.api('publish', body, { key: null });
    assert.equal(missing.status, 401);
    assert.equal(missing.body.error.code, 101);
    const wrong = await srv.api('publish', body, { key: srv.apiKey.slice(1) + 'x' });
    assert.equal(wrong.status, 401);
    const empty = await srv.api('publish', body, { key: '' });
    assert.equal(empty.status, 401);
    assert.equal(await offsetOf('chat:auth'), 0);
    const res = await fetch(`${srv.httpUrl}/api/publish`, {
      method: 'POST',
      headers: { authorization: `apikey ${srv.apiKey}` },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200);
    assert.equal(await offsetOf('chat:auth'), 1);
  });

  it('an unknown method is 404, a GET is 405, malformed JSON is 400', async () => {
    const unknown = await srv.api('no_such_method', {});
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 104);
    const get = await fetch(`${srv.httpUrl}/api/info`, { headers: { 'x-api-key': srv.apiKey } });
    assert.equal(get.status, 405);
    await get.text();
    const malformed = await srv.api('publish', undefined, { rawBody: '{"channel":"chat:m","data":' });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error.code, 107);
    assert.equal(await offsetOf('chat:m'), 0);
  });

  it('invalid bodies are 200 with error 107 and nothing is applied', async (t) => {
    // A subscriber on the channels a bad request names must receive nothing.
    const watcher = await connected(srv.url, { token: await srv.token('watcher') });
    t.after(() => watcher.disconnect());
    const got: unknown[] = [];
    for (const ch of ['chat:b1', 'chat:b2']) {
      const sub = watcher.newSubscription(ch);
      sub.on('publication', (ctx) => got.push(ctx.data));
      const ready = nextEvent(sub, 'subscribed');
      sub.subscribe();
      await ready;
    }
    const bad: Array<[string, unknown]> = [
      ['publish', {}],
      ['publish', { data: 1 }],
      ['publish', { channel: 5, data: 1 }],
      ['publish', { channel: 'chat:b1' }],
      ['publish', { channel: 'chat:b1', data: 1, skip_history: 'no' }],
      ['publish', { channel: 'chat:b1', data: 1, tags: { a: 1 } }],
      ['publish', { channel: 'chat:b1', b64data: '!!!not base64 json!!!' }],
      ['publish', { channel: 'chat:b 1', data: 1 }],
      ['publish', []],
      ['publish', 'chat:b1'],
      ['broadcast', { channels: ['chat:b1', 5], data: 1 }],
      ['broadcast', { channels: ['chat:b1', 'chat:b 2'], data: 1 }],
      ['broadcast', { channels: [], data: 1 }],
      ['broadcast', { channels: 'chat:b1', data: 1 }],
      ['subscribe', { user: 5, channel: 'chat:b1' }],
      ['disconnect', { user: 'watcher', disconnect: { code: 1000, reason: 'x' } }],
      ['disconnect', { user: 'watcher', disconnect: { code: 4000, reason: 'r'.repeat(200) } }],
      ['history', { channel: 'chat:b1', limit: 'ten' }],
      ['refresh', { user: 'watcher', expire_at: -5 }],
    ];
    for (const [method, body] of bad) {
      const res = await srv.api(method, body);
      assert.equal(res.status, 200, `${method} ${JSON.stringify(body)}`);
      assert.equal(res.body.error?.code, 107, `${method} ${JSON.stringify(body)} → ${JSON.stringify(res.body)}`);
      assert.equal(res.body.result, undefined);
    }
    // A broadcast naming an unknown namespace is refused whole (102), publishing nowhere.
    const unknownNs = await srv.api('broadcast', { channels: ['chat:b1', 'nope:b2', 'chat:b2'], data: 1 });
    assert.equal(unknownNs.status, 200);
    assert.equal(unknownNs.body.error?.code, 102);
    await sleep(50);
    assert.deepEqual(got, [], 'nothing was published');
    assert.equal(await offsetOf('chat:b1'), 0);
    assert.equal(await offsetOf('chat:b2'), 0);
    assert.equal(watcher.state, 'connected', 'the rejected disconnects did nothing');
    // The same broadcast, valid, reaches both.
    const ok = await srv.api('broadcast', { channels: ['chat:b1', 'chat:b2'], data: 'fine' });
    assert.equal(ok.body.result.responses.length, 2);
    await waitUntil(() => got.length === 2, 2000, 'valid broadcast');
  });

  it('a body over http_api.max_body_size is 413 (declared or streamed)', async () => {
    const big = JSON.stringify({ channel: 'chat:big', data: 'x'.repeat(2000) });
    const declared = await srv.api('publish', undefined, { rawBody: big });
    assert.equal(declared.status, 413);
    assert.equal(declared.body.error.code, 106);
    // Chunked, without content-length: the limit applies while reading.
    const streamed = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${srv.httpUrl}/api/publish`,
        { method: 'POST', headers: { 'x-api-key': srv.apiKey, 'transfer-encoding': 'chunked' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      for (let i = 0; i < 4; i++) req.write(big.slice(i * 500, (i + 1) * 500));
      req.end(big.slice(2000));
    });
    assert.equal(streamed, 413);
    assert.equal(await offsetOf('chat:big'), 0);
  });
});

// ---------------------------------------------------------------- slow consumer

describe('slow consumer', () => {
  let srv: TestServer;

  before(async () => {
    srv = await startTestServer({ client: { queue_max_size: 65_536 } });
  });
  after(() => srv.close());

  it('a client that stops reading is disconnected with 3008; another keeps receiving', async (t) => {
    const ch = 'news:firehose';
    const slow = await rawClient(srv.url);
    t.after(() => slow.close());
    await slow.connect(await srv.token('slow'));
    assert.equal((await slow.call('subscribe', { channel: ch })).error, undefined);
    slow.discardIncoming(); // megabytes follow

    const fast = await connected(srv.url, { token: await srv.token('fast') });
    t.after(() => fast.disconnect());
    const sub = fast.newSubscription(ch);
    let received = 0;
    sub.on('publication', () => received++);
    const ready = nextEvent(sub, 'subscribed');
    sub.subscribe();
    await ready;

    slow.pauseReading();
    const slowCount = async () => (await srv.node.metrics.slowDisconnects.get()).values[0]?.value ?? 0;
    const payload = 'p'.repeat(8 * 1024);
    let published = 0;
    // Up to 40 MB: enough to fill the loopback socket buffers and then the 64 KiB queue.
    while ((await slowCount()) === 0 && published < 5000) {
      await srv.node.publish(ch, { n: ++published, payload });
      await yieldToLoop();
    }
    assert.equal(await slowCount(), 1, `slow consumer detected after ${published} publications`);
    assert.equal(srv.node.hub.userSessions('slow').size, 0, 'the slow session is gone');
    // One at a time: ten 8 KiB publications in one tick would exceed the 64 KiB queue of any client.
    for (let i = 0; i < 10; i++) {
      await srv.node.publish(ch, { n: ++published, payload });
      await yieldToLoop();
    }
    await waitUntil(() => received === published, 5000, 'fast client received everything').catch((e: Error) => {
      throw new Error(`${e.message}: ${received}/${published}, fast ${fast.state}`);
    });
    assert.equal(fast.state, 'connected');
    slow.resumeReading();
    assert.deepEqual(await slow.waitClose(5000), { code: 3008, reason: 'slow' });
  });
});
