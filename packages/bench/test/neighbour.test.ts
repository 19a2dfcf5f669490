/**
 * Tests of the neighbour scenario: its verdict (the default variant must refuse no one; the
 * lag-only variant is described, not judged), reading counters and the server's shedding log,
 * the threshold flags, the two variants' configs, the probe's refused-read test, and the CPU
 * hogs — that they spin, stop, and never outlive the process that started them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startHogs } from '../src/harness/cpu-hogs.js';
import type { LatencySummary } from '../src/harness/stats.js';
import { sleep } from '../src/harness/util.js';
import { lagMs } from '../src/scenarios/neighbour/options.js';
import { isRefusedRead } from '../src/scenarios/neighbour/probe.js';
import { counterDelta, serverConfig, sheddingLogLines, variantPlans } from '../src/scenarios/neighbour/run.js';
import type { NeighbourResult, NeighbourVariant, VariantKey } from '../src/scenarios/neighbour/types.js';
import { judgeNeighbour, MIN_COMPLETED_PERCENT, neighbourChecks } from '../src/scenarios/neighbour/verdict.js';

const latency: LatencySummary = { count: 100, mean: 5, p50: 4, p90: 8, p99: 12, p999: 20, max: 20 };

/** A variant whose 100 probes all completed, with nothing refused or shed. */
function variant(key: VariantKey, over: Partial<NeighbourVariant> = {}): NeighbourVariant {
  return {
    key,
    label: key,
    shedding: key === 'lag-only' ? { utilization: 0 } : {},
    attempts: 100,
    completed: 100,
    refusedUpgrades: 0,
    refusedByStatus: {},
    refusedReads: 0,
    failed: 0,
    failedByKind: {},
    firstFailure: undefined,
    handshakeMs: latency,
    historyMs: latency,
    sheddingStarted: {},
    overloadRejections: {},
    sheddingLog: [],
    serverLagP99Ms: { max: 21, median: 17 },
    hogsCpuPercent: 92,
    hogsRunning: 6,
    serverCpuPercent: 7,
    loadgenCpuPercent: 6,
    loadgenLoopDelayMs: { p99: 1, max: 2 },
    ...over,
  };
}

describe('neighbour verdict', () => {
  it('passes when the default variant refused no one and the lag-only one shed', () => {
    const v = judgeNeighbour([
      variant('default'),
      variant('lag-only', { refusedUpgrades: 38, completed: 62, sheddingStarted: { connect: 4 } }),
    ]);
    assert.equal(v.pass, true, v.reasons.join('; '));
    assert.equal(v.lagOnlyShed, true);
    assert.match(v.lagOnlyNote, /refused 38 upgrades .* shedding turned on 4 times/);
  });

  it('passes, but says the run proved little, when lag alone refused no one either', () => {
    const v = judgeNeighbour([variant('default'), variant('lag-only')]);
    assert.equal(v.pass, true);
    assert.equal(v.lagOnlyShed, false);
    assert.match(v.lagOnlyNote, /did not delay the loop enough to shed .* at most 21 ms/);
  });

  it('does not judge the lag-only variant', () => {
    const v = judgeNeighbour([variant('default'), variant('lag-only', { refusedUpgrades: 100, completed: 0 })]);
    assert.equal(v.pass, true);
  });

  it('fails on any refusal or shedding of the default variant, each with its reason', () => {
    const cases: Array<[Partial<NeighbourVariant>, RegExp]> = [
      [{ refusedUpgrades: 1, completed: 99 }, /1 upgrades refused/],
      [{ refusedReads: 2, completed: 98 }, /2 reads refused \(111\)/],
      [{ sheddingStarted: { connect: 1, read: 1 } }, /shedding turned on 2 times/],
      [{ completed: 94, failed: 6 }, /only 94 of 100 probes completed/],
      [{ attempts: 0, completed: 0 }, /no probe was made/],
    ];
    for (const [over, reason] of cases) {
      const v = judgeNeighbour([variant('default', over), variant('lag-only')]);
      assert.equal(v.pass, false, JSON.stringify(over));
      assert.match(v.reasons.join('; '), reason);
    }
    assert.equal(judgeNeighbour([variant('lag-only')]).pass, false, 'no default variant');
  });

  it('checks restate the default variant, at exactly the completion threshold too', () => {
    const result = (d: NeighbourVariant): NeighbourResult => {
      const variants = [d, variant('lag-only', { refusedUpgrades: 5 })];
      return { variants, verdict: judgeNeighbour(variants) };
    };
    const ok = neighbourChecks({ bulwark: { result: result(variant('default', { completed: 95, failed: 5 })) } });
    assert.deepEqual(
      ok.map((c) => [c.value, c.pass]),
      [
        [0, true],
        [0, true],
        [0, true],
        [MIN_COMPLETED_PERCENT, true],
      ],
    );
    const bad = neighbourChecks({
      bulwark: { result: result(variant('default', { refusedReads: 3, sheddingStarted: { read: 1 } })) },
    });
    assert.deepEqual(
      bad.filter((c) => !c.pass).map((c) => c.name),
      ['default: history reads refused (111)', 'default: shedding levels turned on (/metrics)'],
    );
    assert.deepEqual(neighbourChecks({ bulwark: { error: 'boom' } }), []);
    const none = neighbourChecks({ bulwark: { result: { variants: [], verdict: judgeNeighbour([]) } } });
    assert.deepEqual(
      none.map((c) => c.pass),
      [false],
    );
  });
});

describe('neighbour measurement helpers', () => {
  it('counterDelta is the growth per label over the window, filtered', () => {
    const before = [
      'bulwark_rejections_total{reason="overload"} 3',
      'bulwark_rejections_total{reason="origin"} 1',
      'bulwark_shedding_started_total{level="connect"} 1',
    ].join('\n');
    const after = [
      'bulwark_rejections_total{reason="overload"} 10',
      'bulwark_rejections_total{reason="overload_read"} 4',
      'bulwark_rejections_total{reason="origin"} 9',
      'bulwark_shedding_started_total{level="connect"} 1',
    ].join('\n');
    assert.deepEqual(
      counterDelta(before, after, 'bulwark_rejections_total', 'reason', (r) => r.startsWith('overload')),
      { overload: 7, overload_read: 4 },
    );
    assert.deepEqual(counterDelta(before, after, 'bulwark_shedding_started_total', 'level'), {});
  });

  it("sheddingLogLines reads the server's shedding lines and skips everything else", () => {
    const lines = [
      '{"level":40,"msg":"load shedding: event loop lagging, new connections refused","shedLevel":"connect","lagMs":58,"utilization":0.86}',
      '{"level":40,"msg":"connections refused: overload","kind":"admission.overload"}',
      'not json',
      '[process exited: code=0 signal=null]',
    ];
    assert.deepEqual(sheddingLogLines(lines), [
      {
        msg: 'load shedding: event loop lagging, new connections refused',
        level: 'connect',
        lagMs: 58,
        utilization: 0.86,
      },
    ]);
  });

  it('lagMs reads the threshold flags as Bulwark durations and refuses the rest', () => {
    assert.equal(lagMs('connect-lag', '50ms'), 50);
    assert.equal(lagMs('connect-lag', '0.1s'), 100);
    assert.equal(lagMs('read-lag', '2.5ms'), 2.5);
    for (const bad of ['50', '0ms', '-5ms', '1m', 'fast']) {
      assert.throws(() => lagMs('read-lag', bad), /--read-lag must be/, bad);
    }
  });

  it('the variants differ only in utilization and min_cpu: the default one leaves them to the server', () => {
    const [dflt, lagOnly] = variantPlans({ connectLag: '10ms', readLag: '20ms' });
    assert.deepEqual(dflt?.shedding, { connect_lag: '10ms', read_lag: '20ms' });
    assert.deepEqual(lagOnly?.shedding, { connect_lag: '10ms', read_lag: '20ms', utilization: 0, min_cpu: 0 });
    const cfg = serverConfig({ historySize: 10 }, lagOnly!) as {
      channel: { namespaces: Array<Record<string, unknown>> };
      protection: { shedding: unknown };
    };
    assert.equal(cfg.channel.namespaces[0]?.allow_history_for_client, true);
    assert.deepEqual(cfg.protection.shedding, lagOnly?.shedding);
  });

  it('isRefusedRead tells error 111 from other failures', () => {
    assert.equal(isRefusedRead('error 111: too many requests: server overloaded'), true);
    assert.equal(isRefusedRead('error 1110: other'), false);
    assert.equal(isRefusedRead('error 108: not available'), false);
    assert.equal(isRefusedRead('timeout after 10000 ms waiting for reply 3'), false);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('CPU hogs', () => {
  it('spin until stopped, and are gone after stop', async () => {
    const hogs = await startHogs({ count: 2, maxSeconds: 30 });
    try {
      assert.equal(hogs.running, 2);
      const cpu0 = hogs.cpuMicros();
      await sleep(300);
      assert.ok(hogs.cpuMicros() - cpu0 > 50_000, 'the hogs used CPU');
    } finally {
      assert.equal(await hogs.stop(), 2);
    }
    assert.equal(hogs.running, 0);
    assert.deepEqual(
      hogs.pids.filter((pid) => alive(pid)),
      [],
    );
  });

  it('exit when the process that started them is SIGKILLed', async (t) => {
    const module = fileURLToPath(new URL('../src/harness/cpu-hogs.js', import.meta.url));
    // A stand-in for the bench: starts hogs, prints their pids, then waits to be killed.
    const script = `
      import { startHogs } from ${JSON.stringify(module)};
      const hogs = await startHogs({ count: 2, maxSeconds: 60 });
      console.log(hogs.pids.join(' '));
      setInterval(() => {}, 1000);
    `;
    const bench = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.after(() => bench.kill('SIGKILL'));
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: bench.stdout }).once('line', resolve);
      bench.once('exit', (code) => reject(new Error(`stand-in exited first (code ${code})`)));
    });
    const pids = line.split(' ').map(Number);
    assert.equal(pids.length, 2);
    t.after(() => pids.filter(alive).forEach((pid) => process.kill(pid, 'SIGKILL')));
    assert.ok(pids.every(alive), 'the hogs run');
    bench.kill('SIGKILL');
    const deadline = Date.now() + 5000;
    while (pids.some(alive) && Date.now() < deadline) await sleep(20);
    assert.deepEqual(pids.filter(alive), [], 'every hog exited once its parent was gone');
  });
});
