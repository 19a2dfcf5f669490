/**
 * The registry: every scenario of the simulator, in the order --help lists them. main.ts runs a
 * scenario by its name here, and nothing else.
 *
 * @module
 */
import type { Scenario } from '../harness/scenario.js';
import { admissionScenario } from './admission/index.js';
import { apiPublishScenario } from './api-publish/index.js';
import { boardEventScenario } from './board-event/index.js';
import { coldCacheScenario } from './cold-cache/index.js';
import { connectionsScaleScenario } from './connections-scale/index.js';
import { connectionsScenario } from './connections/index.js';
import { deltaScenario } from './delta/index.js';
import { fanoutMixedScenario } from './fanout-mixed/index.js';
import { fanoutScenario } from './fanout/index.js';
import { historyDepthScenario } from './history-depth/index.js';
import { jetstreamScenario } from './jetstream/index.js';
import { hugScenario } from './hug/index.js';
import { lobbyScenario } from './lobby/index.js';
import { neighbourScenario } from './neighbour/index.js';
import { outboxScenario } from './outbox/index.js';
import { overloadScenario } from './overload/index.js';
import { retryStormScenario } from './retry-storm/index.js';
import { rollingRestartScenario } from './rolling-restart/index.js';
import { stalledScenario } from './stalled/index.js';
import { stickerScenario } from './sticker/index.js';

/** Every scenario, in the order --help lists them. */
export const registry: Scenario[] = [
  fanoutScenario,
  connectionsScenario,
  admissionScenario,
  overloadScenario,
  stalledScenario,
  fanoutMixedScenario,
  connectionsScaleScenario,
  boardEventScenario,
  coldCacheScenario,
  stickerScenario,
  retryStormScenario,
  hugScenario,
  rollingRestartScenario,
  neighbourScenario,
  deltaScenario,
  lobbyScenario,
  historyDepthScenario,
  outboxScenario,
  jetstreamScenario,
  apiPublishScenario,
];

/** The scenarios run when none is named. */
export const defaultScenarios = ['fanout', 'connections'];
