/**
 * The rolling-restart scenario as the simulator registers it: its name, summary and flags, and the
 * run with the verdict and report.
 *
 * @module
 */
import { type Scenario } from '../../harness/scenario.js';
import { flags } from './options.js';
import { readOptions } from './options.js';
import { runRolling } from './run.js';
import { rollingChecks } from './verdict.js';
import { rollingTable } from './report.js';

/** rollingRestartScenario is the registered scenario. */
export const rollingRestartScenario: Scenario = {
  name: 'rolling-restart',
  summary:
    'drain (SIGTERM) the node holding every player, then the next: reconnect rate over time and ' +
    'recovery completeness (every missed publication recovered). Bulwark on Redis only.',
  flags: Object.values(flags),
  async run(ctx) {
    const o = readOptions(ctx);
    const { result, charts } = await runRolling(ctx, o);
    return { options: o, results: result, checks: rollingChecks(result, o), charts, table: rollingTable(result, o) };
  },
};
