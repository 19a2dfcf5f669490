/**
 * The admission report: server CPU per phase (accepted upgrade, connect, refused upgrade) as a table.
 *
 * @module
 */
import { fmt, formatTable } from '../../harness/format.js';
import type { ScenarioReport } from '../../harness/report.js';
import { type AdmissionResult, type PhaseCost } from './run.js';

/** admissionTable renders the admission report. */
export function admissionTable(report: Pick<ScenarioReport<AdmissionResult>, 'results'>): string {
  const o = report.results.bulwark;
  if (!o || !('result' in o)) {
    return `admission: ${o && 'error' in o ? `ERROR: ${o.error}` : o && 'skipped' in o ? `skipped: ${o.skipped}` : 'not run'}`;
  }
  const r = o.result;
  const reps = o.runs?.length ?? 1;
  const row = (label: string, p: PhaseCost): string[] => [
    label,
    fmt(p.count),
    fmt(p.serverCpuMicrosPerOp, 1),
    fmt(p.serverCpuMicrosPerOpTicks, 0),
    fmt(p.rate),
  ];
  return [
    `admission: client.connection_limit ${fmt(r.upgrade.count)}, then ${fmt(r.reject.count)} upgrade attempts at the full node` +
      (reps > 1 ? ` (median of ${reps} runs)` : ''),
    formatTable([
      ['phase', 'ops', 'server CPU/op (µs)', 'cross-check, ticks (µs)', 'ops/s'],
      row('accepted: WebSocket upgrade', r.upgrade),
      row('accepted: connect with JWT', r.connect),
      ['accepted: upgrade + connect', '', fmt(r.acceptedMicrosPerConnection, 1), '', ''],
      row('refused: HTTP 503 + Retry-After', r.reject),
    ]),
    `accepted / refused CPU: ${fmt(r.acceptedToRejectedRatio, 1)}×; not refused: ${r.notRefused}; ` +
      `Retry-After ${r.retryAfter.min}–${r.retryAfter.max} s (${r.retryAfter.distinct} distinct values); ` +
      `accepted clients closed meanwhile: ${r.acceptedClosed}; idle server CPU ${fmt(r.idleCpuMicrosPerSecond)} µs/s`,
  ].join('\n');
}
