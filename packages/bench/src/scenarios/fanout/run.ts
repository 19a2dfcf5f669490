/**
 * The fan-out scenario: many subscribers spread evenly over a few channels, one publisher.
 *
 * 1. A fixed publication rate for a fixed time: delivered msgs/s, latency, exact loss and the
 *    server's CPU time per delivered message.
 * 2. A ramp that finds the highest publication rate with p99 < limit and zero loss: the rate
 *    grows by a factor per step until a step fails, then a few bisection steps narrow it down.
 *
 * Every publication carries `{"bch":<channel>,"bseq":<seq>,"bts":<µs>}`: the publisher numbers
 * each channel's publications 1, 2, 3, … so each subscriber's {@link SeqTracker} yields exact
 * loss, and `bts` (µs of this process's `performance.now()`) gives end-to-end latency because
 * the publisher and the subscribers share one process and one clock.
 *
 * @module
 */
import type { Log } from '../../harness/scenario.js';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { benchData } from '../../load/lean-client.js';
import { FanoutFleet, type FleetPhase } from '../../load/fanout-fleet.js';
import {
  bulwarkClients,
  makeSessionClient,
  type BulwarkClientName,
  type ReaderName,
} from '../../load/session-clients.js';
import { ServerApi } from '../../harness/api.js';
import { saturation } from '../../harness/comparison.js';
import { connectionToken } from '../../harness/jwt.js';
import { diffKernelNetCounters, readKernelNetCounters, readTreeCpuMicros } from '../../harness/proc.js';
import { roundSummary } from '../../harness/stats.js';
import { type RunningServer } from '../../harness/targets.js';
import { nowMicros, round, sleep, waitFor } from '../../harness/util.js';
import { judge } from './verdict.js';
import type { FanoutOptions, FanoutResult, PhaseResult, RampStep } from './types.js';

/**
 * runFanout runs the fan-out scenario against a started server; on Bulwark the subscribers and
 * the publisher are clients of kind `kind` (JSON or Protobuf over WebSocket). The subscribers
 * live in `opts.subscriberProcesses` worker processes (a {@link FanoutFleet}) and read with
 * `opts.reader`; the publisher stays here.
 */
export async function runFanout(
  server: RunningServer,
  opts: FanoutOptions,
  log: Log,
  kind: BulwarkClientName = 'json',
): Promise<FanoutResult> {
  const { channels } = opts;
  const channelName = (ch: number) => `bench:ch${ch}`;
  const pad = 'x'.repeat(opts.padBytes);
  const seqNext = new Array<number>(channels).fill(1);
  let reconnects = 0;
  // Pinned (the bench pins the server to CPU 0 and itself to CPU 1), the workers get every CPU but
  // the server's: CPU 1 on this 2-core machine, shared with the publisher. Unpinned, each
  // process may have a CPU, up to the machine's.
  const cpus = os.cpus().length;
  const pinned = opts.loadgenCpu !== undefined && opts.loadgenCpu !== null;
  const pinCpus = pinned ? (cpus > 2 ? `1-${cpus - 1}` : '1') : undefined;
  const loadgenCores = pinned ? Math.max(1, cpus - 1) : Math.min(cpus, opts.subscriberProcesses + 1);

  if (opts.apiPublish && !server.apiKey)
    throw new Error(`--api-publish / --tags-filter: ${server.name} has no server API`);
  // Publications through the server API can carry tags (a client's publish cannot).
  const api = opts.apiPublish ? new ServerApi(server) : undefined;
  const tags = opts.tagsFilter?.tags;
  const publishErrors = () => (api ? api.errors : publisher.publishErrors);

  // The variant: the same data with one more field, so its subscribers measure it the same way.
  const variantOf = (data: string) => `[{"when":{"version_below":"2"},"data":{"v":1,${data.slice(1)}}]`;

  const publisher = makeSessionClient(server, kind);
  let fleet: FanoutFleet | undefined;
  try {
    // Setup: subscriber i listens on channel i % channels, so channels get equal shares.
    const t0 = performance.now();
    fleet = await FanoutFleet.start({
      // Plain data only: the options cross IPC to the workers.
      server: { name: server.name, wsUrl: server.wsUrl, port: server.port, protocol: server.protocol },
      tokenSecret: server.tokenSecret,
      kind,
      readers: opts.reader === 'compare' ? ['raw', 'ws'] : [opts.reader],
      channels,
      subscribers: opts.subscribers,
      processes: opts.subscriberProcesses,
      concurrency: opts.connectConcurrency,
      ...(opts.tagsFilter ? { tagsFilter: opts.tagsFilter.filter } : {}),
      variants: opts.variants,
      ...(pinCpus !== undefined ? { pinCpus } : {}),
    });
    const subs = fleet;
    await publisher.open();
    if (server.protocol === 'centrifugo') {
      await publisher.connect(connectionToken('bench-publisher', server.tokenSecret));
    }
    const connectSeconds = (performance.now() - t0) / 1000;
    log(`  ${opts.subscribers} subscribers + publisher connected in ${connectSeconds.toFixed(1)} s`);
    log(
      `  subscribers: ${opts.reader} reader, ` +
        (opts.subscriberProcesses === 0
          ? "in the publisher's process"
          : `${opts.subscriberProcesses} worker process(es)${subs.pinned > 0 ? ` pinned to CPU ${pinCpus}` : ''}, ` +
            `clock offset error ≤ ${Math.ceil(Math.max(...subs.clockRttMicros) / 2)} µs`),
    );
    await sleep(500);

    /** Reconnects subscribers the server dropped (e.g. as slow) so the ramp can go on. */
    const revive = async (): Promise<void> => {
      const n = await subs.revive();
      if (n === 0) return;
      reconnects += n;
      log(`  reconnected ${n} dropped subscribers`);
      await sleep(300);
    };

    const runPhase = async (rate: number, seconds: number): Promise<PhaseResult> => {
      if (publisher.closeCode !== undefined) {
        throw new Error(`publisher disconnected: ${publisher.closeCode} ${publisher.closeReason}`);
      }
      const first = seqNext.slice();
      await subs.startPhase(first, nowMicros());
      const errors0 = publishErrors();
      // Measurement window starts here: server CPU and our own CPU, read back after the drain.
      const cpu0 = readTreeCpuMicros(server.pid);
      const net0 = readKernelNetCounters();
      const own0 = process.cpuUsage();
      const loopDelay = monitorEventLoopDelay({ resolution: 10 });
      loopDelay.enable();
      const start = performance.now();
      const total = Math.max(1, Math.round(rate * seconds));
      // At most 100 ms worth of catch-up per tick, so a stalled loop does not dump a huge burst.
      const maxBurst = Math.max(1, Math.ceil(rate * 0.1));
      const hardStop = start + seconds * 1500 + 2000;
      let sent = 0;
      let ch = 0;
      while (sent < total) {
        const now = performance.now();
        if (now > hardStop) break;
        let due = Math.min(total, Math.floor(((now - start) / 1000) * rate) + 1) - sent;
        if (due > maxBurst) due = maxBurst;
        // Do not pile data into a socket the server is not reading: that is a failed step.
        if (publisher.bufferedAmount > 4 * 1024 * 1024 || (api !== undefined && api.inFlight >= 128)) due = 0;
        for (; due > 0; due--) {
          const seq = seqNext[ch] as number;
          seqNext[ch] = seq + 1;
          const data = benchData(ch, seq, nowMicros(), pad);
          if (api) api.tryPublish(channelName(ch), data, tags, opts.variants ? variantOf(data) : undefined);
          else publisher.publish(channelName(ch), data);
          sent++;
          ch = ch + 1 === channels ? 0 : ch + 1;
        }
        await sleep(1);
      }
      const publishEnd = performance.now();
      const publishedPer = seqNext.map((n, c) => n - (first[c] as number));
      // Every subscriber process waits for its deliveries (at most the drain timeout) and tallies.
      const tally = await subs.finishPhase(publishedPer, opts.drainTimeoutMs);
      // Let publish replies (Bulwark) trickle in before counting errors; bounded.
      if (api) await waitFor(() => api.inFlight === 0, 1000, 5);
      else if (server.protocol === 'centrifugo') {
        await waitFor(() => publisher.publishAcks + publisher.publishErrors >= sent, 1000, 5);
      }
      const end = performance.now();
      const cpu1 = readTreeCpuMicros(server.pid);
      const own = process.cpuUsage(own0);
      loopDelay.disable();
      const kernel = diffKernelNetCounters(net0, readKernelNetCounters());
      const publishSeconds = (publishEnd - start) / 1000;
      // Deliveries per second over the time deliveries actually took (publish window + tail).
      const lastAt = tally.lastDeliveryAt / 1000;
      const deliverySeconds = Math.max(publishSeconds, (Math.max(lastAt, publishEnd) - start) / 1000);
      const serverCpu = cpu1 - cpu0;
      const wallMicros = (end - start) * 1000;
      const delivered = tally.delivered;
      const publisherCpu = own.user + own.system;
      const workersCpu = tally.workerCpuMicros.reduce((a, b) => a + b, 0);
      const loadgenCpuPercent = round(((publisherCpu + workersCpu) / wallMicros) * 100, 1);
      const serverCpuPercent = round((serverCpu / wallMicros) * 100, 1);
      const perDelivery = (micros: number) => round(delivered > 0 ? micros / delivered : Number.NaN, 3);
      return {
        targetRate: round(rate, 1),
        published: sent,
        achievedRate: round(sent / publishSeconds, 1),
        publishSeconds: round(publishSeconds, 2),
        expectedDeliveries: tally.expected,
        delivered,
        deliveredPerSec: round(delivered / deliverySeconds, 0),
        latencyMs: roundSummary(tally.histogram.summary(), 3),
        maxLatencyBySecondMs: tally.maxBySecond.map((v) => round(v, 1)),
        loss: tally.loss,
        wrongChannel: tally.wrong,
        publishErrors: publishErrors() - errors0,
        disconnects: tally.disconnects,
        drained: tally.drained,
        serverCpuMicros: Math.round(serverCpu),
        serverCpuMicrosPerDelivery: perDelivery(serverCpu),
        serverCpuPercent,
        loadgenCpuPercent,
        loadgenCpu: {
          publisherPercent: round((publisherCpu / wallMicros) * 100, 1),
          workerPercents: tally.workerCpuMicros.map((c) => round((c / wallMicros) * 100, 1)),
        },
        loadgenCpuMicrosPerDelivery: perDelivery(publisherCpu + workersCpu),
        readerCpuMicrosPerDelivery: opts.subscriberProcesses === 0 ? Number.NaN : perDelivery(workersCpu),
        ...(opts.reader === 'compare' ? { readerCompare: perReader(tally) } : {}),
        saturated: saturation(serverCpuPercent, loadgenCpuPercent / loadgenCores),
        deliveredBySecond: tally.deliveredBySecond,
        loadgenLoopDelayMs: { p99: round(loopDelay.percentile(99) / 1e6, 1), max: round(loopDelay.max / 1e6, 1) },
        kernel,
      };
    };

    if (opts.warmupSeconds > 0) {
      const w = await runPhase(opts.fixedRate, opts.warmupSeconds);
      log(`  warm-up (not measured): ${describe(w)}`);
    }
    log(`  fixed: ${opts.fixedRate} pub/s × ${opts.subscribers / channels} subscribers for ${opts.fixedSeconds} s`);
    const fixed = await runPhase(opts.fixedRate, opts.fixedSeconds);
    log(`  fixed: ${describe(fixed)}`);
    log(`  fixed: worst latency per second: ${fixed.maxLatencyBySecondMs.join(' ')}`);

    let ramp: FanoutResult['ramp'];
    if (opts.ramp) ramp = await runRamp(opts, runPhase, revive, log);

    return {
      target: server.name,
      clients: server.name === 'bulwark' ? bulwarkClients[kind].label : server.protocol,
      reader: opts.reader,
      subscriberProcesses: opts.subscriberProcesses,
      loadgenCores,
      subscribers: opts.subscribers,
      channels,
      subscribersPerChannel: opts.subscribers / channels,
      padBytes: opts.padBytes,
      setup: { connectSeconds: round(connectSeconds, 2), reconnects },
      fixed,
      ramp,
    };
  } finally {
    api?.close();
    publisher.terminate();
    fleet?.close();
  }
}

export async function runRamp(
  opts: FanoutOptions,
  runPhase: (rate: number, seconds: number) => Promise<PhaseResult>,
  revive: () => Promise<void>,
  log: Log,
): Promise<NonNullable<FanoutResult['ramp']>> {
  const steps: RampStep[] = [];
  const started = performance.now();
  const stepCost = opts.rampStepSeconds * 1000 + opts.drainTimeoutMs + 1000;
  let lo: number | undefined; // best passing rate
  let hi: number | undefined; // lowest failing rate
  let rate = opts.rampStartRate;
  let refined = 0;
  const hasRoom = () => performance.now() - started + stepCost <= opts.rampBudgetSeconds * 1000;
  // Retries count as steps, so rampMaxSteps and the budget bound the ramp's length.
  while (steps.length < opts.rampMaxSteps) {
    if (!hasRoom()) {
      log('  ramp: time budget reached');
      break;
    }
    if (lo !== undefined && hi !== undefined) {
      // Bracketed: bisect geometrically until the steps or the resolution run out.
      if (refined >= opts.rampRefineSteps || hi / lo < 1.08) break;
      rate = Math.sqrt(lo * hi);
      refined++;
    }
    await revive();
    let r = await runPhase(rate, opts.rampStepSeconds);
    let verdict = judge(r, opts.p99LimitMs);
    steps.push({ ...r, ...verdict });
    log(`  ramp ${r.targetRate} pub/s: ${verdict.pass ? 'pass' : `FAIL (${verdict.reason})`} — ${describe(r)}`);
    // A latency-only failure may be one stall (a GC pause in either process): the step gets
    // one retry, and fails only if the retry fails too. Loss or disconnects are never retried.
    const latencyOnly = r.loss.missing === 0 && r.disconnects === 0;
    if (
      !verdict.pass &&
      opts.rampRetryLatencyFailures &&
      latencyOnly &&
      steps.length < opts.rampMaxSteps &&
      hasRoom()
    ) {
      await sleep(300);
      await revive();
      r = await runPhase(rate, opts.rampStepSeconds);
      verdict = judge(r, opts.p99LimitMs);
      steps.push({ ...r, ...verdict, retry: true });
      log(`  ramp ${r.targetRate} pub/s retry: ${verdict.pass ? 'pass' : `FAIL (${verdict.reason})`} — ${describe(r)}`);
    }
    if (verdict.pass) {
      lo = Math.max(lo ?? 0, rate);
      if (hi === undefined) rate *= opts.rampFactor;
    } else {
      hi = Math.min(hi ?? Number.POSITIVE_INFINITY, rate);
      if (lo === undefined) rate /= 2;
    }
    await sleep(300);
  }
  // A rate's verdict is its last attempt's (a retry overrides the first try).
  const finals = [...new Map(steps.map((s) => [s.targetRate, s])).values()];
  const best = finals.filter((s) => s.pass).sort((a, b) => b.targetRate - a.targetRate)[0];
  const firstFail = finals.filter((s) => !s.pass).sort((a, b) => a.targetRate - b.targetRate)[0];
  let limitedBy = 'not reached';
  if (firstFail) {
    // The load generator's CPU is all its processes (publisher and subscriber workers).
    const cpus = `server ${firstFail.serverCpuPercent}%, load generator ${firstFail.loadgenCpuPercent}%`;
    if (firstFail.saturated === 'load generator' || firstFail.saturated === 'both')
      limitedBy = `load generator CPU (${cpus})`;
    else if (firstFail.saturated === 'server') limitedBy = `server CPU (${cpus})`;
    else limitedBy = `latency/loss below CPU saturation (${cpus})`;
  }
  return {
    steps,
    maxPassingRate: best?.targetRate ?? 0,
    maxPassingDeliveriesPerSec: best?.deliveredPerSec ?? 0,
    limitFound: firstFail !== undefined,
    limitedBy,
  };
}

/** perReader is each reader's workers' CPU time per delivery (µs), for --reader compare. */
function perReader(t: FleetPhase): Partial<Record<ReaderName, number>> {
  const sums: Partial<Record<ReaderName, { cpu: number; delivered: number }>> = {};
  t.workers.forEach((w, k) => {
    const s = (sums[w.reader] ??= { cpu: 0, delivered: 0 });
    s.cpu += t.workerCpuMicros[k] ?? 0;
    s.delivered += w.delivered;
  });
  const out: Partial<Record<ReaderName, number>> = {};
  for (const [reader, s] of Object.entries(sums)) {
    out[reader as ReaderName] = round(s.delivered > 0 ? s.cpu / s.delivered : Number.NaN, 3);
  }
  return out;
}

/** describe is a one-line summary of a phase for progress output. */
export function describe(r: PhaseResult): string {
  const workers = r.loadgenCpu.workerPercents;
  return (
    `${r.deliveredPerSec} deliveries/s, p50 ${r.latencyMs.p50} / p99 ${r.latencyMs.p99} / max ${r.latencyMs.max} ms, ` +
    `loss ${r.loss.missing}, server ${r.serverCpuMicrosPerDelivery} µs/delivery (${r.serverCpuPercent}% CPU), ` +
    `load generator ${r.loadgenCpuMicrosPerDelivery} µs/delivery (${r.loadgenCpuPercent}% CPU` +
    (workers.length > 0 ? `: publisher ${r.loadgenCpu.publisherPercent}% + readers ${workers.join(' + ')}%` : '') +
    `)` +
    (r.readerCompare
      ? `, readers: ${Object.entries(r.readerCompare)
          .map(([k, v]) => `${k} ${v} µs/delivery`)
          .join(', ')}`
      : '') +
    `, saturated: ${r.saturated}, loop delay max ${r.loadgenLoopDelayMs.max} ms` +
    (r.kernel.tcpRetransSegs > 0
      ? `, ${r.kernel.tcpRetransSegs} TCP retransmits (${r.kernel.tcpLossProbes} loss probes)`
      : '') +
    (r.kernel.zeroWindow > 0 ? `, ${r.kernel.zeroWindow} zero-window events` : '')
  );
}
