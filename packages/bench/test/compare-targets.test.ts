/**
 * Tests of the three-server comparison: --target parsing, the informational Bulwark/Socket.IO
 * ratios, and the Socket.IO column of the fanout and connections tables.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ScenarioReport } from '../src/harness/report.js';
import { connectionsTable } from '../src/scenarios/connections/report.js';
import { connectionsSocketIoRatios } from '../src/scenarios/connections/verdict.js';
import { fanoutSocketIoRatios } from '../src/scenarios/fanout/verdict.js';
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
    requested: 10,
    connected: 10,
    failed: 0,
    connectSeconds: 1,
    connectRate: 10,
    handshakeMs: { count: 10, mean: 1, p50: 1, p90: 1, p99: 1, p999: 1, max: 1 },
    serverCpuMicros: serverCpuMicrosPerConnect * 10,
    serverCpuMicrosPerConnect,
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
