/**
 * Tests of the simulator's own measurements against a server whose misbehaviour is known
 * exactly: the raw-ws reference server in fault mode (`--drop-every N` drops the Nth, 2Nth, …
 * publication of every channel; `--delay-ms D` holds every publication D ms). The real
 * measurement path runs against it — lean clients, the bench markers, SeqTracker/summarizeLoss
 * and LatencyRecorder, through `runFanoutMixed` and `runFanout` — and what they measure must
 * match what the server did.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { RunningServer } from '../src/harness/targets.js';
import { runFanout } from '../src/scenarios/fanout/run.js';
import { type FanoutOptions } from '../src/scenarios/fanout/types.js';
import { CLASSES, type FanoutMixedOptions, type MixedRunDetail } from '../src/scenarios/fanout-mixed/types.js';
import { runFanoutMixed } from '../src/scenarios/fanout-mixed/run.js';

const rawMain = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/servers/raw-ws-server.js');
const stops: Array<() => void> = [];
after(() => stops.forEach((stop) => stop()));

/** Starts the raw reference server with `faults` (e.g. ['--drop-every', '4']); resolves once it listens. */
async function startFaultyRaw(faults: string[]): Promise<RunningServer> {
  const tokenSecret = randomBytes(16).toString('hex');
  const child = spawn(
    process.execPath,
    [rawMain, '--port', '0', '--jwt-secret', tokenSecret, '--watch-stdin', ...faults],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let exited = false;
  child.once('exit', () => (exited = true));
  const stop = () => {
    if (!exited) child.kill('SIGKILL');
  };
  stops.push(stop);
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => resolve((JSON.parse(line) as { listening: number }).listening));
    child.once('exit', (code) => reject(new Error(`raw server exited with ${code}`)));
  });
  return {
    name: 'raw',
    pid: child.pid as number,
    port,
    wsUrl: `ws://127.0.0.1:${port}/`,
    protocol: 'raw',
    tokenSecret,
    logTail: () => [],
    exited: () => exited,
    stop: async () => stop(),
  };
}

/** A small mixed load: 20 players in 4 teams of 5, 160 publications in one second. */
const small: FanoutMixedOptions = {
  players: 20,
  teamSize: 5,
  worldRate: 20,
  teamRate: 10,
  personalRate: 100,
  seconds: 1,
  warmupSeconds: 0,
  padBytes: 0,
  p99LimitMs: 100,
  drainTimeoutMs: 600,
  concurrency: 20,
};

/** What the server dropped on channel index `ch`: every `n`th of its publications. */
const droppedSeqs = (detail: MixedRunDetail, ch: number, n: number): number[] =>
  Array.from({ length: Math.floor((detail.published[ch] as number) / n) }, (_, k) => (k + 1) * n);

describe('measurements against the raw server with known faults', () => {
  it('fanout-mixed: loss per class is exactly the dropped publications × their subscribers', async () => {
    const server = await startFaultyRaw(['--drop-every', '4']);
    const { result, detail } = await runFanoutMixed(server, small);
    const { layout } = detail;
    // Expected loss per class, from what was published to each channel and who listens there.
    const world = droppedSeqs(detail, 0, 4).length * small.players;
    let team = 0;
    for (let t = 0; t < layout.teams; t++) team += droppedSeqs(detail, layout.teamChannel(t), 4).length * 5;
    let personal = 0;
    for (let i = 0; i < small.players; i++) personal += droppedSeqs(detail, layout.personalChannel(i), 4).length;
    assert.ok(world > 0 && team > 0 && personal > 0, 'every class had drops (else the test proves nothing)');
    assert.equal(result.classes.world.loss.missing, world);
    assert.equal(result.classes.team.loss.missing, team);
    assert.equal(result.classes.personal.loss.missing, personal);
    for (const name of CLASSES) {
      const c = result.classes[name];
      assert.equal(c.deliveries, c.expectedDeliveries - c.loss.missing, `${name}: every other delivery arrived`);
      assert.equal(c.loss.duplicates + c.loss.outOfOrder + c.loss.stale, 0);
    }
    // And the missing sequence numbers are exactly the dropped ones, for every player and class.
    detail.trackers.forEach((trackers, i) => {
      layout.channelsOf(i).forEach((ch, cls) => {
        const published = detail.published[ch] as number;
        assert.deepEqual(trackers[cls]?.missingSeqs(published, 1000), droppedSeqs(detail, ch, 4), `player ${i} ${cls}`);
      });
    });
    assert.equal(result.wrongChannel, 0);
    assert.equal(result.drained, false);
  });

  it('fanout-mixed: a 50 ms server delay shows as p50 ≥ 50 ms in every class, with no loss', async () => {
    const server = await startFaultyRaw(['--delay-ms', '50']);
    const { result } = await runFanoutMixed(server, small);
    for (const name of CLASSES) {
      const c = result.classes[name];
      assert.equal(c.loss.missing, 0, name);
      assert.ok(c.deliveries > 0, name);
      assert.ok(c.latencyMs.p50 >= 50, `${name} p50 ${c.latencyMs.p50} ms`);
    }
  });

  it('fanout-mixed: without faults nothing is lost and p50 stays well below the 50 ms delay', async () => {
    const server = await startFaultyRaw([]);
    const { result } = await runFanoutMixed(server, small);
    for (const name of CLASSES) {
      const c = result.classes[name];
      assert.equal(c.loss.missing, 0, name);
      assert.equal(c.deliveries, c.expectedDeliveries, name);
      assert.ok(c.latencyMs.p50 < 50, `${name} p50 ${c.latencyMs.p50} ms`);
    }
    assert.equal(result.drained, true);
  });

  /** A small fan-out: 12 subscribers over 3 channels, 90 publications in one second. */
  const fanoutOpts = (reader: 'raw' | 'ws', subscriberProcesses: number): FanoutOptions => ({
    formats: ['json'],
    reader,
    subscriberProcesses,
    subscribers: 12,
    channels: 3,
    padBytes: 0,
    fixedRate: 90,
    fixedSeconds: 1,
    warmupSeconds: 0,
    ramp: false,
    rampStartRate: 1,
    rampFactor: 2,
    rampStepSeconds: 1,
    rampMaxSteps: 0,
    rampRefineSteps: 0,
    rampRetryLatencyFailures: false,
    rampBudgetSeconds: 0,
    p99LimitMs: 100,
    drainTimeoutMs: 600,
    connectConcurrency: 12,
    apiPublish: false,
    tagsFilter: undefined,
    variants: false,
  });

  // Both readers, in the publisher's process and spread over two worker processes.
  for (const [reader, procs] of [
    ['ws', 0],
    ['raw', 0],
    ['raw', 2],
    ['ws', 2],
  ] as const) {
    it(`fanout (${reader} reader, ${procs} subscriber processes): measured loss is the dropped publications × subscribers per channel`, async () => {
      const server = await startFaultyRaw(['--drop-every', '5']);
      const opts = fanoutOpts(reader, procs);
      const r = await runFanout(server, opts, () => undefined);
      const { published } = r.fixed;
      assert.equal(published, 90);
      // Publications go round-robin over the channels, so channel c got ⌈(published − c) / channels⌉.
      let missing = 0;
      for (let c = 0; c < opts.channels; c++) {
        missing += Math.floor(Math.ceil((published - c) / opts.channels) / 5) * (opts.subscribers / opts.channels);
      }
      assert.equal(missing, 72);
      assert.equal(r.fixed.loss.missing, missing);
      assert.equal(r.fixed.loss.duplicates, 0);
      assert.equal(r.fixed.delivered, r.fixed.expectedDeliveries - missing);
      assert.equal(r.fixed.latencyMs.count, r.fixed.delivered);
      assert.equal(
        r.fixed.deliveredBySecond.reduce((a, b) => a + b, 0),
        r.fixed.delivered,
      );
      assert.equal(r.fixed.loadgenCpu.workerPercents.length, procs);
      assert.equal(r.subscriberProcesses, procs);
    });
  }

  it('fanout with two subscriber processes: a 50 ms server delay shows as 50 ms (the clocks agree)', async () => {
    const server = await startFaultyRaw(['--delay-ms', '50']);
    const r = await runFanout(server, fanoutOpts('raw', 2), () => undefined);
    assert.equal(r.fixed.loss.missing, 0);
    // The workers started hundreds of ms after this process: without the clock offset the
    // latencies would be off by that much.
    assert.ok(r.fixed.latencyMs.p50 >= 50, `p50 ${r.fixed.latencyMs.p50} ms`);
    assert.ok(r.fixed.latencyMs.p50 < 90, `p50 ${r.fixed.latencyMs.p50} ms`);
  });
});
