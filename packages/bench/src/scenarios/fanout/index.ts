/**
 * The fan-out scenario as the simulator runs it: subscribers over channels, one publisher, on
 * raw ws, Bulwark and Socket.IO (default all three), Bulwark with JSON and with Protobuf clients
 * (--format, default both), then the ratios, checks and table.
 *
 * @module
 */
import { anyFailed, runOnTargets } from '../../harness/on-targets.js';
import { type Scenario } from '../../harness/scenario.js';
import type { BulwarkClientName } from '../../load/session-clients.js';
import { fanoutOptions, flags } from './options.js';
import { fanoutCharts, fanoutTable } from './report.js';
import { runFanout } from './run.js';
import { fanoutChecks, fanoutRatios, fanoutSocketIoRatios } from './verdict.js';

export const fanoutScenario: Scenario = {
  name: 'fanout',
  summary: 'subscribers over channels, one publisher: fixed rate + ramp to the limit',
  flags: Object.values(flags),
  defaultTarget: 'all',
  async run(ctx) {
    const o = { ...fanoutOptions(ctx), loadgenCpu: ctx.loadgenCpu };
    const results = await runOnTargets(
      'fanout',
      ctx,
      (s, kind) => runFanout(s, o, ctx.log, kind as BulwarkClientName),
      1,
      o.formats,
    );
    const ratios = fanoutRatios(results);
    const socketioRatios = fanoutSocketIoRatios(results);
    // Quick runs are too small for CPU ratios to mean anything (10 ms CPU ticks): no ratio checks.
    const checks = fanoutChecks(results, ctx.quick ? [] : ratios, o.p99LimitMs);
    return {
      options: o,
      results,
      ratios,
      socketioRatios,
      failed: anyFailed(results),
      checks,
      charts: fanoutCharts(results),
      table: fanoutTable({ results, ratios, socketioRatios }),
    };
  },
};
