/**
 * Pass/fail checks and charts for the five scenarios that predate the {@link Scenario} contract
 * (fanout, connections, admission, overload, stalled): their results already hold verdicts and
 * ratios; this turns them into the same {@link Check}s and {@link Chart}s the newer scenarios
 * hand back, so every scenario ends with a verdict and an HTML report.
 *
 * @module
 */
import type { AdmissionResult } from '../scenarios/admission.js';
import type { ConnectionsResult } from '../scenarios/connections.js';
import type { FanoutResult } from '../scenarios/fanout.js';
import type { OverloadResult } from '../scenarios/overload.js';
import type { StalledResult } from '../scenarios/stalled.js';
import type { Ratio } from './report.js';
import { check, type Chart, type Check } from './scenario.js';

/** Outcomes keyed by target name (raw, bulwark, …), as ScenarioReport.results holds them. */
type Outcomes<R> = Partial<Record<string, { result: R } | { error: string } | { skipped: string }>>;

function results<R>(outcomes: Outcomes<R>): Array<[string, R]> {
  const out: Array<[string, R]> = [];
  for (const [target, o] of Object.entries(outcomes)) if (o && 'result' in o) out.push([target, o.result]);
  return out;
}

/** ratioChecks turns Bulwark/reference ratios (with their targets) into checks. */
export function ratioChecks(ratios: readonly Ratio[]): Check[] {
  return ratios.map((r) => check(`Bulwark/raw ${r.name}`, r.ratio, '<=', r.target, '×'));
}

/** fanoutChecks: no loss and p99 within the limit at the fixed rate, for every server; the ratios. */
export function fanoutChecks(outcomes: Outcomes<FanoutResult>, ratios: readonly Ratio[], p99LimitMs: number): Check[] {
  const checks: Check[] = [];
  for (const [target, r] of results(outcomes)) {
    checks.push(
      check(`${target}: missing deliveries at the fixed rate`, r.fixed.loss.missing, '==', 0),
      check(`${target}: p99 latency at the fixed rate`, r.fixed.latencyMs.p99, '<=', p99LimitMs, 'ms'),
    );
  }
  return [...checks, ...ratioChecks(ratios)];
}

/** fanoutCharts: the fixed phase's worst latency per second, and the ramp's p99 by offered rate. */
export function fanoutCharts(outcomes: Outcomes<FanoutResult>): Chart[] {
  const rs = results(outcomes);
  const charts: Chart[] = [
    {
      title: 'Fixed rate: worst latency of the publications sent in each second',
      xLabel: 'seconds into the phase',
      yLabel: 'ms',
      series: rs.map(([t, r]) => ({ label: t, points: r.fixed.maxLatencyBySecondMs.map((v, i) => [i, v]) })),
    },
  ];
  if (rs.some(([, r]) => r.ramp)) {
    charts.push({
      title: 'Ramp: p99 latency by delivered messages/s',
      xLabel: 'delivered messages/s',
      yLabel: 'p99 ms',
      series: rs.map(([t, r]) => ({
        label: t,
        points: [...(r.ramp?.steps ?? [])]
          .sort((a, b) => a.deliveredPerSec - b.deliveredPerSec)
          .map((s) => [s.deliveredPerSec, s.latencyMs.p99]),
      })),
    });
  }
  return charts;
}

/** connectionsChecks: every connection made and kept; the ratios. */
export function connectionsChecks(outcomes: Outcomes<ConnectionsResult>, ratios: readonly Ratio[]): Check[] {
  const checks: Check[] = [];
  for (const [target, r] of results(outcomes)) {
    checks.push(
      check(`${target}: connections failed`, r.failed, '==', 0),
      check(`${target}: connections closed while idle`, r.closedDuringSettle, '==', 0),
    );
  }
  return [...checks, ...ratioChecks(ratios)];
}

/** admissionChecks: every attempt at the full node refused, accepted clients untouched, refusals cheaper. */
export function admissionChecks(outcomes: Outcomes<AdmissionResult>): Check[] {
  return results(outcomes).flatMap(([target, r]) => [
    check(`${target}: attempts not refused at the full node`, r.notRefused, '==', 0),
    check(`${target}: accepted clients closed by refusals`, r.acceptedClosed, '==', 0),
    check(`${target}: accepted connection cost ÷ refusal cost`, r.acceptedToRejectedRatio, '>=', 1, '×'),
  ]);
}

/** overloadChecks restates the scenario's own verdict at the highest multiplier. */
export function overloadChecks(outcomes: Outcomes<OverloadResult>): Check[] {
  return results(outcomes).flatMap(([, r]) => [
    check(
      `goodput at ${r.verdict.multiplier}× capacity, shedding on`,
      r.verdict.goodput,
      '>=',
      r.verdict.goodputFloor,
      'polls/s',
    ),
    check(
      `admitted p99 at ${r.verdict.multiplier}× capacity, shedding on`,
      r.verdict.p99,
      '<=',
      r.verdict.p99Ceiling,
      'ms',
    ),
  ]);
}

/** overloadCharts: goodput by offered load, with and without shedding. */
export function overloadCharts(outcomes: Outcomes<OverloadResult>): Chart[] {
  return results(outcomes).map(([, r]) => ({
    title: 'History polls served per second by offered load',
    xLabel: 'offered polls/s',
    yLabel: 'served polls/s',
    series: [true, false].map((on) => ({
      label: on ? 'shedding on' : 'shedding off',
      points: r.runs.filter((x) => x.shedding === on).map((x) => [x.offeredPerSec, x.goodputPerSec]),
    })),
  }));
}

/** stalledChecks restates the scenario's own verdict. */
export function stalledChecks(outcomes: Outcomes<StalledResult>): Check[] {
  return results(outcomes).flatMap(([, r]) => [
    check('healthy p99 with the queue cap', r.verdict.p99, '<=', r.verdict.p99Ceiling, 'ms'),
    check('memory the stalled clients add, capped', r.verdict.addedRssMiB, '<=', r.verdict.addedRssCeilingMiB, 'MiB'),
  ]);
}
