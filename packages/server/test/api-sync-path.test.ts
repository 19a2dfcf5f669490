/**
 * The server API's publish answered within the call (issue 18): on the memory engine a plain
 * publish is read without zod, published with the broker's `publishNow` and answered in the
 * request body's 'end', with no promise in between. These tests hold it to the asynchronous
 * path it shortcuts: the same status and bytes for good and bad bodies (the same node, once
 * with the memory broker and once with the same broker hiding `publishNow`), the same counts
 * in /metrics, bodies split across TCP segments or too large, kept-alive and pipelined
 * requests, and the fd budget's view of a kept-alive API connection between requests.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { ConfigInput } from '../src/config/schema.js';
import type { Broker } from '../src/engine/broker.js';
import { MemoryBroker } from '../src/engine/broker-memory.js';
import { plainPublishBody, publishFields, hasData, dataMissing } from '../src/http/api-publish-options.js';
import { channelField } from '../src/util/request-body.js';
import { z } from 'zod';
import { mulberry32 } from './helpers/prng.js';
import { sleep, startTestServer, waitUntil, type TestServer } from './helpers/server.js';

/** The config of both servers: small limits, so that each can be crossed by one body. */
const config: ConfigInput = {
  http_api: { max_body_size: 2048, idempotency_key_max_length: 8, version_epoch_max_length: 4 },
  protection: { publication_max_size: 64 },
  channel: {
    namespaces: [
      { name: 'lobby', subscription_type: 'map', allow_subscribe_for_client: true, map: { mode: 'ephemeral' } },
    ],
  },
};

/** countingBroker is a memory broker with one epoch for all its streams, counting its calls of each kind. */
function countingBroker(): { broker: MemoryBroker; calls: { now: number; async: number } } {
  const broker = new MemoryBroker({ epochFactory: () => 'epoch1' });
  const calls = { now: 0, async: 0 };
  const now = broker.publishNow.bind(broker);
  const publish = broker.publish.bind(broker);
  broker.publishNow = (...args) => (calls.now++, now(...args));
  broker.publish = (...args) => (calls.async++, publish(...args));
  return { broker, calls };
}

/** withoutPublishNow is `broker` as an engine that cannot publish synchronously (as Redis). */
function withoutPublishNow(broker: MemoryBroker): Broker {
  return new Proxy(broker, {
    get(target, prop) {
      if (prop === 'publishNow') return undefined;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

/** post sends a raw body to /api/<method> and returns the status and the body's text. */
async function post(srv: TestServer, method: string, body: string): Promise<[number, string]> {
  const res = await fetch(`${srv.httpUrl}/api/${method}`, {
    method: 'POST',
    headers: { 'x-api-key': srv.apiKey, 'content-type': 'application/json' },
    body,
  });
  return [res.status, await res.text()];
}

/** metricLines are the lines of /metrics about API commands and publications, sorted. */
async function metricLines(srv: TestServer): Promise<string[]> {
  const text = await (await fetch(`${srv.httpUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter(
      (l) =>
        l.startsWith('bulwark_api_commands_total{') ||
        l.startsWith('bulwark_publications_total{') ||
        l.startsWith('bulwark_publications_suppressed_total{') ||
        l.startsWith('bulwark_api_command_duration_seconds_count{'),
    )
    .map((l) => l.replace(/node="[^"]*"/, 'node=""'))
    .sort();
}

/** The bodies both paths must answer alike, in this order (idempotency and versions depend on it). */
const bodies: string[] = [
  '{"channel":"chat:a","data":{"n":1}}',
  '{"channel":"chat:a","data":{"n":2}}',
  '{"channel":"chat:b","data":"text"}',
  '{"channel":"chat:b","data":null}',
  '{"channel":"news:x","data":1}', // no history: {"result":{}}
  '{"channel":"chat:a","data":3,"skip_history":true}',
  '{"channel":"chat:a","data":4,"skip_history":"yes"}',
  '{"channel":"chat:a","data":5,"idempotency_key":"k1"}',
  '{"channel":"chat:a","data":6,"idempotency_key":"k1"}', // repeated: the first one's position
  '{"channel":"chat:a","data":7,"idempotency_key":"far-too-long"}',
  '{"channel":"chat:a","data":7,"idempotency_key":5}',
  '{"channel":"chat:v","data":8,"version":2}',
  '{"channel":"chat:v","data":9,"version":1}', // not newer: suppressed
  '{"channel":"chat:v","data":10,"version":3,"version_epoch":"e1"}',
  '{"channel":"chat:v","data":10,"version":4,"version_epoch":"long!"}',
  '{"channel":"chat:v","data":11,"version":-1}',
  '{"channel":"chat:v","data":11,"version":1.5}',
  '{"channel":"chat:v","data":11,"version":9007199254740992}',
  '{"channel":"chat:a","b64data":"eyJuIjoxMn0="}',
  '{"channel":"chat:a","b64data":"!!"}',
  '{"channel":"chat:a","data":13,"tags":{"k":"v"}}',
  '{"channel":"chat:a","data":13,"tags":{"k":1}}',
  '{"channel":"chat:a","data":14,"extra":"ignored"}',
  '{"channel":"chat:a"}',
  '{"channel":"","data":1}',
  '{"channel":5,"data":1}',
  '{"data":1}',
  '{"channel":"nope:x","data":1}', // unknown namespace: 102
  '{"channel":"chat:a b","data":1}',
  '{"channel":"lobby:1","data":1}', // a map channel takes map_publish
  `{"channel":"chat:big","data":"${'x'.repeat(80)}"}`, // publication_max_size
  '{"channel":"chat:a","data":[1,]}',
  '{"channel":"chat:a","data":15,"variants":[]}',
  '[]',
  '"chat:a"',
  'null',
  '',
  '{"channel":"chat:a","data":',
];

describe('server API publish within the call', () => {
  let now: TestServer;
  let later: TestServer;
  let counts: { now: number; async: number };

  before(async () => {
    const sync = countingBroker();
    counts = sync.calls;
    now = await startTestServer(config, { broker: sync.broker });
    later = await startTestServer(config, { broker: withoutPublishNow(countingBroker().broker) });
  });
  after(async () => {
    await now?.close();
    await later?.close();
  });

  it('answers every body as the asynchronous path does, byte for byte, and counts the same', async () => {
    for (const body of bodies) {
      const [a, b] = [await post(now, 'publish', body), await post(later, 'publish', body)];
      assert.deepEqual(a, b, `body ${body.slice(0, 80)}`);
    }
    assert.ok(counts.now >= 10, `${counts.now} publishes within the call`);
    assert.equal(counts.async, 0, 'none through the promise');
    assert.deepEqual(await metricLines(now), await metricLines(later));
    // Spot checks of what both said.
    const [status, reply] = await post(now, 'publish', bodies[0] as string);
    assert.equal(status, 200);
    assert.match(reply, /^\{"result":\{"offset":\d+,"epoch":"epoch1"\}\}$/);
    assert.deepEqual(await post(now, 'publish', '{"channel":"news:y","data":1}'), [200, '{"result":{}}']);
    const [, text] = await post(now, 'publish', '{"channel":"chat:a","data":4,"skip_history":"yes"}');
    assert.equal(JSON.parse(text).error.code, 107);
  });

  it('publishes variants, which need resolving, through the promise', async () => {
    const before = counts.async;
    const [status, text] = await post(
      now,
      'publish',
      '{"channel":"chat:var","data":1,"variants":[{"when":{"name":"old"},"data":2}]}',
    );
    assert.equal(status, 200, text);
    assert.equal(JSON.parse(text).result.offset, 1);
    assert.equal(counts.async, before + 1);
  });

  it('reads a body split across TCP segments, kept-alive and pipelined requests, in order', async (t) => {
    const socket = net.connect(now.port, '127.0.0.1');
    t.after(() => socket.destroy());
    await new Promise((resolve) => socket.once('connect', resolve));
    let received = '';
    socket.setEncoding('latin1').on('data', (d: string) => (received += d));
    const request = (body: string): string =>
      `POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: ${now.apiKey}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const first = request('{"channel":"chat:split","data":{"text":"héllo wörld"}}');
    // Headers, then the body in three pieces, the middle one cutting a UTF-8 character in two.
    const cut = Buffer.from(first);
    const headerEnd = cut.indexOf('\r\n\r\n') + 4;
    const accent = cut.indexOf(Buffer.from('é'));
    for (const piece of [cut.subarray(0, headerEnd), cut.subarray(headerEnd, accent + 1), cut.subarray(accent + 1)]) {
      socket.write(piece);
      await sleep(20);
    }
    await waitUntil(() => received.includes('"offset":1'), 3000, 'the split request answered');
    // Two more on the same connection, written at once (pipelined).
    socket.write(request('{"channel":"chat:split","data":2}') + request('{"channel":"chat:split","data":3}'));
    await waitUntil(() => received.includes('"offset":3'), 3000, 'the pipelined requests answered');
    const offsets = [...received.matchAll(/"offset":(\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(offsets, [1, 2, 3]);
    const history = await now.api('history', { channel: 'chat:split', limit: -1 });
    assert.deepEqual(history.body.result.publications[0].data, { text: 'héllo wörld' });
  });

  it('refuses a body past http_api.max_body_size sent in pieces with 413, publishing nothing', async (t) => {
    const socket = net.connect(now.port, '127.0.0.1');
    t.after(() => socket.destroy());
    await new Promise((resolve) => socket.once('connect', resolve));
    let received = '';
    socket.setEncoding('latin1').on('data', (d: string) => (received += d));
    socket.write(
      `POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: ${now.apiKey}\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    const piece = `{"channel":"chat:huge","data":"${'y'.repeat(900)}`;
    for (let i = 0; i < 3 && !received.includes('413'); i++) {
      socket.write(`${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`);
      await sleep(20);
    }
    await waitUntil(() => received.includes('\r\n\r\n'), 3000, 'the refusal');
    assert.match(received, /^HTTP\/1\.1 413 /);
    assert.match(received, /"code":106,"message":"body larger than 2048 bytes"/);
    assert.equal((await now.api('history', { channel: 'chat:huge', limit: 0 })).body.result.offset, 0);
  });

  it('counts a kept-alive API connection against the fd budget between requests, not during one', async (t) => {
    // A server of its own: no other connection comes and goes meanwhile.
    const srv = await startTestServer();
    t.after(() => srv.close());
    const pending = srv.node.admission.pending;
    const socket = net.connect(srv.port, '127.0.0.1');
    t.after(() => socket.destroy());
    await new Promise((resolve) => socket.once('connect', resolve));
    await waitUntil(() => pending.size >= 1, 3000, 'the new connection pending');
    const idle = pending.size;
    let received = '';
    socket.setEncoding('latin1').on('data', (d: string) => (received += d));
    const body = '{"channel":"chat:fd","data":1}';
    // Headers complete, body not yet sent: the connection waits for nothing but this request.
    socket.write(
      `POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: ${srv.apiKey}\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    await waitUntil(() => pending.size === idle - 1, 3000, 'the request started');
    socket.write(body);
    await waitUntil(() => received.includes('"offset":1'), 3000, 'the answer');
    await waitUntil(() => pending.size === idle, 3000, 'pending again after the answer');
  });
});

describe('plainPublishBody', () => {
  const schema = z.object({ channel: channelField, ...publishFields }).refine(hasData, dataMissing);
  const fields = ['channel', 'data', 'skip_history', 'idempotency_key', 'version', 'version_epoch'] as const;

  it('accepts only what the body schema accepts, and reads it as the schema does (20,000 random bodies)', () => {
    const random = mulberry32(18);
    const odd: unknown[] = [null, '', 0, -0, -1, 1.5, 2 ** 53, true, [], {}, { k: 1 }, 'eyJuIjoxfQ=='];
    // Per key: values of the right type, mostly, and now and then anything.
    const good: Record<string, unknown[]> = {
      channel: ['chat:a', 'x'],
      data: [1, 'text', null, { n: 1 }, [1, 2], false],
      skip_history: [true, false],
      idempotency_key: ['', 'k1'],
      version: [0, -0, 7, Number.MAX_SAFE_INTEGER],
      version_epoch: ['', 'e1'],
      b64data: ['eyJuIjoxfQ=='],
      tags: [{ k: 'v' }],
      variants: [[]],
      other: ['ignored'],
    };
    const pick = (list: readonly unknown[]): unknown => list[Math.floor(random() * list.length)];
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const body: Record<string, unknown> = {};
      for (const [k, list] of Object.entries(good)) {
        const p =
          k === 'channel' || k === 'data' ? 0.9 : k === 'b64data' || k === 'tags' || k === 'variants' ? 0.1 : 0.4;
        if (random() < p) body[k] = random() < 0.85 ? pick(list) : pick(odd);
      }
      const raw: unknown = random() < 0.02 ? pick(odd) : body;
      const plain = plainPublishBody(raw);
      if (plain === undefined) continue;
      accepted++;
      const parsed = schema.safeParse(raw);
      assert.ok(parsed.success, `accepted ${JSON.stringify(raw)}, which the schema refuses`);
      for (const f of fields) assert.deepEqual(plain[f], parsed.data[f], `${f} of ${JSON.stringify(raw)}`);
    }
    assert.ok(accepted > 2000, `${accepted} accepted`);
  });
});
