/**
 * The jetstream scenario's final table: one row per phase (rates on both sides, latency, the
 * consumer's lag, the CPU of Bulwark, the bench process and NATS, the verdict), then the
 * highest passing rate and what limited the run.
 *
 * @module
 */
import { fmt, formatTable } from '../../harness/format.js';
import type { JetStreamOptions } from './options.js';
import type { RunResult } from './run.js';

/** jetstreamTable is the text table a person reads at the end of a run. */
export function jetstreamTable(
  o: JetStreamOptions,
  r: Pick<RunResult, 'phases' | 'maxPassingRate' | 'limitedBy'>,
): string {
  const rows = [
    [
      'phase',
      'target/s',
      'published/s',
      'consumed/s',
      'p50 ms',
      'p99 ms',
      'max lag',
      'server CPU',
      'bench CPU',
      'NATS CPU',
      'verdict',
    ],
    ...r.phases.map((p) => [
      p.label,
      fmt(p.targetRate),
      fmt(p.publishedPerSec),
      fmt(p.consumedPerSec),
      fmt(p.latencyMs.p50, 2),
      fmt(p.latencyMs.p99, 2),
      fmt(p.maxLag),
      `${p.serverCpuPercent}%`,
      `${p.loadgenCpuPercent}%`,
      Number.isNaN(p.natsCpuPercent) ? '-' : `${p.natsCpuPercent}%`,
      p.pass ? 'pass' : `FAIL: ${p.reason}`,
    ]),
  ];
  return [
    `jetstream: ${o.channels} channels × ${o.subscribersPerChannel} subscribers, max_ack_pending ${o.maxAckPending}, batch ${o.batch}, ${o.storage} storage`,
    formatTable(rows),
    `highest passing rate: ${fmt(r.maxPassingRate)} msg/s; limited by: ${r.limitedBy}`,
  ].join('\n');
}
