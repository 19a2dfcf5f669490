/**
 * The overload scenario as the simulator runs it (Bulwark only): history polls at 1×, 2× and 10×
 * the measured capacity, load shedding on and off, then the checks, chart and table.
 *
 * @module
 */
import { anyFailed } from '../../harness/on-targets.js';
import { type Scenario } from '../../harness/scenario.js';
import { flags, overloadOptions } from './options.js';
import { overloadCharts, overloadTable } from './report.js';
import { runOverload } from './run.js';
import { overloadChecks } from './verdict.js';

export const overloadScenario: Scenario = {
  name: 'overload',
  summary: 'Bulwark only: history polls at 1x, 2x, 10x capacity, load shedding on and off',
  flags: Object.values(flags),
  async run(ctx) {
    const o = overloadOptions(ctx);
    const results = await runOverload(ctx.bulwark, o, ctx.log);
    return {
      options: o,
      results,
      ratios: [],
      failed: anyFailed(results),
      checks: overloadChecks(results),
      charts: overloadCharts(results),
      table: overloadTable({ results, options: o }),
    };
  },
};
