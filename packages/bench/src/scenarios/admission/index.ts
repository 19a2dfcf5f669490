/**
 * The admission scenario as the simulator runs it (Bulwark only): server CPU per refused upgrade
 * (HTTP 503) against per accepted connection, then the checks and table.
 *
 * @module
 */
import { anyFailed } from '../../harness/on-targets.js';
import { type Scenario } from '../../harness/scenario.js';
import { admissionOptions, flags } from './options.js';
import { admissionTable } from './report.js';
import { runAdmission } from './run.js';
import { admissionChecks } from './verdict.js';

export const admissionScenario: Scenario = {
  name: 'admission',
  summary: 'Bulwark only: server CPU per refused upgrade (HTTP 503) vs per accepted connect',
  flags: Object.values(flags),
  async run(ctx) {
    const o = admissionOptions(ctx);
    const results = await runAdmission(ctx.bulwark, o, ctx.log);
    return {
      options: o,
      results,
      ratios: [],
      failed: anyFailed(results),
      checks: admissionChecks(results),
      charts: [],
      table: admissionTable({ results }),
    };
  },
};
