/**
 * The fanout-mixed report: latency charts per class and the table.
 *
 * @module
 */
import { fmt, formatTable } from '../../harness/format.js';
import { type Chart } from '../../harness/scenario.js';
import type { Timeline } from '../../harness/timeline.js';
import { mixedLayout } from './run.js';
import { CLASSES, type FanoutMixedOptions, type FanoutMixedResult } from './types.js';

/** mixedCharts draws deliveries/s and p99 latency over time per class, one chart pair per server. */
export function mixedCharts(target: string, timeline: Timeline): Chart[] {
  return [
    {
      title: `${target}: deliveries/s by channel class`,
      xLabel: 's',
      yLabel: 'deliveries/s',
      series: CLASSES.map((c) => timeline.rate(c)),
    },
    {
      title: `${target}: p99 latency by channel class`,
      xLabel: 's',
      yLabel: 'ms',
      series: CLASSES.map((c) => timeline.quantile(c, 99, `${c} p99`)),
    },
  ];
}

/** mixedTable renders the results of every server. */
export function mixedTable(
  opts: FanoutMixedOptions,
  outcomes: ReadonlyArray<{ target: string; result?: FanoutMixedResult; error?: string }>,
): string {
  const { teams } = mixedLayout(opts.players, opts.teamSize);
  const head =
    `fanout-mixed: ${fmt(opts.players)} players, each on 3 channels (personal, team of ${opts.teamSize}, world); ` +
    `${fmt(teams)} teams; publications/s: world ${fmt(opts.worldRate, 1)}, each team ${fmt(opts.teamRate, 1)}, ` +
    `personal ${fmt(opts.personalRate)} in all; ${opts.seconds} s`;
  const rows: string[][] = [
    ['target', 'class', 'channels × subs', 'deliveries', 'deliveries/s (expected)', 'p50 / p99 / max (ms)', 'loss'],
  ];
  const notes: string[] = [];
  for (const o of outcomes) {
    const r = o.result;
    if (!r) {
      notes.push(`  ${o.target}: ${o.error ?? 'no result'}`);
      continue;
    }
    for (const name of CLASSES) {
      const c = r.classes[name];
      const l = c.latencyMs;
      rows.push([
        r.target,
        name,
        `${fmt(c.channels)} × ${fmt(c.subscribersPerChannel, Number.isInteger(c.subscribersPerChannel) ? 0 : 1)}`,
        fmt(c.deliveries),
        `${fmt(c.deliveriesPerSec)} (${fmt(c.expectedDeliveriesPerSec)})`,
        `${fmt(l.p50, 2)} / ${fmt(l.p99, 2)} / ${fmt(l.max, 1)}`,
        `${fmt(c.loss.missing)} of ${fmt(c.loss.expected)}`,
      ]);
    }
    notes.push(
      `  ${r.target}: server ${fmt(r.serverCpuMicrosPerDelivery, 2)} µs CPU/delivery (${fmt(r.serverCpuPercent, 1)}% of a core); ` +
        `load generator ${fmt(r.loadgenCpuPercent, 1)}% CPU, event-loop delay p99 ${fmt(r.loadgenLoopDelayMs.p99, 1)} / ` +
        `max ${fmt(r.loadgenLoopDelayMs.max, 1)} ms; setup ${fmt(r.setup.subscribes)} subscribes in ${fmt(r.setup.seconds, 1)} s` +
        (r.setup.refusedUpgrades > 0 ? ` (${fmt(r.setup.refusedUpgrades)} upgrades refused with 503, retried)` : '') +
        (r.disconnects > 0 ? `; ${fmt(r.disconnects)} disconnects` : '') +
        (r.publishErrors > 0 ? `; ${fmt(r.publishErrors)} publish errors` : '') +
        (r.wrongChannel > 0 ? `; ${fmt(r.wrongChannel)} wrong-channel pushes` : '') +
        (r.kernel.tcpRetransSegs > 0 ? `; ${fmt(r.kernel.tcpRetransSegs)} TCP retransmits` : ''),
    );
    if (r.loadgenLoopDelayMs.max >= opts.p99LimitMs) {
      notes.push(
        `  ${r.target}: the load generator's event loop stalled for ${fmt(r.loadgenLoopDelayMs.max, 1)} ms: ` +
          'latencies near that are its own, not the server’s (a busy machine, GC); rerun on a quiet machine',
      );
    }
  }
  return [head, formatTable(rows), ...notes].join('\n');
}
