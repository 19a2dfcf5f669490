/**
 * The server API's `batch` method and the newline-delimited form of `/api`, over real HTTP
 * against a started node: replies in command order, a bad command failing alone with nothing of
 * it applied, `parallel` really running commands at once (a broker that holds publishes until
 * released shows every command started before any finished) and `parallel: false` one after
 * another, http_api.batch_max_commands refusing a larger request whole, and every command
 * counted under its own method in bulwark_api_commands_total.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { ConfigInput } from '../src/config/schema.js';
import { MemoryBroker } from '../src/engine/broker-memory.js';
import type { PublishOptions } from '../src/engine/broker.js';
import type { RawJSON, StreamPosition } from '../src/protocol/types.js';
import { startTestServer, waitUntil, type TestServer } from './helpers/server.js';

async function start(t: TestContext, over: ConfigInput = {}, broker?: MemoryBroker): Promise<TestServer> {
  const srv = await startTestServer(over, broker ? { broker } : {});
  t.after(() => srv.close());
  return srv;
}

/** pipeline POSTs `text` to /api (the newline-delimited form) and returns the status and the lines. */
async function pipeline(srv: TestServer, text: string): Promise<{ status: number; lines: unknown[] }> {
  const res = await fetch(`${srv.httpUrl}/api`, { method: 'POST', headers: { 'x-api-key': srv.apiKey }, body: text });
  const body = await res.text();
  return { status: res.status, lines: body.split('\n').map((l) => JSON.parse(l) as unknown) };
}

/** dataOf lists the `data` of a channel's retained publications, oldest first. */
async function dataOf(srv: TestServer, channel: string): Promise<unknown[]> {
  const h = await srv.api('history', { channel, limit: -1 });
  assert.equal(h.status, 200, JSON.stringify(h.body));
  return (h.body.result.publications as { data: unknown }[]).map((p) => p.data);
}

/** counter reads one series of bulwark_api_commands_total from /metrics (0 when absent). */
async function counter(srv: TestServer, method: string, result: string): Promise<number> {
  const text = await (await fetch(`${srv.httpUrl}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`bulwark_api_commands_total{method="${method}",result="${result}",`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

/** GatedBroker is the memory broker with publishes held until `release()`, recording when each began. */
class GatedBroker extends MemoryBroker {
  readonly started: string[] = [];
  readonly finished: string[] = [];
  #open!: () => void;
  #gate = new Promise<void>((resolve) => (this.#open = resolve));

  release(): void {
    this.#open();
  }

  override async publish(channel: string, data: RawJSON, opts: PublishOptions): Promise<StreamPosition> {
    this.started.push(channel);
    await this.#gate;
    const pos = await super.publish(channel, data, opts);
    this.finished.push(channel);
    return pos;
  }
}

describe('server API batch', () => {
  it('answers each command in order, keyed by its method; a bad command fails alone and applies nothing', async (t) => {
    const srv = await start(t);
    const res = await srv.api('batch', {
      commands: [
        { publish: { channel: 'chat:a', data: { n: 1 } } },
        { broadcast: { channels: ['chat:a', 'chat:b'], data: { n: 2 } } },
        // Invalid: one bad channel in a broadcast publishes to none of them.
        { broadcast: { channels: ['chat:b', 'nope:x'], data: { n: 3 } } },
        { publish: { channel: 'chat:a' } },
        { rpc: { method: 'x' } },
        { publish: { channel: 'chat:b', data: { n: 4 } }, history: { channel: 'chat:b' } },
        'publish',
        { history: { channel: 'chat:a', limit: 10 } },
        { presence_stats: { channel: 'chat:a' } },
      ],
    });
    assert.equal(res.status, 200);
    const r = res.body.replies as Record<string, unknown>[];
    assert.equal(r.length, 9, JSON.stringify(res.body));
    assert.deepEqual(Object.keys(r[0] ?? {}), ['publish']);
    assert.equal((r[0]?.['publish'] as { offset: number }).offset, 1);
    assert.equal((r[1]?.['broadcast'] as { responses: unknown[] }).responses.length, 2);
    assert.deepEqual(r[2], { error: { code: 102, message: 'unknown channel' } });
    assert.deepEqual(r[3], { error: { code: 107, message: 'bad request: data: data or b64data required' } });
    assert.deepEqual(r[4], { error: { code: 104, message: 'method not found' } });
    assert.deepEqual(r[5], {
      error: { code: 107, message: 'bad request: a command holds one method, this one holds publish, history' },
    });
    assert.equal((r[6]?.['error'] as { code: number }).code, 107);
    // The history command ran after the publishes before it (parallel: false is in order).
    const hist = r[7]?.['history'] as { publications: { data: unknown }[]; offset: number };
    assert.deepEqual(
      hist.publications.map((p) => p.data),
      [{ n: 1 }, { n: 2 }],
    );
    assert.deepEqual(r[8], { presence_stats: { num_clients: 0, num_users: 0 } });
    assert.deepEqual(await dataOf(srv, 'chat:b'), [{ n: 2 }], 'the refused commands published nothing');
  });

  it('parallel: true starts every command before any finishes; parallel: false runs them one after another', async (t) => {
    const gated = new GatedBroker({ sweepIntervalMs: 0 });
    const srv = await start(t, {}, gated);
    const channels = ['chat:p1', 'chat:p2', 'chat:p3', 'chat:p4'];
    const parallel = srv.api('batch', {
      parallel: true,
      commands: channels.map((channel, n) => ({ publish: { channel, data: { n } } })),
    });
    await waitUntil(() => gated.started.length === channels.length, 3000, 'all four publishes started');
    assert.deepEqual(gated.finished, [], 'none finished while the broker holds them');
    gated.release();
    const res = await parallel;
    assert.deepEqual(
      (res.body.replies as { publish: { offset: number } }[]).map((r) => r.publish.offset),
      [1, 1, 1, 1],
      'replies in command order',
    );

    // In order: each publish starts only after the one before it finished.
    gated.started.length = 0;
    gated.finished.length = 0;
    const seq = await srv.api('batch', {
      parallel: false,
      commands: channels.map((channel, n) => ({ publish: { channel, data: { n } } })),
    });
    assert.equal(seq.body.replies.length, 4);
    assert.deepEqual(gated.started, channels);
    assert.deepEqual(gated.finished, channels);
  });

  it('more commands than http_api.batch_max_commands is refused with 106 and runs nothing; a bad body is 107', async (t) => {
    const srv = await start(t, { http_api: { batch_max_commands: 3 } });
    const four = [1, 2, 3, 4].map((n) => ({ publish: { channel: 'chat:cap', data: { n } } }));
    const res = await srv.api('batch', { commands: four });
    assert.deepEqual(res, {
      status: 200,
      body: {
        error: {
          code: 106,
          message: 'limit exceeded: 4 commands, more than http_api.batch_max_commands (3); nothing was run',
        },
      },
    });
    assert.deepEqual(await dataOf(srv, 'chat:cap'), []);
    const three = await srv.api('batch', { commands: four.slice(0, 3) });
    assert.equal(three.body.replies.length, 3);
    assert.deepEqual(await dataOf(srv, 'chat:cap'), [{ n: 1 }, { n: 2 }, { n: 3 }]);

    assert.deepEqual((await srv.api('batch', { commands: 5 })).body, {
      error: { code: 107, message: 'bad request: commands: Invalid input: expected array, received number' },
    });
    assert.deepEqual((await srv.api('batch', {})).body, { replies: [] });
    const broken = await srv.api('batch', undefined, { rawBody: '{"commands": [' });
    assert.equal(broken.status, 400);
  });

  it('a batch over http_api.max_body_size is refused with 413 and runs nothing', async (t) => {
    const srv = await start(t, { http_api: { max_body_size: 1024 } });
    const commands = Array.from({ length: 60 }, (_, n) => ({ publish: { channel: 'chat:big', data: { n } } }));
    const res = await srv.api('batch', { commands });
    assert.equal(res.status, 413);
    assert.equal(res.body.error.code, 106);
    assert.deepEqual(await dataOf(srv, 'chat:big'), []);
  });

  it('counts each command under its own method in bulwark_api_commands_total', async (t) => {
    const srv = await start(t);
    await srv.api('batch', {
      commands: [
        { publish: { channel: 'chat:m', data: 1 } },
        { publish: { channel: 'chat:m', data: 2 } },
        { publish: { channel: 'chat:m' } },
        { history: { channel: 'chat:m' } },
      ],
    });
    await pipeline(srv, '{"method":"publish","params":{"channel":"chat:m","data":3}}');
    assert.equal(await counter(srv, 'publish', 'ok'), 3);
    assert.equal(await counter(srv, 'publish', 'error'), 1);
    assert.equal(await counter(srv, 'history', 'ok'), 1);
    assert.equal(await counter(srv, 'batch', 'ok'), 1);
    assert.equal(await counter(srv, 'pipeline', 'ok'), 1);
  });
});

describe('server API newline-delimited form (POST /api)', () => {
  it('runs one command per line in order and answers one line each, echoing ids', async (t) => {
    const srv = await start(t);
    const body = [
      '{"id":1,"method":"publish","params":{"channel":"chat:nd","data":{"n":1}}}',
      '{"id":2,"method":"PUBLISH","params":{"channel":"chat:nd","data":{"n":2}}}',
      '',
      '{"params":{"channel":"chat:nd","data":{"n":3}}}',
      '{"id":4,"method":6,"params":{"channel":"chat:nd","limit":10}}',
      '{"id":5,"method":"nope","params":{}}',
      '{"id":6,"method":10,"params":{"method":"x"}}',
      '{"id":7,"method":"presence_stats","params":{"channel":"nope:x"}}',
      '  {"id": 8,\n   "method": "info"}  ',
    ].join('\n');
    const { status, lines } = await pipeline(srv, body);
    assert.equal(status, 200);
    assert.equal(lines.length, 8);
    assert.deepEqual(lines[0], {
      id: 1,
      result: { offset: 1, epoch: (lines[0] as { result: { epoch: string } }).result.epoch },
    });
    assert.equal((lines[1] as { result: { offset: number } }).result.offset, 2);
    assert.equal(
      (lines[2] as { result: { offset: number } }).result.offset,
      3,
      'no method is publish, as in Centrifugo',
    );
    const hist = lines[3] as { id: number; result: { publications: { data: { n: number } }[] } };
    assert.equal(hist.id, 4);
    assert.deepEqual(
      hist.result.publications.map((p) => p.data.n),
      [1, 2, 3],
    );
    assert.deepEqual(lines[4], { id: 5, error: { code: 104, message: 'method not found' } });
    assert.deepEqual(lines[5], { id: 6, error: { code: 104, message: 'method not found' } });
    assert.deepEqual(lines[6], { id: 7, error: { code: 102, message: 'unknown channel' } });
    assert.equal((lines[7] as { id: number; result: { nodes: unknown[] } }).result.nodes.length, 1);
  });

  it('refuses a malformed, empty or oversized request whole, before anything runs', async (t) => {
    const srv = await start(t, { http_api: { batch_max_commands: 2 } });
    const ok = '{"method":"publish","params":{"channel":"chat:whole","data":1}}';
    const malformed = await pipeline(srv, `${ok}\n{"method":"publish","params":`);
    assert.equal(malformed.status, 400);
    assert.deepEqual(malformed.lines, [
      { error: { code: 107, message: 'malformed JSON body: a command object is not closed' } },
    ]);
    const scalar = await pipeline(srv, `${ok}\n42`);
    assert.equal(scalar.status, 400);
    assert.equal((await pipeline(srv, '\n  \n')).status, 400);
    const three = await pipeline(srv, [ok, ok, ok].join('\n'));
    assert.deepEqual(three, {
      status: 200,
      lines: [
        {
          error: {
            code: 106,
            message: 'limit exceeded: 3 commands, more than http_api.batch_max_commands (2); nothing was run',
          },
        },
      ],
    });
    assert.deepEqual(await dataOf(srv, 'chat:whole'), [], 'nothing of a refused request was published');
    const unauthorized = await fetch(`${srv.httpUrl}/api`, { method: 'POST', body: ok });
    assert.equal(unauthorized.status, 401);
    assert.deepEqual(await dataOf(srv, 'chat:whole'), []);
  });
});
