/**
 * The rolling-restart report: reconnect-rate charts and the per-restart table.
 *
 * @module
 */
import { fmt, fmtCounts, formatTable } from '../../harness/format.js';
import { type Chart, type Series } from '../../harness/scenario.js';
import { type LatencySummary } from '../../harness/stats.js';
import { round } from '../../harness/util.js';
import type { Observer } from './observer.js';
import { type RollingOptions, type RollingResult, type RestartResult } from './types.js';

/**
 * rateSeries buckets `timesMs` (ms, same clock as `startMs`) into `bucketMs` buckets from
 * `startMs` to `endMs` and returns events per second per bucket, x = bucket start in seconds.
 * Events outside [startMs, endMs) are left out.
 */
export function rateSeries(
  timesMs: readonly number[],
  startMs: number,
  endMs: number,
  bucketMs: number,
  label: string,
): Series {
  const n = Math.max(0, Math.ceil((endMs - startMs) / bucketMs));
  const counts = new Array<number>(n).fill(0);
  for (const t of timesMs) {
    const i = Math.floor((t - startMs) / bucketMs);
    if (i >= 0 && i < n) counts[i] = (counts[i] as number) + 1;
  }
  return {
    label,
    points: counts.map((c, i) => [round((i * bucketMs) / 1000, 3), round((c * 1000) / bucketMs, 2)]),
  };
}

/** buildCharts draws the time series of the run (x = seconds since publishing began). */
export function buildCharts(
  obs: Observer,
  perNode: Record<string, Array<[number, number]>>,
  t0: number,
  endMs: number,
  o: RollingOptions,
): Chart[] {
  const tl = obs.timeline;
  const reconnects = obs.restarts.flatMap((r) => r.reconnects);
  const disconnects = obs.restarts.flatMap((r) => r.disconnects);
  return [
    {
      title: 'Subscribed players (total and per node)',
      xLabel: 's',
      yLabel: 'players',
      series: Object.entries(perNode).map(([label, points]) => ({
        label: label === 'all' ? 'all nodes' : `node ${label}`,
        points,
      })),
    },
    {
      title: 'Disconnects and reconnects per second (drain window spreads them)',
      xLabel: 's',
      yLabel: 'per second',
      series: [
        rateSeries(disconnects, t0, endMs, o.bucketMs, 'disconnects (drained node)'),
        rateSeries(reconnects, t0, endMs, o.bucketMs, 'reconnects (resubscribed)'),
        tl.rate('failed attempt', 'failed connect attempts (503, …)'),
      ],
    },
    {
      title: 'Live delivery latency (publish call → push), and the API publish call alone',
      xLabel: 's',
      yLabel: 'ms',
      series: [
        tl.quantile('live', 50, 'delivery p50'),
        tl.quantile('live', 99, 'delivery p99'),
        tl.quantile('api', 99, 'API publish call p99'),
      ],
    },
    {
      title: 'Recovered publications per second (in resubscribe replies)',
      xLabel: 's',
      yLabel: 'per second',
      series: [tl.rate('recovered', 'recovered publications')],
    },
    {
      title: 'Throughput',
      xLabel: 's',
      yLabel: 'per second',
      series: [
        tl.rate('published', 'API publications sent'),
        tl.rate('accepted', 'API publications accepted'),
        tl.rate('live', 'live deliveries'),
      ],
    },
  ];
}

/** rollingTable renders the final table. */
export function rollingTable(r: RollingResult, o: RollingOptions): string {
  const lat = (s: LatencySummary, d = 1) => `${fmt(s.p50, d)} / ${fmt(s.p99, d)} / ${fmt(s.max, d)}`;
  const col = (label: string, f: (x: RestartResult) => string): string[] => [label, ...r.restarts.map(f)];
  const perRestart = [
    ['restart', ...r.restarts.map((x) => x.label)],
    col('players on the drained node', (x) => fmt(x.affected)),
    col('disconnected with 3001', (x) => fmt(x.drained)),
    col('3001 disconnects from → to (s)', (x) =>
      x.disconnectsS ? `${fmt(x.disconnectsS.first, 2)} → ${fmt(x.disconnectsS.last, 2)}` : '-',
    ),
    col('players back on another node', (x) => `${fmt(x.back)} / ${fmt(x.affected)}`),
    col('drain start → all back and recovered (s)', (x) => (x.allBackS === null ? 'not all' : fmt(x.allBackS, 2))),
    col('peak reconnects in 1 s (players / window)', (x) => `${fmt(x.reconnectPeakPerSec)} (${fmt(x.expectedPerSec)})`),
    col('failed connect attempts', (x) => fmtCounts(x.failedAttempts)),
    col('offline per player p50 / p99 / max (ms)', (x) => lat(x.offlineMs, 0)),
    col('resubscribes / recovered: false', (x) => `${fmt(x.resubscribes)} / ${fmt(x.notRecovered)}`),
    col('publications recovered', (x) => fmt(x.recoveredPublications)),
    col('drained process exit (code/signal)', (x) => x.exit),
    col('other nodes: upgrades refused (metric)', (x) =>
      Object.entries(x.nodeCounters)
        .map(([n, c]) => `${n}: ${fmtCounts(c.rejections)}`)
        .join('; '),
    ),
  ];
  const c = r.completeness;
  const overall = [
    ['whole run', ''],
    ['API publications sent / failed', `${fmt(r.published)} / ${fmt(r.apiFailures)}`],
    [
      'deliveries owed / live / recovered',
      `${fmt(c.expected)} / ${fmt(r.liveDeliveries)} / ${fmt(r.recoveredDeliveries)}`,
    ],
    ['missing at players back / duplicates', `${fmt(c.missing)} / ${fmt(c.duplicates)}`],
    ['out of order: by offset / by seq (publisher)', `${fmt(r.offsetRegressions)} / ${fmt(c.outOfOrder)}`],
    ['players back with loss', fmt(c.clientsWithLoss)],
    ['players not subscribed at end / deliveries they missed', `${fmt(r.notSubscribedAtEnd)} / ${fmt(c.missingAway)}`],
    ['live latency outside restarts p50 / p99 / max (ms)', lat(r.liveLatencyMs.outside, 2)],
    ['live latency during restarts p50 / p99 / max (ms)', lat(r.liveLatencyMs.during, 2)],
    ['recovered publications age p50 / p99 / max (ms)', lat(r.recoveredAgeMs, 0)],
    ['close codes seen', fmtCounts(r.closeCodes)],
    ['failed connect attempts outside restarts', fmtCounts(r.failedAttemptsOutsideRestarts)],
  ];
  const lines = [
    `rolling-restart: ${fmt(o.clients)} players on node A over ${o.channels} channels (Redis engine, history ` +
      `${o.historySize}, force_recovery); ${fmt(o.rate)} API pub/s to a node staying up; drain.window ` +
      `${fmt(o.drainWindowMs / 1000, 1)} s, load balancer probe delay ${fmt(o.probeDelayMs)} ms; SDK backoff 0.5–20 s with jitter`,
    formatTable(perRestart),
    '',
    formatTable(overall),
  ];
  for (const m of r.missingExamples) {
    lines.push(
      `  MISSING: player ${m.client} on ${m.channel}: seqs ${m.missingSeqs.join(',')} (offsets ${m.missingOffsets.join(',')}); ` +
        `subscribes: ${m.subscribes
          .map((s) =>
            s.recovering
              ? `recover from ${s.sentOffset}@${s.sentEpoch} → recovered=${s.recovered}, ` +
                (s.publications ? `pubs ${s.firstOffset}..${s.lastOffset}` : 'no pubs') +
                `, offset ${s.offset}`
              : `first at offset ${s.offset}`,
          )
          .join('; ')}`,
    );
  }
  for (const n of r.notRecoveredExamples.slice(0, 5)) {
    lines.push(
      `  NOT RECOVERED: player ${n.client} on ${n.channel}: asked from ${n.sentOffset}@${n.sentEpoch}, ` +
        `reply epoch ${n.epoch} offset ${n.offset}, ${n.publications} publications`,
    );
  }
  if (r.apiLastError) lines.push(`  last API error: ${r.apiLastError}`);
  return lines.join('\n');
}
