/**
 * The connections-scale scenario as the simulator registers it: its name, summary and flags.
 *
 * @module
 */
import { type Scenario } from '../../harness/scenario.js';
import { flags } from './options.js';
import { runConnectionsScale } from './run.js';

/** connectionsScaleScenario: 100,000 idle connections from one machine. */
export const connectionsScaleScenario: Scenario = {
  name: 'connections-scale',
  summary:
    'Bulwark only: N idle connections (JWT + 1 subscription each; default 100,000) from several load processes against bulwark --workers W on Redis',
  flags: Object.values(flags),
  run: runConnectionsScale,
};
