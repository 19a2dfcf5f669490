/**
 * Running one registered scenario end to end: its run (an error becomes an error report, not a
 * crash of the whole bench), then the table and verdict on stdout, the JSON results file and the
 * HTML report.
 *
 * @module
 */
import path from 'node:path';
import { checksTable } from './format.js';
import { writeHtmlReport } from './html-report.js';
import { writeReport } from './report.js';
import type { Scenario, ScenarioContext, ScenarioOutput } from './scenario.js';

/** RunSettings are the command line's choices about output. */
export interface RunSettings {
  /** Fields every results file starts with (timestamp, quick, machine, pinning, …). */
  base: { timestamp: string; machine: object } & Record<string, unknown>;
  outDir: string;
  /** Print JSON at the end instead of tables. */
  json: boolean;
  html: boolean;
}

/** runScenario runs `scenario` and writes its results; `failed` when it threw or a check failed. */
export async function runScenario(
  scenario: Scenario,
  ctx: ScenarioContext,
  settings: RunSettings,
): Promise<{ report: Record<string, unknown>; failed: boolean }> {
  const log = ctx.log;
  let out: ScenarioOutput;
  let failed = false;
  try {
    out = await scenario.run(ctx);
  } catch (err) {
    ctx.progress.end();
    const message = (err as Error).message;
    log(`${scenario.name}: ERROR: ${message}`);
    const serverLog = (err as { serverLog?: string[] }).serverLog;
    if (serverLog?.length) log(`  server output:\n    ${serverLog.slice(-15).join('\n    ')}`);
    out = {
      options: {},
      results: { error: message },
      checks: [],
      charts: [],
      table: `${scenario.name}: ERROR: ${message}`,
    };
    failed = true;
  }
  ctx.progress.end();
  // Key order is the results file's: the comparison scenarios' ratios come after the results.
  const report = {
    scenario: scenario.name,
    ...settings.base,
    options: out.options,
    results: out.results,
    ...(out.ratios !== undefined ? { ratios: out.ratios } : {}),
    ...(out.socketioRatios !== undefined ? { socketioRatios: out.socketioRatios } : {}),
    checks: out.checks,
    charts: out.charts,
  };
  if (out.failed || out.checks.some((c) => !c.pass)) failed = true;
  if (!settings.json) process.stdout.write(`\n${out.table}\n${checksTable(out.checks)}\n`);
  const file = writeReport(settings.outDir, report);
  log(`results written to ${path.relative(process.cwd(), file)}`);
  if (settings.html) {
    const html = writeHtmlReport(file.replace(/\.json$/, '.html'), { ...report, table: out.table });
    log(`HTML report: ${path.relative(process.cwd(), html)}`);
  }
  return { report, failed };
}
