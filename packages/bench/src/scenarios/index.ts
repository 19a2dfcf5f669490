/**
 * The registry of scenarios that follow the {@link Scenario} contract (one file each). main.ts
 * runs any scenario named here; the older five (fanout, connections, admission, overload,
 * stalled) are wired in main.ts directly.
 *
 * @module
 */
import type { Scenario } from '../harness/scenario.js';
import { boardEventScenario } from './board-event.js';
import { coldCacheScenario } from './cold-cache.js';
import { connectionsScaleScenario } from './connections-scale.js';
import { fanoutMixedScenario } from './fanout-mixed.js';
import { hugScenario } from './hug.js';
import { retryStormScenario } from './retry-storm.js';
import { rollingRestartScenario } from './rolling-restart.js';

/** Every registered scenario, in the order --help lists them. */
export const registry: Scenario[] = [
  fanoutMixedScenario,
  connectionsScaleScenario,
  boardEventScenario,
  coldCacheScenario,
  retryStormScenario,
  hugScenario,
  rollingRestartScenario,
];
