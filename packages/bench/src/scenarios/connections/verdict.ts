/**
 * The idle-connections verdict: the Bulwark/raw ratios (memory per idle connection ≤ 1.2×, CPU per
 * connect ≤ 1.5×, for JSON and each other client kind), other kinds' memory / JSON's (≤ 1.5×), the informational Bulwark/Socket.IO ones, and the checks.
 *
 * @module
 */

import { type Outcomes, ratio, infoRatio, resultsOf, ratioChecks, variantKeys } from '../../harness/comparison.js';
import { type Ratio, resultOf, type InfoRatio } from '../../harness/report.js';
import { type Check, check } from '../../harness/scenario.js';
import { type ConnectionsResult } from './run.js';

/**
 * connectionsRatios compares memory per idle connection (≤ 1.2×) and CPU per connect (≤ 1.5×)
 * with raw ws, for Bulwark with JSON clients and with each other client kind; and each other
 * kind's memory per idle connection with JSON WebSocket's (≤ 1.5×: issue 13's bound for the
 * HTTP transports, which join as client kinds, applied to Protobuf too).
 */
export function connectionsRatios(results: Outcomes<ConnectionsResult>): Ratio[] {
  const raw = resultOf(results.raw);
  const bw = resultOf(results.bulwark);
  const mem = 'server memory per idle connection';
  const cpu = 'server CPU per connect (JWT included)';
  const vsRaw = (r: ConnectionsResult, label?: string): Ratio[] =>
    raw
      ? [
          ratio(mem, r.rssPerConnectionBytes, raw.rssPerConnectionBytes, 1.2, label),
          ratio(cpu, r.serverCpuMicrosPerConnect, raw.serverCpuMicrosPerConnect, 1.5, label),
        ]
      : [];
  const out: Ratio[] = bw ? vsRaw(bw) : [];
  for (const key of variantKeys(results)) {
    const v = resultOf(results[key]);
    if (!v) continue;
    const kind = key.slice('bulwark-'.length);
    out.push(...vsRaw(v, `Bulwark ${kind}/raw`));
    if (bw) out.push(ratio(mem, v.rssPerConnectionBytes, bw.rssPerConnectionBytes, 1.5, `Bulwark ${kind}/json`));
  }
  return out;
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
