/**
 * The jetstream scenario's judgement, pure so the bench tests can feed it numbers: what one
 * phase measured, whether it passed (every message delivered once and in order, the rate held
 * on both sides, p99 under the limit), and which side saturated first: the bench process (the
 * JetStream publisher and the subscribers share it), the JetStream publish side, Bulwark's CPU,
 * or Bulwark's consumer round trip (one pull-publish-ack at a time with max_ack_pending 1).
 *
 * @module
 */
import type { LatencySummary } from '../../harness/stats.js';

/** PhaseResult is what one phase (the fixed rate or a ramp step) measured, after its drain. */
export interface PhaseResult {
  label: string;
  targetRate: number;
  /** Messages JetStream acknowledged to the backend in this phase. */
  published: number;
  /** Publishes JetStream refused or did not acknowledge (ambiguous: they may be in the stream). */
  publishErrors: number;
  /** The rate the backend achieved (acknowledged messages / phase seconds). */
  publishedPerSec: number;
  /** Messages of this phase consumed per second: delivered to their subscribers, from the phase start to the last one. */
  consumedPerSec: number;
  /** From the end of publishing to the phase's last delivery: a consumer that keeps up ends within one latency. */
  tailMs: number;
  /** Deliveries expected (published × subscribers per channel) and how many never arrived. */
  expected: number;
  missing: number;
  duplicates: number;
  outOfOrder: number;
  /** JetStream publish → client delivery, ms. */
  latencyMs: LatencySummary;
  /** Most messages the consumer had not acknowledged yet (pending + ack pending), sampled. */
  maxLag: number;
  /** Consumer lag when the drain ended (0 once everything was consumed). */
  lagAfterDrain: number;
  /** How long the drain after the phase took. */
  drainMs: number;
  serverCpuPercent: number;
  loadgenCpuPercent: number;
  /** The local nats-server's CPU (NaN when NATS is not a single local process). */
  natsCpuPercent: number;
}

/** Verdict is a phase's pass/fail with the first reason it failed. */
export interface Verdict {
  pass: boolean;
  reason: string;
}

/** A rate counts as held within this fraction of its target. */
export const RATE_TOLERANCE = 0.95;
/** CPU use (% of one core) from which a process counts as saturated. */
export const CPU_SATURATED = 90;

/** backendBehind tells whether the backend could not publish at the phase's rate. */
function backendBehind(r: PhaseResult): boolean {
  return r.publishedPerSec < r.targetRate * RATE_TOLERANCE;
}

/**
 * consumerBehind tells whether Bulwark consumed slower than the backend published: its backlog
 * grew during the phase, so the last message arrived later after publishing stopped than the
 * latency limit allows (a consumer that keeps up delivers it within one latency).
 */
function consumerBehind(r: PhaseResult, p99LimitMs: number): boolean {
  return r.tailMs > p99LimitMs || r.lagAfterDrain > 0;
}

/**
 * judgePhase passes a phase when no message is lost, doubled or reordered, both sides held the
 * rate, and the p99 latency is within `p99LimitMs`. Loss and duplicates come first: they are
 * failures of the consumer's guarantees, the rest are limits of the machine.
 */
export function judgePhase(r: PhaseResult, p99LimitMs: number): Verdict {
  const fail = (reason: string): Verdict => ({ pass: false, reason });
  if (r.lagAfterDrain > 0) return fail(`${r.lagAfterDrain} messages still in the consumer after the drain`);
  if (r.publishErrors > 0) return fail(`${r.publishErrors} JetStream publishes failed`);
  if (r.missing > 0) return fail(`${r.missing} deliveries lost`);
  if (r.duplicates > 0) return fail(`${r.duplicates} duplicate deliveries`);
  if (r.outOfOrder > 0) return fail(`${r.outOfOrder} deliveries out of order`);
  if (backendBehind(r)) return fail(`the backend published ${Math.round(r.publishedPerSec)} of ${r.targetRate} msg/s`);
  if (consumerBehind(r, p99LimitMs)) {
    return fail(`Bulwark fell behind: its last message came ${r.tailMs} ms after publishing stopped`);
  }
  if (!(r.latencyMs.p99 <= p99LimitMs)) return fail(`p99 ${r.latencyMs.p99} ms > ${p99LimitMs} ms`);
  return { pass: true, reason: '' };
}

/**
 * saturatedSide names what limited a failing phase. The bench process runs the backend and
 * the subscribers, so its CPU is checked first (then nothing else can be concluded); then the
 * publish side, Bulwark's CPU, and finally Bulwark's consumer loop below CPU saturation (its
 * pull-publish-ack round trips, `max_ack_pending` at a time).
 */
export function saturatedSide(r: PhaseResult, maxAckPending: number, p99LimitMs: number): string {
  if (r.loadgenCpuPercent >= CPU_SATURATED) {
    return `load generator CPU (${r.loadgenCpuPercent}%: the backend and the subscribers share it)`;
  }
  if (backendBehind(r)) {
    return `JetStream publish side: the backend got ${Math.round(r.publishedPerSec)} of ${r.targetRate} msg/s acknowledged`;
  }
  if (r.serverCpuPercent >= CPU_SATURATED) return `Bulwark CPU (${r.serverCpuPercent}%)`;
  if (r.natsCpuPercent >= CPU_SATURATED) return `NATS server CPU (${r.natsCpuPercent}%)`;
  if (consumerBehind(r, p99LimitMs)) {
    return `Bulwark's JetStream consumer below CPU saturation (server ${r.serverCpuPercent}%): one pull-publish-ack round trip per message, max_ack_pending ${maxAckPending}`;
  }
  return `latency/loss below CPU saturation (server ${r.serverCpuPercent}%, load generator ${r.loadgenCpuPercent}%, NATS ${r.natsCpuPercent}%)`;
}

/** limitOf is the run's verdict on its limit: the first failing phase's saturated side, or "not reached". */
export function limitOf(
  phases: readonly (PhaseResult & Verdict)[],
  maxAckPending: number,
  p99LimitMs: number,
): { maxPassingRate: number; limitedBy: string } {
  const passing = phases.filter((p) => p.pass);
  const firstFail = phases.find((p) => !p.pass);
  return {
    maxPassingRate: passing.reduce((m, p) => Math.max(m, p.targetRate), 0),
    limitedBy: firstFail === undefined ? 'not reached' : saturatedSide(firstFail, maxAckPending, p99LimitMs),
  };
}
