/**
 * The sections of the config about the node process itself: logging (`log`), its name and
 * cluster timings (`node`), shutdown and drain (`shutdown`, `drain`), and the demo page
 * (`demo`).
 *
 * @module
 */
import { z } from 'zod';
import { duration } from './common.js';

/** logSection is the `log` section. */
export const logSection = z
  .strictObject({
    level: z
      .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
      .default('info')
      .describe('Log level.'),
  })
  .prefault({});

/** nodeSection is the `node` section. */
export const nodeSection = z
  .strictObject({
    name: z.string().default('').describe('Node name shown in info and logs; empty means hostname_port.'),
    info_interval: duration('3s').describe(
      'How often a node tells the others its counts (the info API lists every node); a node silent for 3 intervals is dropped.',
    ),
    survey_timeout: duration('1s').describe(
      'Longest wait for the other nodes to answer a cluster-wide question (the channels API method).',
    ),
  })
  .prefault({});

/** shutdownSection is the `shutdown` section. */
export const shutdownSection = z
  .strictObject({
    timeout: duration('30s').describe('Longest graceful shutdown, drain included; then exit anyway.'),
  })
  .prefault({});

/** drainSection is the `drain` section. */
export const drainSection = z
  .strictObject({
    window: duration('10s').describe(
      'On SIGTERM or the drain API method, disconnect clients (3001, reconnect allowed) spread uniformly over this window.',
    ),
  })
  .prefault({})
  .describe('Bulwark: graceful drain on shutdown.');

/** demoSection is the `demo` section. */
export const demoSection = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe('Serve the bulletin board demo at / and a demo token endpoint. Local demos only.'),
  })
  .prefault({})
  .describe('Bulwark: the demo page.');
