/**
 * The delta scenario as the simulator runs it (Bulwark only): board channels with full
 * payloads and with delta compression, in JSON and Protobuf, then the checks and table.
 *
 * @module
 */
import { anyFailed } from '../../harness/on-targets.js';
import { type Scenario } from '../../harness/scenario.js';
import { deltaOptions, flags } from './options.js';
import { deltaTable } from './report.js';
import { runDelta } from './run.js';
import { deltaChecks } from './verdict.js';

export const deltaScenario: Scenario = {
  name: 'delta',
  summary: 'Bulwark only: wire bytes and server CPU per delivery on ~2 KB board channels, delta vs full',
  flags: Object.values(flags),
  async run(ctx) {
    const o = deltaOptions(ctx);
    const results = await runDelta(ctx.bulwark, o, ctx.log);
    return {
      options: o,
      results,
      ratios: [],
      failed: anyFailed(results),
      checks: deltaChecks(results),
      charts: [],
      table: deltaTable({ results, options: o }),
    };
  },
};
