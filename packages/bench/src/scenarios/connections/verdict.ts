/**
 * The idle-connections verdict: the Bulwark/raw ratios (memory per idle connection ≤ 1.2×, CPU per
 * connect ≤ 1.5×), the informational Bulwark/Socket.IO ones, and the checks.
 *
 * @module
 */

import { type Outcomes, ratio, infoRatio, resultsOf, ratioChecks } from '../../harness/comparison.js';
import { type Ratio, resultOf, type InfoRatio } from '../../harness/report.js';
import { type Check, check } from '../../harness/scenario.js';
import { type ConnectionsResult } from './run.js';

/** connectionsRatios compares memory per idle connection (≤ 1.2×) and CPU per connect (≤ 1.5×). */
export function connectionsRatios(results: Outcomes<ConnectionsResult>): Ratio[] {
  const raw = resultOf(results.raw);
  const bw = resultOf(results.bulwark);
  if (!raw || !bw) return [];
  return [
    ratio('server memory per idle connection', bw.rssPerConnectionBytes, raw.rssPerConnectionBytes, 1.2),
    ratio('server CPU per connect (JWT included)', bw.serverCpuMicrosPerConnect, raw.serverCpuMicrosPerConnect, 1.5),
  ];
}

/** connectionsSocketIoRatios compares Bulwark with Socket.IO on memory per idle connection and CPU per connect. */
export function connectionsSocketIoRatios(results: Outcomes<ConnectionsResult>): InfoRatio[] {
  const sio = resultOf(results.socketio);
  const bw = resultOf(results.bulwark);
  if (!sio || !bw) return [];
  return [
    infoRatio('server memory per idle connection', bw.rssPerConnectionBytes, sio.rssPerConnectionBytes),
    infoRatio('server CPU per connect (JWT included)', bw.serverCpuMicrosPerConnect, sio.serverCpuMicrosPerConnect),
  ];
}

/** connectionsChecks: every connection made and kept; the ratios. */
export function connectionsChecks(outcomes: Outcomes<ConnectionsResult>, ratios: readonly Ratio[]): Check[] {
  const checks: Check[] = [];
  for (const [target, r] of resultsOf(outcomes)) {
    checks.push(
      check(`${target}: connections failed`, r.failed, '==', 0),
      check(`${target}: connections closed while idle`, r.closedDuringSettle, '==', 0),
    );
  }
  return [...checks, ...ratioChecks(ratios)];
}
