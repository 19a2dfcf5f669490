/**
 * Tests of the api-publish scenario (issue 18): its options, the request bodies and the reading
 * of replies (what counts as an error), the offset ledger, the keep-alive client's framing
 * against scripted servers (replies in pieces, replies it must refuse), the ratios, checks and
 * table, and one short real run against the HTTP floor and Bulwark.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { readFlags } from '../src/harness/flags.js';
import { Progress } from '../src/harness/progress.js';
import type { ScenarioContext } from '../src/harness/scenario.js';
import { bulwarkAvailable, startServer } from '../src/harness/targets.js';
import {
  KeepAliveConnection,
  decodeChunked,
  postRequest,
  requestHead,
  type HttpReply,
} from '../src/load/keepalive-http.js';
import { apiPublishConfig, apiPublishScenario } from '../src/scenarios/api-publish/index.js';
import { apiPublishOptions, parseRuns } from '../src/scenarios/api-publish/options.js';
import { apiPublishTable } from '../src/scenarios/api-publish/report.js';
import {
  OffsetLedger,
  batchBody,
  channelNames,
  publishParams,
  readBatchReply,
  readPublishReply,
} from '../src/scenarios/api-publish/requests.js';
import type { ApiRunResult } from '../src/scenarios/api-publish/types.js';
import { apiChecks, apiRatios, type ApiOutcomes } from '../src/scenarios/api-publish/verdict.js';

const options = (values: Record<string, string | boolean>, quick = false) =>
  apiPublishOptions({ flags: readFlags(values, quick) });

describe('api-publish options', () => {
  it('defaults to the issue: 50 connections, 100 channels, batches of 50, all three runs', () => {
    const o = options({});
    assert.deepEqual(o.runs, ['floor', 'bulwark', 'batch']);
    assert.equal(o.connections, 50);
    assert.equal(o.channels, 100);
    assert.equal(o.batchSize, 50);
    assert.equal(o.ratioTarget, 0.8);
    assert.equal(o.seconds, 10);
    assert.equal(options({}, true).seconds, 2);
    assert.equal(options({ duration: '4', 'batch-parallel': true }, true).seconds, 4);
    assert.equal(options({ 'batch-parallel': true }).batchParallel, true);
  });

  it('reads --runs in run order and refuses unknown names', () => {
    assert.deepEqual(parseRuns('batch,floor'), ['floor', 'batch']);
    assert.deepEqual(parseRuns(' bulwark '), ['bulwark']);
    assert.throws(() => parseRuns('floor,redis'), /unknown run "redis"/);
    assert.throws(() => parseRuns(','), /at least one run/);
  });

  it('refuses a history_ttl Bulwark would refuse, and a batch of 0', () => {
    assert.throws(() => options({ 'history-ttl': '0s' }), /positive duration/);
    assert.throws(() => options({ 'history-ttl': '5 minutes' }), /positive duration/);
    assert.equal(options({ 'history-ttl': '5m' }).historyTtl, '5m');
    assert.throws(() => options({ 'batch-size': '0' }), /--batch-size must be a number ≥ 1/);
  });

  it('configures a history namespace and admits batches above the default limit', () => {
    const c = apiPublishConfig({ historySize: 10, historyTtl: '60s', batchSize: 2000 }) as {
      channel: { namespaces: Array<Record<string, unknown>> };
      http_api: { batch_max_commands: number };
    };
    assert.deepEqual(c.channel.namespaces[0], {
      name: 'bench',
      history_size: 10,
      history_ttl: '60s',
      allow_subscribe_for_client: true,
    });
    assert.equal(c.http_api.batch_max_commands, 2000);
  });
});

describe('api-publish requests and replies', () => {
  const ok = (body: string, status = 200): HttpReply => ({ status, body });

  it('sends JSON a server can parse: one publish, and a batch in command order', () => {
    const names = channelNames('t1', 3);
    assert.deepEqual(names, ['bench:api-t1-0', 'bench:api-t1-1', 'bench:api-t1-2']);
    const one = JSON.parse(publishParams('bench:a', 7, 'xx')) as {
      channel: string;
      data: { seq: number; pad: string };
    };
    assert.equal(one.channel, 'bench:a');
    assert.equal(one.data.seq, 7);
    assert.equal(one.data.pad, 'xx');
    const batch = JSON.parse(
      batchBody(
        [
          ['bench:api0', 1],
          ['bench:api1', 2],
        ],
        '',
        true,
      ),
    ) as { commands: Array<{ publish: { channel: string } }>; parallel: boolean };
    assert.deepEqual(
      batch.commands.map((c) => c.publish.channel),
      ['bench:api0', 'bench:api1'],
    );
    assert.equal(batch.parallel, true);
    assert.equal('parallel' in (JSON.parse(batchBody([['bench:a', 1]], '', false)) as object), false);
  });

  it('reads a publish reply, and counts every other answer as an error', () => {
    assert.deepEqual(readPublishReply(ok('{"result":{"offset":4,"epoch":"e"}}')), { offsets: [4] });
    const errors = [
      ok('{"error":{"code":101,"message":"unauthorized"}}', 401),
      ok('{"error":{"code":102,"message":"unknown channel"}}'),
      ok('not json'),
      ok('{"result":{}}'),
      ok('{"result":{"offset":0}}'),
      ok('null'),
    ].map((r) => readPublishReply(r));
    for (const e of errors) assert.ok('error' in e, JSON.stringify(e));
    assert.match((errors[0] as { error: string }).error, /^HTTP 401/);
    assert.match((errors[1] as { error: string }).error, /unknown channel/);
  });

  it('reads a batch reply, failing it on one failed command or a missing reply', () => {
    const two = '{"replies":[{"publish":{"offset":1,"epoch":"e"}},{"publish":{"offset":9,"epoch":"e"}}]}';
    assert.deepEqual(readBatchReply(ok(two), 2), { offsets: [1, 9] });
    assert.ok('error' in readBatchReply(ok(two), 3));
    const oneFailed = '{"replies":[{"publish":{"offset":1}},{"error":{"code":102,"message":"unknown channel"}}]}';
    assert.match((readBatchReply(ok(oneFailed), 2) as { error: string }).error, /command failed.*unknown channel/);
    assert.ok('error' in readBatchReply(ok('{"error":{"code":106,"message":"limit exceeded"}}'), 2));
    assert.ok('error' in readBatchReply(ok(two, 500), 2));
  });

  it('the offset ledger finds a channel that lost a publish or applied one twice', () => {
    const l = new OffsetLedger(3);
    l.add(0, 1);
    l.add(0, 2);
    l.add(1, 1);
    assert.equal(l.mismatches(), 0);
    assert.equal(l.total, 3);
    l.add(2, 2); // offset 1 of channel 2 was never acknowledged: lost, or someone else's
    assert.equal(l.mismatches(), 1);
    l.add(1, 1); // acknowledged twice with one offset
    assert.equal(l.mismatches(), 2);
    assert.equal(l.ackedOn(1), 2);
  });
});

/** scripted starts a TCP server that answers each request with `reply(n)` (n from 0), split by `split`. */
async function scripted(reply: (n: number) => string, split = 0): Promise<{ port: number; close: () => void }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    let n = 0;
    s.on('data', (chunk) => {
      if (!chunk.includes('\r\n\r\n')) return; // the test's requests arrive whole
      const text = reply(n++);
      if (split <= 0) s.write(text);
      else {
        // Byte by byte groups of `split`, each in its own segment, to exercise the reassembly.
        let i = 0;
        const next = () => {
          if (i >= text.length) return;
          s.write(text.slice(i, i + split));
          i += split;
          setTimeout(next, 1);
        };
        next();
      }
    });
    s.on('error', () => undefined);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return {
    port: (srv.address() as AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      srv.close();
    },
  };
}

function send(c: KeepAliveConnection, request: string): Promise<HttpReply> {
  return new Promise((resolve, reject) => c.send(request, (err, r) => (err || !r ? reject(err) : resolve(r))));
}

describe('KeepAliveConnection', () => {
  const req = postRequest(requestHead('/api/publish', 'h', { 'X-API-Key': 'k' }), '{"channel":"a","data":1}');

  it('writes a well-formed request: a Node http server reads it (and answers chunked), over one kept-alive socket', async () => {
    const seen: Array<{ url?: string; key?: string; body: string; socket: net.Socket }> = [];
    const srv = http.createServer((rq, rs) => {
      let body = '';
      rq.on('data', (c: Buffer) => (body += c.toString()));
      rq.on('end', () => {
        seen.push({ url: rq.url, key: rq.headers['x-api-key'] as string, body, socket: rq.socket });
        // A body after writeHead without a length: Node sends it chunked.
        rs.writeHead(200, { 'content-type': 'application/json' }).end(`{"n":${seen.length}}`);
      });
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const c = await KeepAliveConnection.connect((srv.address() as AddressInfo).port);
    try {
      for (let i = 1; i <= 20; i++) assert.deepEqual(await send(c, req), { status: 200, body: `{"n":${i}}` });
      assert.equal(seen.length, 20);
      assert.deepEqual(seen[0] && { url: seen[0].url, key: seen[0].key, body: seen[0].body }, {
        url: '/api/publish',
        key: 'k',
        body: '{"channel":"a","data":1}',
      });
      assert.ok(
        seen.every((s) => s.socket === seen[0]?.socket),
        'every request on one connection',
      );
      assert.throws(() => {
        c.send(req, () => undefined);
        c.send(req, () => undefined);
      }, /already in flight/);
    } finally {
      c.close();
      srv.close();
    }
  });

  it('reassembles a reply that arrives in pieces, a multi-byte body included', async () => {
    const body = '{"result":{"offset":1,"epoch":"é"}}';
    const text = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const s = await scripted(() => text, 7);
    const c = await KeepAliveConnection.connect(s.port);
    try {
      assert.deepEqual(await send(c, req), { status: 200, body });
      assert.deepEqual(await send(c, req), { status: 200, body });
    } finally {
      c.close();
      s.close();
    }
  });

  it('decodes chunked bodies in pieces, with extensions and trailers', async () => {
    const text = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\n{"a\r\n4\r\n":1}\r\n0\r\nT: v\r\n\r\n';
    const s = await scripted(() => text, 5);
    const c = await KeepAliveConnection.connect(s.port);
    try {
      assert.deepEqual(await send(c, req), { status: 200, body: '{"a":1}' });
      assert.deepEqual(await send(c, req), { status: 200, body: '{"a":1}' });
    } finally {
      c.close();
      s.close();
    }
    assert.equal(decodeChunked(Buffer.from('2\r\n{}\r\n0\r\n'), 0), 'incomplete');
    assert.equal(decodeChunked(Buffer.from('2\r\n{}XX0\r\n\r\n'), 0), 'malformed');
    assert.equal(decodeChunked(Buffer.from('zz\r\n'), 0), 'malformed');
  });

  it('fails a reply it cannot frame, and every request after it', async () => {
    const unframed = await scripted(() => 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{}');
    const extra = await scripted(() => 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1');
    const badChunk = await scripted(() => 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}!!');
    try {
      for (const [s, why] of [
        [unframed, /without Content-Length or chunked body/],
        [extra, /bytes after the reply/],
        [badChunk, /malformed chunked reply/],
      ] as const) {
        const c = await KeepAliveConnection.connect(s.port);
        await assert.rejects(send(c, req), why);
        assert.equal(c.closed, true);
        await assert.rejects(send(c, req), why);
      }
    } finally {
      unframed.close();
      extra.close();
      badChunk.close();
    }
  });

  it('fails the request in flight when the server closes the connection', async () => {
    const s = await scripted(() => '');
    const c = await KeepAliveConnection.connect(s.port);
    const pending = send(c, req);
    await new Promise((r) => setTimeout(r, 20));
    s.close();
    await assert.rejects(pending, /closed by the server/);
  });
});

/** A run result with the given throughput and CPU, everything else clean. */
function result(run: ApiRunResult['run'], publishesPerSec: number, cpuPerSecond: number): ApiRunResult {
  return {
    run,
    requestKind: 'POST /api/publish',
    connections: 50,
    channels: 100,
    publishesPerRequest: 1,
    seconds: 10,
    requests: publishesPerSec * 10,
    publishes: publishesPerSec * 10,
    requestsPerSec: publishesPerSec,
    publishesPerSec,
    publishesBySecond: [publishesPerSec],
    latencyMs: { count: 1, mean: 1, p50: 1, p90: 1, p99: 2, p999: 2, max: 3 },
    errors: 0,
    errorSamples: [],
    acknowledged: publishesPerSec * 12,
    offsetMismatches: 0,
    serverCpuMicros: 1e7,
    serverCpuPercent: 100,
    serverCpuMicrosPerPublish: 1e6 / cpuPerSecond,
    publishesPerServerCpuSecond: cpuPerSecond,
    serverRunQueueWaitPercent: 0,
    loadgenRunQueueWaitPercent: 0,
    loadgenCpuPercent: 40,
    loadgenLoopDelayMs: { p99: 1, max: 2 },
    saturated: 'server',
  };
}

describe('api-publish verdict and report', () => {
  const targets = { ratioTarget: 0.8, batchRatioTarget: 2 };

  it('divides by the floor per server CPU-second (with targets) and per second (informational)', () => {
    const outcomes: ApiOutcomes = {
      floor: { result: result('floor', 44_000, 44_000) },
      bulwark: { result: result('bulwark', 22_000, 40_000) },
      batch: { result: result('batch', 60_000, 80_000) },
    };
    const ratios = apiRatios(outcomes, targets);
    assert.deepEqual(
      ratios.map((r) => [r.name, r.ratio, r.met]),
      [
        ['Bulwark/floor publishes per server CPU-second', 0.91, true],
        ['Bulwark/floor publishes/s', 0.5, undefined],
        ['Bulwark batch/floor publishes per server CPU-second', 1.82, false],
        ['Bulwark batch/floor publishes/s', 1.36, undefined],
      ],
    );
    const checks = apiChecks(outcomes, ratios, false);
    assert.deepEqual(
      checks.filter((c) => !c.pass).map((c) => c.name),
      ['Bulwark batch/floor publishes per server CPU-second'],
    );
    assert.equal(
      apiChecks(outcomes, ratios, true).some((c) => c.unit === '×'),
      false,
      'no ratio checks in quick runs',
    );
    assert.deepEqual(apiRatios({ bulwark: outcomes.bulwark }, targets), [], 'no floor, no ratio');
  });

  it('fails a run with an error, a wrong offset, a missing delivery or nothing measured', () => {
    const bad = { ...result('bulwark', 10, 10), errors: 1, offsetMismatches: 2, delivered: 5, expectedDeliveries: 6 };
    const idle = { ...result('floor', 0, 0), publishes: 0 };
    const failed = apiChecks({ floor: { result: idle }, bulwark: { result: bad } }, [], true).filter((c) => !c.pass);
    assert.deepEqual(
      failed.map((c) => c.name),
      [
        'floor: publishes acknowledged in the window',
        'bulwark: errors (non-200, error in body, lost)',
        'bulwark: channels whose top offset ≠ publishes acknowledged',
        'bulwark: deliveries counted by the subscribers',
      ],
    );
  });

  it('renders one column per run asked for, with ratio lines and notes', () => {
    const outcomes: ApiOutcomes = {
      floor: { result: result('floor', 44_000, 44_000) },
      bulwark: { result: { ...result('bulwark', 22_000, 40_000), serverRunQueueWaitPercent: 30 } },
      batch: { error: 'boom' },
    };
    const o = {
      runs: ['floor', 'bulwark', 'batch'] as ApiRunResult['run'][],
      connections: 50,
      channels: 100,
      seconds: 10,
      warmupSeconds: 3,
      historySize: 100,
    };
    const table = apiPublishTable(outcomes, apiRatios(outcomes, targets), o);
    assert.match(table, /metric\s+node http floor\s+bulwark \/api\/publish\s+bulwark \/api\/batch/);
    assert.match(table, /publishes\/s\s+44,000\s+22,000\s+\(error\)/);
    assert.match(table, /Bulwark\/floor publishes per server CPU-second: 0\.91× \(target ≥ 0\.8×: met\)/);
    assert.match(table, /batch: ERROR: boom/);
    assert.match(table, /waited for a CPU ≥ 10% of the window \(bulwark\)/);
    const two = apiPublishTable(outcomes, [], { ...o, runs: ['floor'] });
    assert.doesNotMatch(two, /bulwark \/api\/publish/);
  });
});

describe('the HTTP floor server', () => {
  it('answers publishes with per-channel offsets, refuses bad requests, and serves /ready', async () => {
    const floor = await startServer('floor');
    const c = await KeepAliveConnection.connect(floor.port);
    try {
      const head = requestHead('/api/publish', 'h', {});
      const offsets = [];
      for (const ch of [0, 1, 0, 0]) {
        const r = readPublishReply(await send(c, postRequest(head, publishParams(`bench:${ch}`, 1, ''))));
        offsets.push('offsets' in r ? r.offsets[0] : r.error);
      }
      assert.deepEqual(offsets, [1, 1, 2, 3]);
      const noData = readPublishReply(await send(c, postRequest(head, '{"channel":"x"}')));
      assert.match('error' in noData ? noData.error : '', /"code":107/);
      assert.equal((await send(c, postRequest(head, '{oops'))).status, 400);
    } finally {
      c.close();
      await floor.stop();
    }
    assert.equal(floor.exited(), true);
  });
});

describe('the api-publish scenario on the floor and a real Bulwark', () => {
  it('passes every check on a tiny run, subscribers counting every publish', { timeout: 60_000 }, async (t) => {
    if (!bulwarkAvailable()) return t.skip('Bulwark is not built (npm run build)');
    const values = {
      duration: '1',
      warmup: '0.3',
      connections: '4',
      channels: '6',
      'batch-size': '5',
      'verify-subscribers': true,
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
    const out = await apiPublishScenario.run(ctx);
    assert.deepEqual(
      out.checks.filter((c) => !c.pass),
      [],
    );
    const runs = (out.results as { runs: ApiOutcomes }).runs;
    for (const key of ['floor', 'bulwark', 'batch'] as const) {
      const o = runs[key];
      assert.ok(o && 'result' in o, `${key}: ${JSON.stringify(o)}`);
      assert.ok(o.result.publishes > 0);
      assert.equal(o.result.errors, 0);
    }
    const bw = runs.bulwark as { result: ApiRunResult };
    assert.ok(bw.result.delivered !== undefined && bw.result.delivered === bw.result.acknowledged);
    assert.equal((runs.batch as { result: ApiRunResult }).result.publishesPerRequest, 5);
    assert.equal((runs.floor as { result: ApiRunResult }).result.delivered, undefined, 'no subscribers on the floor');
    assert.ok(out.checks.length >= 10);
  });
});
