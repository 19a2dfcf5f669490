/**
 * Tests of the server comparison: --target and --format parsing, the informational
 * Bulwark/Socket.IO ratios, the Socket.IO column of the fanout and connections tables, and
 * Bulwark's Protobuf column next to its JSON one (ratios, targets, saturation).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ScenarioReport } from '../src/harness/report.js';
import { connectionsTable } from '../src/scenarios/connections/report.js';
import { saturation } from '../src/harness/comparison.js';
import { runOnTargets } from '../src/harness/on-targets.js';
import { bulwarkKey } from '../src/harness/report.js';
import { parseClientNames } from '../src/load/session-clients.js';
import {
  connectionsChecks,
  connectionsRatios,
  connectionsSocketIoRatios,
} from '../src/scenarios/connections/verdict.js';
import { fanoutRatios, fanoutSocketIoRatios } from '../src/scenarios/fanout/verdict.js';
import { parseTargets } from '../src/harness/targets.js';
import type { ConnectionsResult } from '../src/scenarios/connections/run.js';
import type { FanoutResult } from '../src/scenarios/fanout/types.js';

describe('parseTargets', () => {
  it('keeps both = raw + bulwark and adds all = raw + bulwark + socketio', () => {
    assert.deepEqual(parseTargets('both'), ['raw', 'bulwark']);
    assert.deepEqual(parseTargets('all'), ['raw', 'bulwark', 'socketio']);
    assert.deepEqual(parseTargets('socketio'), ['socketio']);
    assert.deepEqual(parseTargets('raw'), ['raw']);
    assert.throws(() => parseTargets('centrifugo'), /--target must be raw, bulwark, socketio, both or all/);
  });
});

/** A connections result: RSS and CPU per connection as given, everything else small and fixed. */
function conn(rssPerConnectionBytes: number, serverCpuMicrosPerConnect: number): ConnectionsResult {
  return {
    target: 'x',
    clients: 'x',
    requested: 10,
    connected: 10,
    failed: 0,
    connectSeconds: 1,
    connectRate: 10,
    handshakeMs: { count: 10, mean: 1, p50: 1, p90: 1, p99: 1, p999: 1, max: 1 },
    serverCpuMicros: serverCpuMicrosPerConnect * 10,
    serverCpuMicrosPerConnect,
    subscriptionsPerConnection: 1,
    serverCpuPercent: 1,
    loadgenCpuPercent: 1,
    rssBaselineBytes: 0,
    rssAfterBytes: rssPerConnectionBytes * 10,
    rssPerConnectionBytes,
    closedDuringSettle: 0,
    kernel: { tcpRetransSegs: 0, tcpLossProbes: 0, zeroWindow: 0, listenDrops: 0, backlogDrops: 0, softnetDrops: 0 },
  };
}

describe('Bulwark/Socket.IO ratios', () => {
  it('divides Bulwark by Socket.IO, and is empty when either did not produce a result', () => {
    const results = { bulwark: { result: conn(4096, 50) }, socketio: { result: conn(16384, 200) } };
    assert.deepEqual(connectionsSocketIoRatios(results), [
      { name: 'server memory per idle connection', bulwark: 4096, socketio: 16384, ratio: 0.25 },
      { name: 'server CPU per connect (JWT included)', bulwark: 50, socketio: 200, ratio: 0.25 },
    ]);
    assert.deepEqual(connectionsSocketIoRatios({ bulwark: results.bulwark, socketio: { error: 'boom' } }), []);
    assert.deepEqual(connectionsSocketIoRatios({ bulwark: results.bulwark }), []);
  });

  it('compares fanout CPU per delivery at the fixed load', () => {
    const fan = (us: number) => ({ result: { fixed: { serverCpuMicrosPerDelivery: us } } as FanoutResult });
    assert.deepEqual(fanoutSocketIoRatios({ bulwark: fan(3), socketio: fan(4) }), [
      { name: 'server CPU per delivered message', bulwark: 3, socketio: 4, ratio: 0.75 },
    ]);
    assert.deepEqual(fanoutSocketIoRatios({ raw: fan(1), bulwark: fan(3) }), []);
  });
});

describe('connectionsTable with Socket.IO', () => {
  const base = {
    scenario: 'connections',
    timestamp: 't',
    quick: true,
    machine: {} as ScenarioReport<ConnectionsResult>['machine'],
    pinning: { serverCpu: null, loadgenCpu: null },
    options: {},
    ratios: [],
  };

  it('adds a socket.io column and the bulwark/socket.io ratio when Socket.IO ran', () => {
    const results = {
      raw: { result: conn(2048, 40) },
      bulwark: { result: conn(4096, 50) },
      socketio: { result: conn(16384, 200) },
    };
    const table = connectionsTable({ ...base, results, socketioRatios: connectionsSocketIoRatios(results) });
    const lines = table.split('\n');
    const header = lines[1] as string;
    assert.match(header, /^metric\s+raw ws\s+bulwark\s+socket\.io\s+bulwark\/raw\s+target\s+bulwark\/socket\.io$/);
    const rss = lines.find((l) => l.startsWith('server RSS per connection')) as string;
    assert.match(rss, /2\.00\s+4\.00\s+16\.00\s+.*0\.25×$/);
    const cpu = lines.find((l) => l.startsWith('server CPU per connect')) as string;
    assert.match(cpu, /40\.0\s+50\.0\s+200\.0\s+.*0\.25×$/);
  });

  it('keeps the original two-server layout when Socket.IO did not run', () => {
    const table = connectionsTable({ ...base, results: { raw: { result: conn(2048, 40) } } });
    assert.match(table.split('\n')[1] as string, /^metric\s+raw ws\s+bulwark\s+bulwark\/raw\s+target$/);
    assert.doesNotMatch(table, /socket\.io/);
  });

  it('shows a failed Socket.IO run as (error) with a note', () => {
    const table = connectionsTable({
      ...base,
      results: { bulwark: { result: conn(4096, 50) }, socketio: { error: 'could not start' } },
    });
    assert.match(table, /\(error\)/);
    assert.match(table, /socketio: ERROR: could not start/);
  });
});

describe('Bulwark with Protobuf clients next to JSON', () => {
  const base = {
    scenario: 'connections',
    timestamp: 't',
    quick: false,
    machine: {} as ScenarioReport<ConnectionsResult>['machine'],
    pinning: { serverCpu: null, loadgenCpu: null },
    options: {},
  };
  const results = {
    raw: { result: conn(2048, 40) },
    bulwark: { result: conn(4096, 50) },
    'bulwark-protobuf': { result: conn(3072, 100) },
  };

  it('reads --format: both, one kind, or a list; refuses unknown kinds', () => {
    assert.deepEqual(parseClientNames('both'), ['json', 'protobuf']);
    assert.deepEqual(parseClientNames('protobuf'), ['protobuf']);
    assert.deepEqual(parseClientNames('protobuf,json,protobuf'), ['protobuf', 'json']);
    assert.deepEqual(parseClientNames('all'), ['json', 'protobuf', 'http_stream', 'sse']);
    assert.deepEqual(parseClientNames('sse,json'), ['sse', 'json']);
    assert.throws(
      () => parseClientNames('grpc'),
      /--format must be both, all or a list of json, protobuf, http_stream, sse/,
    );
  });

  it('runs Bulwark once per kind, in its own column, on its own server', async () => {
    const seen: string[] = [];
    const ctx = { targets: parseTargets('both'), bulwark: {}, workers: 1, log: () => undefined };
    const r = await runOnTargets(
      'x',
      ctx,
      async (s, kind) => {
        seen.push(`${s.name}:${kind}:${s.pid}`);
        return { kind };
      },
      1,
      ['json', 'protobuf'],
    );
    assert.deepEqual(Object.keys(r), ['raw', 'bulwark', 'bulwark-protobuf']);
    assert.deepEqual(r['bulwark-protobuf'], { result: { kind: 'protobuf' } });
    assert.deepEqual(
      seen.map((x) => x.replace(/:\d+$/, '')),
      ['raw:json', 'bulwark:json', 'bulwark:protobuf'],
    );
    assert.equal(new Set(seen).size, 3, 'a fresh server (pid) per column');
    assert.equal(bulwarkKey('json'), 'bulwark');
  });

  it('compares the Protobuf column with raw ws and with JSON, each with its target', () => {
    const ratios = connectionsRatios(results);
    const find = (label: string | undefined, name: string) => ratios.find((x) => x.label === label && x.name === name);
    assert.equal(find(undefined, 'server memory per idle connection')?.ratio, 2);
    assert.deepEqual(find('Bulwark protobuf/raw', 'server memory per idle connection'), {
      name: 'server memory per idle connection',
      label: 'Bulwark protobuf/raw',
      bulwark: 3072,
      raw: 2048,
      ratio: 1.5,
      target: 1.2,
      met: false,
    });
    assert.equal(find('Bulwark protobuf/raw', 'server CPU per connect (JWT included)')?.ratio, 2.5);
    assert.equal(find('Bulwark protobuf/json', 'server memory per idle connection')?.ratio, 0.75);
    const checks = connectionsChecks(results, ratios).map((c) => c.name);
    assert.ok(checks.includes('bulwark-protobuf: connections failed'));
    assert.ok(checks.includes('Bulwark protobuf/json server memory per idle connection'));
  });

  it('adds a column per kind and lists the labelled ratios under the table', () => {
    const table = connectionsTable({ ...base, results, ratios: connectionsRatios(results) });
    const lines = table.split('\n');
    assert.match(lines[1] as string, /^metric\s+raw ws\s+bulwark json\s+bulwark protobuf\s+bulwark\/raw\s+target$/);
    assert.match(
      lines.find((l) => l.startsWith('server RSS per connection')) as string,
      /2\.00\s+4\.00\s+3\.00\s+2\.00×/,
    );
    assert.match(table, /Bulwark protobuf\/json server memory per idle connection: 0\.75× \(target ≤ 1\.5×: met\)/);
    assert.match(
      table,
      /Bulwark protobuf\/raw server CPU per connect \(JWT included\): 2\.50× \(target ≤ 1\.5×: NOT met\)/,
    );
    assert.match(table, /saturated while connecting.*neither\s+neither\s+neither/);
  });

  it('fanout: Protobuf CPU per delivery is compared with JSON’s (target ≤ 1.0×)', () => {
    const fan = (us: number) => ({ result: { fixed: { serverCpuMicrosPerDelivery: us } } as FanoutResult });
    const ratios = fanoutRatios({ raw: fan(2), bulwark: fan(2), 'bulwark-protobuf': fan(1.8) });
    assert.deepEqual(
      ratios.map((r) => [r.label ?? 'Bulwark/raw', r.ratio, r.met]),
      [
        ['Bulwark/raw', 1, true],
        ['Bulwark protobuf/raw', 0.9, true],
        ['Bulwark protobuf/json', 0.9, true],
      ],
    );
  });

  it('says which side saturated', () => {
    assert.equal(saturation(95, 20), 'server');
    assert.equal(saturation(20, 95), 'load generator');
    assert.equal(saturation(90, 90), 'both');
    assert.equal(saturation(89, 10), 'neither');
  });
});
