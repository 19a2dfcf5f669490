#!/usr/bin/env node
/**
 * bulwark-bench, the command line: parses the flags every scenario declares, pins the server
 * (CPU 0) and this load generator (CPU 1), runs the named scenarios from the registry, and prints
 * their tables (or JSON with --json); each run writes bench-results/<scenario>-<timestamp>.json.
 *
 *   node packages/bench/dist/src/main.js [scenario ...] [--quick] [--json] [--target raw|bulwark|socketio|both|all]
 *
 * @module
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { helpLine, parseOptionsOf, readFlags } from './harness/flags.js';
import { globalFlags } from './harness/global-flags.js';
import { machineInfo, pinSelf, tasksetAvailable } from './harness/proc.js';
import { Progress } from './harness/progress.js';
import { runScenario } from './harness/run-scenario.js';
import { defaultBulwarkMain, killAllServers, parseTargets } from './harness/targets.js';
import { defaultScenarios, registry } from './scenarios/index.js';

/** The options of the bench itself, whatever the scenario. */
const global = globalFlags;

/** usage is the help text, generated from the flag declarations. */
function usage(): string {
  const width = Math.max(...registry.map((s) => s.name.length));
  return [
    'Usage: bulwark-bench [scenario ...] [options]',
    '',
    `Scenarios (default: ${defaultScenarios.join(' and ')}):`,
    ...registry.map((s) => `  ${s.name.padEnd(width)}  ${s.summary}`),
    '',
    'Options:',
    ...Object.values(global).map((f) => `  ${helpLine(f)}`),
    '  -h, --help',
    ...registry.flatMap((s) => [` ${s.name}:`, ...s.flags.map((f) => `  ${helpLine(f)}`)]),
  ].join('\n');
}

async function main(): Promise<number> {
  const parsed = parseArgs({
    allowPositionals: true,
    options: {
      ...parseOptionsOf([...Object.values(global), ...registry.flatMap((s) => s.flags)]),
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const values: Record<string, unknown> = parsed.values;
  const positionals = parsed.positionals;
  if (values.help === true) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const names = positionals.length ? positionals : defaultScenarios;
  const scenarios = names.map((n) => {
    const s = registry.find((r) => r.name === n);
    if (!s) throw new Error(`unknown scenario "${n}"`);
    return s;
  });
  const quick = values.quick === true;
  const flags = readFlags(values, quick);
  const outDir = path.resolve(flags.str(global.outDir));
  const bulwarkMain = flags.given(global.bulwarkMain)
    ? path.resolve(flags.str(global.bulwarkMain))
    : defaultBulwarkMain;
  const bulwarkConfig = flags.given(global.bulwarkConfig)
    ? (JSON.parse(flags.str(global.bulwarkConfig)) as Record<string, unknown>)
    : {};
  const log = (msg: string) => process.stderr.write(`${msg}\n`);
  const workers = flags.num(global.workers);

  // Read before pinning: once pinned, availableParallelism() reports our affinity (1 CPU).
  const machine = machineInfo();
  // Pinning: server on CPU 0, this load generator on CPU 1, so neither steals the other's core.
  let serverCpu: number | null = null;
  let loadgenCpu: number | null = null;
  if (!flags.bool(global.noPin)) {
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

  log(
    `bulwark-bench: ${machine.cpus} CPUs (${machine.cpuModel}), node ${machine.node}; ` +
      `server CPU ${serverCpu ?? 'unpinned'}, load generator CPU ${loadgenCpu ?? 'unpinned'}${quick ? '; quick mode' : ''}`,
  );

  const bulwark = {
    cpu: serverCpu ?? undefined,
    bulwarkMain,
    wsPath: flags.str(global.wsPath),
    bulwarkConfig,
    console: flags.bool(global.console),
  };
  const base = {
    timestamp: new Date().toISOString(),
    quick,
    machine,
    pinning: { serverCpu, loadgenCpu },
    bulwarkConfig,
    workers,
  };
  const progress = new Progress();
  const json = flags.bool(global.json);
  let failed = false;
  const reports: Record<string, unknown>[] = [];
  for (const scenario of scenarios) {
    const target = flags.given(global.target) ? flags.str(global.target) : (scenario.defaultTarget ?? 'both');
    const ctx = {
      quick,
      flags,
      log: (msg: string) => {
        progress.end();
        log(msg);
      },
      progress,
      bulwark,
      targets: parseTargets(target),
      workers,
      loadgenCpu,
    };
    const out = await runScenario(scenario, ctx, { base, outDir, json, html: !flags.bool(global.noHtml) });
    reports.push(out.report);
    if (out.failed) failed = true;
  }
  if (quick && !json) {
    process.stdout.write(
      '\nquick mode: a smoke test. The counts are too small for meaningful numbers or ratios ' +
        '(CPU is read in 10 ms ticks, RSS moves in heap-sized steps); use the full run.\n',
    );
  }
  if (json) process.stdout.write(`${JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2)}\n`);
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
