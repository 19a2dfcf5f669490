/**
 * The neighbour scenario as the simulator runs it (Bulwark only): an idle node beside
 * CPU-hungry neighbour processes, probed as a demo page would, with the default shedding and
 * with the lag alone deciding; then the checks, table and charts.
 *
 * @module
 */
import { anyFailed } from '../../harness/on-targets.js';
import { type Scenario } from '../../harness/scenario.js';
import { flags, neighbourOptions } from './options.js';
import { neighbourCharts, neighbourTable } from './report.js';
import { runNeighbour } from './run.js';
import { neighbourChecks } from './verdict.js';

export const neighbourScenario: Scenario = {
  name: 'neighbour',
  summary: 'Bulwark only: an idle node beside CPU-hungry processes refuses no one (shedding vs lag alone)',
  flags: Object.values(flags),
  async run(ctx) {
    const o = neighbourOptions(ctx, ctx.bulwark.cpu);
    const { results, traces } = await runNeighbour(ctx.bulwark, o, ctx.log, ctx.progress);
    return {
      options: o,
      results,
      ratios: [],
      failed: anyFailed(results),
      checks: neighbourChecks(results),
      charts: neighbourCharts(traces, o),
      table: neighbourTable({ results, options: o }),
    };
  },
};
