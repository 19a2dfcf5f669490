/**
 * The hug report: the charts over time and the per-phase table with the summary lines.
 *
 * @module
 */
import type { HttpProbe } from '../../harness/http-probe.js';
import { fmt, fmtCounts, fmtMiB, formatTable, p50p99 } from '../../harness/format.js';
import { type Chart, type Series } from '../../harness/scenario.js';
import type { ServerWatch } from '../../harness/server-watch.js';
import { round } from '../../harness/util.js';
import { SAMPLE_MS } from './options.js';
import { type HugOptions, type HugResult, type HugTrace } from './types.js';

/** hugCharts draws the run over time. */
export function hugCharts(run: HugTrace, watch: ServerWatch, probe: HttpProbe, o: HugOptions): Chart[] {
  const tl = run.tl;
  const end = run.heldSeries[run.heldSeries.length - 1]?.[0] ?? 0;
  const limit: Series = {
    label: 'client.connection_limit',
    points: [
      [0, o.connectionLimit],
      [end, o.connectionLimit],
    ],
  };
  const ready: Series = {
    label: '/ready latency (ms)',
    points: probe.samples
      .filter((s) => s.status !== 0)
      .map((s) => [round((s.atMs - run.t0) / 1000, 3), round(s.latencyMs, 2)]),
  };
  return [
    {
      title: 'New players offered, attempts, admitted and refused per second',
      xLabel: 's',
      yLabel: 'per second',
      series: [
        tl.rate('arrival', 'new players offered/s'),
        tl.rate('attempt', 'attempts/s (with retries)'),
        tl.rate('admitted', 'admitted/s'),
        tl.rate('refused', 'refused/s (503)'),
        tl.rate('failed', 'failed/s'),
      ],
    },
    {
      title: 'Connections held',
      xLabel: 's',
      yLabel: 'connections',
      series: [
        { label: 'held (client side)', points: run.heldSeries },
        { label: 'held (server: admission count)', points: watch.held },
        { label: 'authenticated (bulwark_connections)', points: watch.authenticated },
        { label: 'attempts in flight', points: run.inFlightSeries },
        limit,
      ],
    },
    {
      title: 'Handshake of admitted players (socket opened → subscribed) and of refusals',
      xLabel: 's',
      yLabel: 'ms',
      series: [
        tl.quantile('handshake', 50, 'admitted p50'),
        tl.quantile('handshake', 99, 'admitted p99'),
        tl.quantile('refusal', 99, 'refusal p99'),
      ],
    },
    { title: 'Server memory (RSS)', xLabel: 's', yLabel: 'MiB', series: [{ label: 'RSS', points: watch.rssMiB }] },
    {
      title: 'Server CPU, event-loop lag and /ready latency',
      xLabel: 's',
      yLabel: '% of a core / ms',
      series: [
        { label: 'server CPU %', points: watch.cpuPercent },
        { label: 'event-loop lag p99 (ms)', points: watch.lagMs },
        ready,
      ],
    },
  ];
}

/** hugTable renders the result for the terminal. */
export function hugTable(r: HugResult, o: HugOptions): string {
  const rows: string[][] = [
    [
      'phase',
      'offered/s',
      'arrivals',
      'attempts',
      'admitted',
      'refused',
      'failed',
      'handshake p50/p99 ms',
      'refusal p99 ms',
      'held at end',
      'server CPU %',
      'RSS MiB',
    ],
  ];
  for (const p of r.phases) {
    rows.push([
      p.label,
      fmt(p.offeredPerSec),
      fmt(p.arrivals),
      fmt(p.attempts),
      fmt(p.admitted),
      fmt(p.refused),
      fmt(p.failed),
      p50p99(p.handshakeMs),
      p.refusalMs.count > 0 ? fmt(p.refusalMs.p99, 1) : '-',
      fmt(p.heldAtEnd),
      fmt(p.serverCpuPercent, 0),
      fmtMiB(p.rssAtEndBytes),
    ]);
  }
  const a = r.attempts;
  rows.push([
    'total',
    '',
    fmt(r.players.arrived),
    fmt(a.total),
    fmt(a.admitted),
    fmt(a.refused),
    fmt(a.failed),
    p50p99(r.handshakeAllMs),
    a.refused > 0 ? fmt(r.refusalMs.p99, 1) : '-',
    fmt(r.held.atEnd),
    '',
    fmtMiB(r.server.rssEndBytes),
  ]);
  const pl = r.players;
  const adv = r.advice;
  const h = r.handshakeMs;
  const ra = adv.retryAfterSeconds;
  const reasons = r.serverRejections ? fmtCounts(r.serverRejections) : '(no /metrics)';
  return [
    `hug: ${fmt(o.rate)} new players/s normally (` +
      (o.sessionSeconds > 0
        ? `sessions ~${o.sessionSeconds} s: ~${fmt(r.normalOnline)} online), `
        : 'players stay until the end), ') +
      `ramp 1x→${o.top}x in ${o.steps} steps of ${o.stepSeconds} s after a ${o.warmupSeconds} s warm-up, ` +
      `${o.tailSeconds} s tail; node: client.connection_limit ${fmt(o.connectionLimit)}, ` +
      `connection_rate_limit ${o.connectionRateLimit > 0 ? `${fmt(o.connectionRateLimit)}/s` : 'off'}; ` +
      `clients retry ≤ ${o.retries}× after Retry-After + jitter`,
    formatTable(rows),
    `players: ${fmt(pl.arrived)} arrived; admitted ${fmt(pl.admittedFirstTry)} at the first try, ` +
      `${fmt(pl.admittedAfterRetry)} after refusals (${fmtCounts(pl.admittedAfterRefusals)} refusals before); ` +
      `gave up after ${o.retries + 1} refusals: ${fmt(pl.gaveUp)}; retry due after the run: ${fmt(pl.retryPendingAtEnd)}; ` +
      `failed: ${fmt(pl.failed)}; not sent (load generator caps): ${fmt(pl.notSent)}; unfinished: ${fmt(pl.unfinished)}`,
    `refusals: ${fmtCounts(Object.fromEntries(Object.entries(a.refusedByStatus).map(([k, v]) => [`HTTP ${k}`, v])))}; ` +
      `Retry-After on ${fmt(adv.refusalsWithRetryAfter)} of ${fmt(a.refused)}` +
      (adv.refusalsWithRetryAfter > 0 ? `: ${fmt(ra.min)}–${fmt(ra.max)} s, p50 ${fmt(ra.p50)} s` : '') +
      `; server reasons: ${reasons}`,
    `failures: ${fmtCounts(a.failedByKind)}${a.firstFailure ? ` (first: ${a.firstFailure})` : ''}`,
    `admitted handshake after the warm-up: p50 ${fmt(h.p50, 1)}, p99 ${fmt(h.p99, 1)}, max ${fmt(h.max, 1)} ms ` +
      `(${fmt(h.count)}); refusal answered in p99 ${fmt(r.refusalMs.p99, 1)} ms; ` +
      `first try → in, for players refused first: p50 ${fmt(r.timeToAdmitAfterRefusalMs.p50 / 1000, 1)} s, ` +
      `p99 ${fmt(r.timeToAdmitAfterRefusalMs.p99 / 1000, 1)} s`,
    `connections held: peak ${fmt(r.held.peakClient)} (client) / ${fmt(r.held.peakServerSampled)} (server, sampled) ` +
      `of limit ${fmt(r.held.limit)}; left on their own ${fmt(r.closes.left)}; closed by the server ` +
      `${fmt(r.closes.unexpected)}${r.closes.unexpected ? ` (${fmtCounts(r.closes.unexpectedByCode)})` : ''}`,
    `server: ${r.server.alive ? 'alive' : 'EXITED'}; RSS idle ${fmtMiB(r.server.rssIdleBytes)} → peak ${fmtMiB(r.server.rssPeakBytes)} ` +
      `MiB (${fmt(r.server.rssPerHeldBytes / 1024, 1)} KiB per peak held connection); CPU ${fmt(r.cpu.serverCpuPercent, 0)} % ` +
      `average, ${fmt(r.server.cpuPercentPeak, 0)} % peak (${SAMPLE_MS} ms samples); event-loop lag p99 up to ` +
      `${fmt(r.server.eventLoopLagP99MaxMs, 1)} ms`,
    `/ready: ${fmt(r.ready.probes)} probes, ${fmt(r.ready.ok)} answered 200; latency p50 ${fmt(r.ready.latencyMs.p50, 1)}, ` +
      `p99 ${fmt(r.ready.latencyMs.p99, 1)}, max ${fmt(r.ready.latencyMs.max, 1)} ms`,
    `load generator: CPU ${fmt(r.cpu.loadgenCpuPercent, 0)} %, event-loop delay p99 ${fmt(r.cpu.loadgenLoopDelayMs.p99, 1)} ` +
      `ms, max ${fmt(r.cpu.loadgenLoopDelayMs.max, 1)} ms (high values inflate every latency above)`,
  ].join('\n');
}
