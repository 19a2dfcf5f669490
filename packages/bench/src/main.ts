#!/usr/bin/env node
/**
 * bulwark-bench: runs the benchmark scenarios against Bulwark, the raw-ws reference server
 * and (fanout, connections) the Socket.IO reference server, each started here as a child process pinned to CPU 0 while this load generator
 * pins itself to CPU 1, prints a comparison table (or JSON with --json), and writes
 * bench-results/<scenario>-<timestamp>.json.
 *
 *   node packages/bench/dist/src/main.js [fanout] [connections] [admission] [overload] [stalled] [--quick] [--json] [--target raw|bulwark|socketio|both|all]
 *
 * @module
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { machineInfo, pinSelf, tasksetAvailable } from './harness/proc.js';
import { medianOf } from './harness/stats.js';
import {
  connectionsRatios,
  connectionsSocketIoRatios,
  connectionsTable,
  fanoutRatios,
  fanoutSocketIoRatios,
  fanoutTable,
  writeReport,
  type ScenarioReport,
} from './harness/report.js';
import {
  bulwarkAvailable,
  defaultBulwarkMain,
  killAllServers,
  parseTargets,
  startServer,
  type RunningServer,
  type TargetName,
} from './harness/targets.js';
import { admissionTable, runAdmission, type AdmissionOptions, type AdmissionResult } from './scenarios/admission.js';
import { runConnections, type ConnectionsOptions, type ConnectionsResult } from './scenarios/connections.js';
import { runFanout, type FanoutOptions, type FanoutResult } from './scenarios/fanout.js';
import { overloadTable, runOverload, type OverloadOptions, type OverloadResult } from './scenarios/overload.js';
import { runStalled, stalledTable, type StalledOptions, type StalledResult } from './scenarios/stalled.js';
import { registry } from './scenarios/index.js';
import { writeHtmlReport } from './harness/html-report.js';
import { Progress } from './harness/progress.js';
import type { Chart, Check, Flags, ScenarioOutput } from './harness/scenario.js';
import {
  admissionChecks,
  connectionsChecks,
  fanoutCharts,
  fanoutChecks,
  overloadCharts,
  overloadChecks,
  stalledChecks,
} from './harness/builtin-checks.js';

const BUILTIN = ['fanout', 'connections', 'admission', 'overload', 'stalled'];
const SCENARIOS = [...BUILTIN, ...registry.map((s) => s.name)];

const USAGE = `Usage: bulwark-bench [scenario ...] [options]

Scenarios (default: fanout and connections):
  fanout        subscribers over channels, one publisher: fixed rate + ramp to the limit
  connections   idle connections, each with a JWT and one subscription
  admission     Bulwark only: server CPU per refused upgrade (HTTP 503) vs per accepted connect
  overload      Bulwark only: history polls at 1x, 2x, 10x capacity, load shedding on and off
  stalled       Bulwark only: server memory and healthy latency with 5% of clients not reading

Options:
  --target T           raw | bulwark | socketio | both (raw + bulwark) | all (raw + bulwark + socketio)
                       (default all for fanout and connections, else both; bulwark is skipped if not built)
  --quick              small counts and durations (smoke test: < 30 s a scenario; overload, stalled ~45 s)
  --json               print the results as JSON instead of tables
  --out-dir DIR        where results files go (default ./bench-results)
  --no-pin             do not pin server (CPU 0) and load generator (CPU 1) with taskset
  --bulwark-main FILE  Bulwark CLI entry (default packages/server/dist/src/cli/main.js)
  --ws-path PATH       Bulwark WebSocket path (default /connection/websocket)
  --bulwark-config J   JSON merged into Bulwark's config, e.g. '{"client":{"write_delay":"20ms"}}'
  --workers N          start Bulwark with --workers N (needs '{"engine":{"type":"redis"}}'; not pinned)
 fanout:
  --subscribers N      (default 2000; quick 200)
  --channels N         (default 20)
  --rate N             fixed publications/s, all channels (default 400; quick 100)
  --duration S         fixed-rate seconds (default 15; quick 2)
  --pad N              padding bytes in each publication's data (default 64)
  --no-ramp            skip the ramp
  --ramp-start N       first ramp rate, pub/s (default 200)
  --p99-limit MS       ramp pass criterion (default 100)
 connections:
  --connections N      (default 10000; quick 1000)
  --concurrency N      connects in flight (default 200)
  --source-ips N       spread over 127.0.0.1..N (default 1)
  --settle MS          idle time before reading RSS (default 3000; quick 1000)
  --repeat N           runs per server, alternating servers; medians reported (default 3; quick 1)
 admission (also --concurrency, --repeat):
  --accepted N         client.connection_limit: connections accepted first (default 1000; quick 200)
  --attempts N         upgrade attempts at the full node (default 10000; quick 1000)
 overload (also --subscribers: live-channel subscribers, default 500, quick 100;
           --rate: live pub/s, default 50; --duration: seconds per run, default 10, quick 2):
  --pollers N          connections polling history (default 200; quick 50)
  --page N             publications per history reply (default 100, ~300 B each)
  --max-offered N      cap on the offered polls/s, what the load generator can send (default 50000)
 stalled (also --subscribers: default 2000, quick 200; --channels: default 20; --rate: API pub/s,
          default 500; --pad: default 1000; --duration: default 20, quick 12):
  --stalled-percent P  share of subscribers that stop reading (default 5)
  --no-html            do not write the HTML report next to the JSON results
  -h, --help`;

/** usage is the help text: the built-in scenarios' options, then each registered scenario's. */
function usage(): string {
  const extra = registry.map((s) => [` ${s.name}: ${s.summary}`, ...s.flags.map((f) => `  ${f.help}`)].join('\n'));
  return [USAGE, ...extra].join('\n');
}

/** flagsOf reads parsed values for a registered scenario, with defaults and validation. */
function flagsOf(values: Record<string, unknown>): Flags {
  return {
    num: (name, fallback, min = 0) => int(values, name, fallback, min),
    int: (name, fallback, min = 0) => {
      const n = int(values, name, fallback, min);
      if (!Number.isInteger(n)) throw new Error(`--${name} must be an integer, got "${String(values[name])}"`);
      return n;
    },
    str: (name, fallback) => (typeof values[name] === 'string' ? (values[name] as string) : fallback),
    bool: (name) => values[name] === true,
  };
}

/** builtinVerdict gives the checks and charts of the five scenarios wired here directly. */
function builtinVerdict(report: ScenarioReport<unknown>, p99LimitMs: number): { checks: Check[]; charts: Chart[] } {
  // Quick runs are too small for CPU and memory ratios to mean anything (10 ms CPU ticks): no ratio checks.
  const ratios = report.quick ? [] : report.ratios;
  switch (report.scenario) {
    case 'fanout': {
      const r = report as ScenarioReport<FanoutResult>;
      return { checks: fanoutChecks(r.results, ratios, p99LimitMs), charts: fanoutCharts(r.results) };
    }
    case 'connections': {
      const r = report as ScenarioReport<ConnectionsResult>;
      return { checks: connectionsChecks(r.results, ratios), charts: [] };
    }
    case 'admission':
      return { checks: admissionChecks((report as ScenarioReport<AdmissionResult>).results), charts: [] };
    case 'overload': {
      const r = report as ScenarioReport<OverloadResult>;
      return { checks: overloadChecks(r.results), charts: overloadCharts(r.results) };
    }
    case 'stalled':
      return { checks: stalledChecks((report as ScenarioReport<StalledResult>).results), charts: [] };
    default:
      return { checks: [], charts: [] };
  }
}

/** checksTable prints a scenario's pass/fail verdicts. */
function checksTable(checks: readonly Check[]): string {
  if (checks.length === 0) return '';
  const rows = checks.map((c) => {
    const v = Number.isInteger(c.value) ? c.value.toLocaleString('en-US') : c.value.toFixed(2);
    const unit = c.unit ? ` ${c.unit}` : '';
    return `  ${c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${v}${unit} (must be ${c.op} ${c.limit.toLocaleString('en-US')}${unit})`;
  });
  const passed = checks.filter((c) => c.pass).length;
  return [`verdict: ${passed === checks.length ? 'PASS' : 'FAIL'} (${passed}/${checks.length} checks)`, ...rows].join(
    '\n',
  );
}

function int(values: Record<string, unknown>, name: string, fallback: number, min = 0): number {
  const v = values[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, got "${String(v)}"`);
  return n;
}

async function main(): Promise<number> {
  const registryFlags: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const sc of registry) for (const f of sc.flags) registryFlags[f.name] = { type: f.type };
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      ...registryFlags,
      'no-html': { type: 'boolean', default: false },
      // No default here: fanout and connections default to all, the other scenarios to both.
      target: { type: 'string' },
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'out-dir': { type: 'string' },
      'no-pin': { type: 'boolean', default: false },
      'bulwark-main': { type: 'string' },
      'ws-path': { type: 'string', default: '/connection/websocket' },
      'bulwark-config': { type: 'string' },
      workers: { type: 'string' },
      subscribers: { type: 'string' },
      channels: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      pad: { type: 'string' },
      'no-ramp': { type: 'boolean', default: false },
      'ramp-start': { type: 'string' },
      'p99-limit': { type: 'string' },
      connections: { type: 'string' },
      concurrency: { type: 'string' },
      'source-ips': { type: 'string' },
      settle: { type: 'string' },
      repeat: { type: 'string' },
      accepted: { type: 'string' },
      attempts: { type: 'string' },
      pollers: { type: 'string' },
      page: { type: 'string' },
      'max-offered': { type: 'string' },
      'stalled-percent': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const scenarios = positionals.length ? positionals : ['fanout', 'connections'];
  for (const s of scenarios) {
    if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario "${s}"`);
  }
  // The registered scenarios get the original pair by default; fanout and connections compare
  // all three servers (Socket.IO included) unless told otherwise.
  const targets: TargetName[] = parseTargets(values.target ?? 'both');
  const comparisonTargets: TargetName[] = parseTargets(values.target ?? 'all');
  const quick = values.quick;
  const outDir = path.resolve(values['out-dir'] ?? 'bench-results');
  const bulwarkMain = values['bulwark-main'] ? path.resolve(values['bulwark-main']) : defaultBulwarkMain;
  const bulwarkConfig = values['bulwark-config']
    ? (JSON.parse(values['bulwark-config']) as Record<string, unknown>)
    : {};
  const log = (msg: string) => process.stderr.write(`${msg}\n`);
  const workers = int(values, 'workers', 1, 1);

  // Read before pinning: once pinned, availableParallelism() reports our affinity (1 CPU).
  const machine = machineInfo();
  // Pinning: server on CPU 0, this load generator on CPU 1, so neither steals the other's core.
  let serverCpu: number | null = null;
  let loadgenCpu: number | null = null;
  if (!values['no-pin']) {
    if (os.availableParallelism() < 2) log('pinning skipped: fewer than 2 CPUs');
    else if (!tasksetAvailable()) log('pinning skipped: taskset not found (install util-linux)');
    else {
      serverCpu = 0;
      if (pinSelf(1)) loadgenCpu = 1;
      else log('could not pin the load generator to CPU 1');
    }
  }

  // Hard ceiling on the whole run, whatever happens: kill the servers and leave.
  const watchdog = setTimeout(
    () => {
      log('bulwark-bench: watchdog expired; killing servers');
      killAllServers();
      process.exit(2);
    },
    (quick ? 3 : 15) * 60_000 * Math.max(1, scenarios.length),
  );
  watchdog.unref();

  const fanoutOpts: FanoutOptions = {
    subscribers: int(values, 'subscribers', quick ? 200 : 2000, 1),
    channels: int(values, 'channels', 20, 1),
    padBytes: int(values, 'pad', 64),
    fixedRate: int(values, 'rate', quick ? 100 : 400, 1),
    fixedSeconds: int(values, 'duration', quick ? 2 : 15, 1),
    warmupSeconds: quick ? 0 : 3,
    ramp: !values['no-ramp'],
    rampStartRate: int(values, 'ramp-start', quick ? 200 : 200, 1),
    rampFactor: quick ? 2 : 1.5,
    rampStepSeconds: quick ? 1 : 4,
    rampMaxSteps: quick ? 3 : 14,
    rampRefineSteps: quick ? 0 : 2,
    rampRetryLatencyFailures: !quick,
    rampBudgetSeconds: quick ? 8 : 75,
    p99LimitMs: int(values, 'p99-limit', 100, 1),
    drainTimeoutMs: quick ? 1000 : 3000,
    connectConcurrency: 100,
  };
  const connOpts: ConnectionsOptions = {
    connections: int(values, 'connections', quick ? 1000 : 10_000, 1),
    channels: 100,
    concurrency: int(values, 'concurrency', 200, 1),
    baselineSettleMs: quick ? 500 : 2000,
    settleMs: int(values, 'settle', quick ? 1000 : 3000),
    sourceIps: int(values, 'source-ips', 1, 1),
  };
  const admissionOpts: AdmissionOptions = {
    accepted: int(values, 'accepted', quick ? 200 : 1000, 1),
    attempts: int(values, 'attempts', quick ? 1000 : 10_000, 1),
    concurrency: int(values, 'concurrency', 100, 1),
    repeat: int(values, 'repeat', quick ? 1 : 3, 1),
    idleMs: quick ? 500 : 1000,
  };
  const overloadOpts: OverloadOptions = {
    pollers: int(values, 'pollers', quick ? 50 : 200, 1),
    subscribers: int(values, 'subscribers', quick ? 100 : 500, 1),
    publishRate: int(values, 'rate', 50, 1),
    page: int(values, 'page', 100, 1),
    seconds: int(values, 'duration', quick ? 2 : 10, 1),
    capacitySeconds: quick ? 1 : 3,
    depth: 4,
    multipliers: [1, 2, 10],
    maxOfferedRate: int(values, 'max-offered', 50_000, 1),
    warmupSeconds: quick ? 0.5 : 1,
    graceMs: quick ? 1000 : 2000,
    connectConcurrency: 100,
  };
  const stalledOpts: StalledOptions = {
    subscribers: int(values, 'subscribers', quick ? 200 : 2000, 2),
    channels: int(values, 'channels', 20, 1),
    stalledPercent: int(values, 'stalled-percent', 5),
    publishRate: int(values, 'rate', 500, 1),
    padBytes: int(values, 'pad', 1000),
    seconds: int(values, 'duration', quick ? 12 : 20, 1),
    warmupSeconds: quick ? 0 : 1,
    drainMs: quick ? 1000 : 3000,
    sampleMs: 100,
    uncappedQueueBytes: 2 ** 30,
    connectConcurrency: 100,
  };
  if (scenarios.includes('stalled')) {
    // The bench config's client.channel_limit is 128, and every stalled client subscribes to every channel.
    if (stalledOpts.channels > 128) throw new Error('stalled: --channels must be ≤ 128');
    if (stalledOpts.stalledPercent > 50) throw new Error('stalled: --stalled-percent must be ≤ 50');
  }
  if (scenarios.includes('fanout') && fanoutOpts.subscribers % fanoutOpts.channels !== 0) {
    throw new Error('--subscribers must be a multiple of --channels (equal subscribers per channel)');
  }
  if (connOpts.sourceIps > 254) throw new Error('--source-ips must be ≤ 254');

  log(
    `bulwark-bench: ${machine.cpus} CPUs (${machine.cpuModel}), node ${machine.node}; ` +
      `server CPU ${serverCpu ?? 'unpinned'}, load generator CPU ${loadgenCpu ?? 'unpinned'}${quick ? '; quick mode' : ''}`,
  );

  /**
   * Runs one scenario against each target, each run on a fresh server process. With
   * `repeat` > 1 the targets alternate (raw, bulwark, socketio, raw, bulwark, socketio, …) so
   * that drift in the machine's state biases none, and each target's result is the field-wise
   * median.
   */
  async function runScenario<R extends object>(
    name: string,
    run: (server: RunningServer) => Promise<R>,
    repeat = 1,
  ): Promise<ScenarioReport<R>['results']> {
    const results: ScenarioReport<R>['results'] = {};
    const runs: Partial<Record<TargetName, R[]>> = {};
    for (let rep = 1; rep <= repeat; rep++) {
      for (const target of comparisonTargets) {
        if (results[target]) continue; // skipped or failed earlier
        const label = repeat > 1 ? `${name} / ${target} (run ${rep}/${repeat})` : `${name} / ${target}`;
        if (target === 'bulwark' && !bulwarkAvailable(bulwarkMain)) {
          const why = `Bulwark is not built (${path.relative(process.cwd(), bulwarkMain)} missing)`;
          log(`${label}: skipped: ${why}`);
          results.bulwark = { skipped: why };
          continue;
        }
        log(`${label}: starting server`);
        let server: RunningServer | undefined;
        try {
          server = await startServer(target, {
            cpu: serverCpu ?? undefined,
            bulwarkMain,
            wsPath: values['ws-path'],
            bulwarkConfig,
            workers,
          });
          log(`${label}: server pid ${server.pid} on port ${server.port}`);
          const r = await run(server);
          if (server.exited()) throw new Error('server exited during the run');
          (runs[target] ??= []).push(r);
        } catch (err) {
          const message = (err as Error).message;
          log(`${label}: ERROR: ${message}`);
          results[target] = { error: message, ...(server ? { serverLog: server.logTail() } : {}) };
        } finally {
          await server?.stop();
        }
      }
    }
    for (const target of comparisonTargets) {
      const done = runs[target];
      if (results[target] || !done) continue;
      results[target] = done.length === 1 ? { result: done[0] as R } : { result: medianOf(done), runs: done };
    }
    return results;
  }

  /** How the Bulwark-only scenarios start their servers. */
  const bulwarkStart = { cpu: serverCpu ?? undefined, bulwarkMain, wsPath: values['ws-path'], bulwarkConfig };
  let failed = false;
  const reports: ScenarioReport<unknown>[] = [];
  const timestamp = new Date().toISOString();
  const base = { timestamp, quick, machine, pinning: { serverCpu, loadgenCpu }, bulwarkConfig, workers };
  const progress = new Progress();
  const flags = flagsOf(values);
  for (const scenario of scenarios) {
    const registered = registry.find((s) => s.name === scenario);
    if (registered) {
      let out: ScenarioOutput;
      try {
        out = await registered.run({
          quick,
          flags,
          log: (msg) => {
            progress.end();
            log(msg);
          },
          progress,
          bulwark: bulwarkStart,
          targets,
          loadgenCpu,
        });
      } catch (err) {
        progress.end();
        const message = (err as Error).message;
        log(`${scenario}: ERROR: ${message}`);
        const serverLog = (err as { serverLog?: string[] }).serverLog;
        if (serverLog?.length) log(`  server output:\n    ${serverLog.slice(-15).join('\n    ')}`);
        out = {
          options: {},
          results: { error: message },
          checks: [],
          charts: [],
          table: `${scenario}: ERROR: ${message}`,
        };
        failed = true;
      }
      progress.end();
      const report = {
        scenario,
        ...base,
        options: out.options,
        results: out.results,
        checks: out.checks,
        charts: out.charts,
      };
      reports.push(report as unknown as ScenarioReport<unknown>);
      if (out.checks.some((c) => !c.pass)) failed = true;
      if (!values.json) process.stdout.write(`\n${out.table}\n${checksTable(out.checks)}\n`);
      const file = writeReport(outDir, report);
      log(`results written to ${path.relative(process.cwd(), file)}`);
      if (!values['no-html']) {
        const html = writeHtmlReport(file.replace(/\.json$/, '.html'), { ...report, table: out.table });
        log(`HTML report: ${path.relative(process.cwd(), html)}`);
      }
      continue;
    }
    let table = '';
    if (scenario === 'fanout') {
      const results = await runScenario<FanoutResult>('fanout', (s) => runFanout(s, fanoutOpts, log));
      const report: ScenarioReport<FanoutResult> = {
        scenario,
        ...base,
        options: fanoutOpts,
        results,
        ratios: fanoutRatios(results),
        socketioRatios: fanoutSocketIoRatios(results),
      };
      reports.push(report);
      table = fanoutTable(report);
    } else if (scenario === 'overload') {
      const results = await runOverload(bulwarkStart, overloadOpts, log);
      const report: ScenarioReport<OverloadResult> = { scenario, ...base, options: overloadOpts, results, ratios: [] };
      reports.push(report);
      table = overloadTable(report);
    } else if (scenario === 'stalled') {
      const results = await runStalled(bulwarkStart, stalledOpts, log);
      const report: ScenarioReport<StalledResult> = { scenario, ...base, options: stalledOpts, results, ratios: [] };
      reports.push(report);
      table = stalledTable(report);
    } else if (scenario === 'admission') {
      const results = await runAdmission(bulwarkStart, admissionOpts, log);
      const report: ScenarioReport<AdmissionResult> = {
        scenario,
        ...base,
        options: admissionOpts,
        results,
        ratios: [],
      };
      reports.push(report);
      table = admissionTable(report);
    } else {
      const results = await runScenario<ConnectionsResult>(
        'connections',
        (s) => runConnections(s, connOpts, log),
        int(values, 'repeat', quick ? 1 : 3, 1),
      );
      const report: ScenarioReport<ConnectionsResult> = {
        scenario,
        ...base,
        options: connOpts,
        results,
        ratios: connectionsRatios(results),
        socketioRatios: connectionsSocketIoRatios(results),
      };
      reports.push(report);
      table = connectionsTable(report);
    }
    const last = reports[reports.length - 1] as ScenarioReport<unknown>;
    if (Object.values(last.results).some((o) => o && 'error' in o)) failed = true;
    const { checks, charts } = builtinVerdict(last, fanoutOpts.p99LimitMs);
    Object.assign(last, { checks, charts });
    if (checks.some((c) => !c.pass)) failed = true;
    if (!values.json) process.stdout.write(`\n${table}\n${checksTable(checks)}\n`);
    const file = writeReport(outDir, last);
    log(`results written to ${path.relative(process.cwd(), file)}`);
    if (!values['no-html']) {
      const html = writeHtmlReport(file.replace(/\.json$/, '.html'), { ...last, checks, charts, table });
      log(`HTML report: ${path.relative(process.cwd(), html)}`);
    }
  }
  if (quick && !values.json) {
    process.stdout.write(
      '\nquick mode: a smoke test. The counts are too small for meaningful numbers or ratios ' +
        '(CPU is read in 10 ms ticks, RSS moves in heap-sized steps); use the full run.\n',
    );
  }
  if (values.json) process.stdout.write(`${JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2)}\n`);
  return failed ? 1 : 0;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killAllServers();
    process.exit(130);
  });
}

main().then(
  (code) => {
    killAllServers();
    process.exitCode = code;
    // Thousands of just-terminated sockets may keep the loop busy briefly; do not wait on them.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    killAllServers();
    process.stderr.write(`bulwark-bench: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
