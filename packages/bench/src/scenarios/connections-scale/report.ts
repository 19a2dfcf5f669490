/**
 * The connections-scale report: the charts and the table.
 *
 * @module
 */
import { MiB, fmt, fmtCounts, formatTable } from '../../harness/format.js';
import { type Chart, type Series } from '../../harness/scenario.js';
import type { Timeline } from '../../harness/timeline.js';
import { type Gauges, type ConnectionsScaleOptions, type ConnectionsScaleResult } from './types.js';

/** peakRate is the highest y of a rate series (0 when empty). */
export function peakRate(series: Series): number {
  return series.points.reduce((max, [, y]) => Math.max(max, y), 0);
}

export function charts(t: Timeline, g: Gauges): Chart[] {
  return [
    {
      title: 'Connections established over time',
      xLabel: 's since the connects began',
      yLabel: 'connections',
      series: [t.total('connected', 'established'), t.total('failed', 'failed')],
    },
    {
      title: 'Connect rate over time',
      xLabel: 's since the connects began',
      yLabel: 'per second',
      series: [
        t.rate('connected', 'connects/s'),
        t.rate('rejected', '503 refusals/s (retried)'),
        t.rate('failed', 'failures/s'),
      ],
    },
    {
      title: 'Handshake time (open → subscribed) over time',
      xLabel: 's since the connects began',
      yLabel: 'ms',
      series: [t.quantile('handshake', 50, 'p50'), t.quantile('handshake', 99, 'p99')],
    },
    {
      title: 'Resident memory over time',
      xLabel: 's since the connects began',
      yLabel: 'MiB',
      series: [
        { label: 'Bulwark (primary + workers)', points: g.serverRssMiB },
        { label: 'load processes', points: g.loadRssMiB },
      ],
    },
    {
      title: 'Bulwark CPU over time (primary + workers)',
      xLabel: 's since the connects began',
      yLabel: '% of one core',
      series: [{ label: 'CPU', points: g.serverCpuPercent }],
    },
  ];
}

export const kib = (bytes: number) => `${fmt(bytes / 1024, 1)} KiB`;

export const mib = (bytes: number) => `${fmt(bytes / MiB, 0)} MiB`;

export function table(o: ConnectionsScaleOptions, r: ConnectionsScaleResult): string {
  const cap = o.capacity;
  const loadTotal = r.loadgen.rssBytes.reduce((a, b) => a + b, 0);
  const rows: string[][] = [
    ['', ''],
    [
      'setup',
      `Bulwark --workers ${o.workers} (Redis engine), ${r.server.processes} processes; ` +
        `${o.loadProcesses} load processes; sources ${o.sourcePrefix}.1–${o.sourceIps}`,
    ],
    [
      'fd capacity',
      `limit ${fmt(cap.openFileLimit)} → ≤ ${fmt(cap.perWorkerCap)} conns/worker (fd_headroom ${cap.fdHeadroom}); ` +
        `${fmt(o.connections)} need ≥ ${cap.workersNeeded} workers`,
    ],
    [
      'clients per worker',
      r.server.clientsPerWorker.length ? r.server.clientsPerWorker.map((c) => fmt(c)).join(', ') : '—',
    ],
    ['connected / requested', `${fmt(r.connected)} / ${fmt(r.requested)}`],
    ['failed', r.failed ? `${fmt(r.failed)} (${fmtCounts(r.errors)})` : '0'],
    ['503 refusals retried', fmt(r.rejectedRetried)],
    ['connect time', `${fmt(r.connectSeconds, 1)} s`],
    ['connect rate (overall / peak 1 s)', `${fmt(r.connectRate)}/s / ${fmt(r.peakConnectRate)}/s`],
    [
      'handshake p50 / p99 / max',
      `${fmt(r.handshakeMs.p50, 1)} / ${fmt(r.handshakeMs.p99, 1)} / ${fmt(r.handshakeMs.max, 1)} ms`,
    ],
    [
      'server RSS before / connected / after hold',
      `${mib(r.server.rssBeforeBytes)} / ${mib(r.server.rssAfterConnectBytes)} / ${mib(r.server.rssAfterHoldBytes)}`,
    ],
    ['server RSS per connection', kib(r.server.rssPerConnectionBytes)],
    [
      'server CPU per connect (primary share)',
      `${fmt(r.server.cpuMicrosPerConnect)} µs (${fmt(r.server.primaryCpuMicrosPerConnect)} µs); ` +
        `${fmt(r.server.cpuPercent)} % of a core`,
    ],
    [
      'load processes RSS (total / per conn)',
      `${mib(loadTotal)} (${r.loadgen.rssBytes.map((b) => fmt(b / MiB)).join(' + ')} MiB) / ${kib(r.loadgen.rssPerConnectionBytes)}`,
    ],
    ['load CPU per connect', `${fmt(r.loadgen.cpuMicrosPerConnect)} µs`],
    [
      `idle hold ${fmt(r.hold.seconds)} s: open at start / end`,
      `${fmt(r.hold.openAtStart)} / ${fmt(r.hold.openAtEnd)}; server CPU ${fmt(r.server.holdCpuPercent)} % of a core`,
    ],
    [
      'closed before / during the hold',
      `${fmt(r.hold.closedBefore)} / ${fmt(r.hold.closedDuring)}` +
        (Object.keys(r.hold.closeCodes).length ? ` (codes ${fmtCounts(r.hold.closeCodes)})` : ''),
    ],
    ['answered a server ping', `${fmt(r.hold.pinged)} connections (${fmt(r.hold.pings)} pings)`],
    ['teardown (close all, exit)', `${fmt(r.teardown.closeMs)} ms`],
    ['kernel: listen drops / retrans', `${fmt(r.kernel.listenDrops)} / ${fmt(r.kernel.tcpRetransSegs)}`],
  ];
  if (r.loadProcessDeaths.length) rows.push(['load processes died', r.loadProcessDeaths.join('; ')]);
  rows[0] = ['connections-scale', `${fmt(o.connections)} idle connections, JWT + 1 subscription each`];
  return formatTable(rows);
}
