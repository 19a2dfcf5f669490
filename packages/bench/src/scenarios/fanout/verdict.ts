/**
 * The fan-out verdict: a ramp step's pass/fail, the Bulwark/raw (JSON and each other client
 * kind), Protobuf/JSON and Bulwark/Socket.IO ratios of CPU per delivery, and the checks (no loss, p99 within the limit at the fixed rate, ratios).
 *
 * @module
 */

import { type Outcomes, ratio, infoRatio, resultsOf, ratioChecks, variantKeys } from '../../harness/comparison.js';
import { type Ratio, resultOf, type InfoRatio } from '../../harness/report.js';
import { type Check, check } from '../../harness/scenario.js';
import { type PhaseResult, type FanoutResult } from './types.js';

/** judge decides whether a ramp step passed and, if not, why. */
export function judge(r: PhaseResult, p99LimitMs: number): { pass: boolean; reason: string } {
  const reasons: string[] = [];
  if (r.loss.missing > 0) reasons.push(`loss ${r.loss.missing}`);
  if (!(r.latencyMs.p99 < p99LimitMs)) reasons.push(`p99 ${r.latencyMs.p99} ms`);
  if (r.achievedRate < 0.95 * r.targetRate) reasons.push(`publisher reached only ${r.achievedRate}/s`);
  if (r.disconnects > 0) reasons.push(`${r.disconnects} disconnects`);
  if (r.publishErrors > 0) reasons.push(`${r.publishErrors} publish errors`);
  if (r.wrongChannel > 0) reasons.push(`${r.wrongChannel} wrong-channel pushes`);
  return { pass: reasons.length === 0, reason: reasons.join(', ') };
}

/**
 * fanoutRatios compares CPU per delivered message at the fixed load: Bulwark (JSON) / raw ≤ 1.0×;
 * Bulwark with each other client kind / raw ≤ 1.0× as well, and / Bulwark JSON ≤ 1.0× (a
 * Protobuf delivery must cost the server no more than a JSON one).
 */
export function fanoutRatios(results: Outcomes<FanoutResult>): Ratio[] {
  const raw = resultOf(results.raw);
  const bw = resultOf(results.bulwark);
  const name = 'server CPU per delivered message';
  const cpu = (r: FanoutResult) => r.fixed.serverCpuMicrosPerDelivery;
  const out: Ratio[] = raw && bw ? [ratio(name, cpu(bw), cpu(raw), 1.0)] : [];
  for (const key of variantKeys(results)) {
    const v = resultOf(results[key]);
    if (!v) continue;
    const kind = key.slice('bulwark-'.length);
    if (raw) out.push(ratio(name, cpu(v), cpu(raw), 1.0, `Bulwark ${kind}/raw`));
    if (bw) out.push(ratio(name, cpu(v), cpu(bw), 1.0, `Bulwark ${kind}/json`));
  }
  return out;
}

/** fanoutSocketIoRatios compares Bulwark with Socket.IO on CPU per delivered message at the fixed load. */
export function fanoutSocketIoRatios(results: Outcomes<FanoutResult>): InfoRatio[] {
  const sio = resultOf(results.socketio);
  const bw = resultOf(results.bulwark);
  if (!sio || !bw) return [];
  return [
    infoRatio(
      'server CPU per delivered message',
      bw.fixed.serverCpuMicrosPerDelivery,
      sio.fixed.serverCpuMicrosPerDelivery,
    ),
  ];
}

/** fanoutChecks: no loss and p99 within the limit at the fixed rate, for every server; the ratios. */
export function fanoutChecks(outcomes: Outcomes<FanoutResult>, ratios: readonly Ratio[], p99LimitMs: number): Check[] {
  const checks: Check[] = [];
  for (const [target, r] of resultsOf(outcomes)) {
    checks.push(
      check(`${target}: missing deliveries at the fixed rate`, r.fixed.loss.missing, '==', 0),
      check(`${target}: p99 latency at the fixed rate`, r.fixed.latencyMs.p99, '<=', p99LimitMs, 'ms'),
    );
  }
  return [...checks, ...ratioChecks(ratios)];
}
