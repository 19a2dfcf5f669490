/**
 * The stalled-clients scenario as the simulator runs it (Bulwark only): server memory and the
 * healthy subscribers' latency with a share of clients not reading, then the checks and table.
 *
 * @module
 */
import { anyFailed } from '../../harness/on-targets.js';
import { type Scenario } from '../../harness/scenario.js';
import { flags, stalledOptions } from './options.js';
import { stalledTable } from './report.js';
import { runStalled } from './run.js';
import { stalledChecks } from './verdict.js';

export const stalledScenario: Scenario = {
  name: 'stalled',
  summary: 'Bulwark only: server memory and healthy latency with 5% of clients not reading',
  flags: Object.values(flags),
  async run(ctx) {
    const o = stalledOptions(ctx);
    const results = await runStalled(ctx.bulwark, o, ctx.log);
    return {
      options: o,
      results,
      ratios: [],
      failed: anyFailed(results),
      checks: stalledChecks(results),
      charts: [],
      table: stalledTable({ results, options: o }),
    };
  },
};
