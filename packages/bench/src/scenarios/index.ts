/**
 * The registry of scenarios that follow the {@link Scenario} contract (one file each). main.ts
 * runs any scenario named here; the older five (fanout, connections, admission, overload,
 * stalled) are wired in main.ts directly.
 *
 * @module
 */
import type { Scenario } from '../lib/scenario.js';
import { connectionsScaleScenario } from './connections-scale.js';

/** Every registered scenario, in the order --help lists them. */
export const registry: Scenario[] = [connectionsScaleScenario];
