/**
 * The idle-connections scenario as the simulator runs it: N idle connections (JWT and one
 * subscription each) on raw ws, Bulwark and Socket.IO (default all three), Bulwark with JSON and
 * with Protobuf clients (--format, default both), repeated with the columns alternating, then the ratios, checks and table.
 *
 * @module
 */
import { anyFailed, runOnTargets } from '../../harness/on-targets.js';
import { type Scenario } from '../../harness/scenario.js';
import type { BulwarkClientName } from '../../load/session-clients.js';
import { connectionsOptions, flags } from './options.js';
import { connectionsTable } from './report.js';
import { runConnections } from './run.js';
import { connectionsChecks, connectionsRatios, connectionsSocketIoRatios } from './verdict.js';

export const connectionsScenario: Scenario = {
  name: 'connections',
  summary: 'idle connections, each with a JWT and one subscription',
  flags: Object.values(flags),
  defaultTarget: 'all',
  async run(ctx) {
    const o = connectionsOptions(ctx);
    const repeat = ctx.flags.num(flags.repeat);
    const results = await runOnTargets(
      'connections',
      ctx,
      (s, kind) => runConnections(s, o, ctx.log, kind as BulwarkClientName),
      repeat,
      o.formats,
    );
    const ratios = connectionsRatios(results);
    const socketioRatios = connectionsSocketIoRatios(results);
    // Quick runs are too small for CPU and memory ratios to mean anything: no ratio checks.
    const checks = connectionsChecks(results, ctx.quick ? [] : ratios);
    return {
      options: o,
      results,
      ratios,
      socketioRatios,
      failed: anyFailed(results),
      checks,
      charts: [],
      table: connectionsTable({ results, ratios, socketioRatios }),
    };
  },
};
