/**
 * The lobby report: the table a person reads at the end, and the charts of the HTML report.
 *
 * @module
 */
import { fmt, fmtCounts, formatTable, percentOf } from '../../harness/format.js';
import type { Chart } from '../../harness/scenario.js';
import type { LatencySummary } from '../../harness/stats.js';
import type { RunOutcome } from './run.js';
import type { LobbyOptions, LobbyResult } from './types.js';

const lat = (l: LatencySummary): string =>
  l.count > 0 ? `${fmt(l.p50, 1)} / ${fmt(l.p99, 1)} / ${fmt(l.max, 1)} (${fmt(l.count)})` : '-';
const size = (l: LatencySummary): string => (l.count > 0 ? `${fmt(l.p50)} / ${fmt(l.mean, 1)} / ${fmt(l.max)}` : '-');

/** describe is the one-line summary logged after the run. */
export function describe(r: LobbyResult): string {
  const x = r.exactness;
  return (
    `${fmt(r.joins.succeeded)} slots taken, ${fmt(r.conflicts.total)} conflicts (113), ` +
    `own delivery p50 ${fmt(r.latencyMs.own.p50, 1)} / p99 ${fmt(r.latencyMs.own.p99, 1)} ms; ` +
    `exact ${fmt(x.equal)}/${fmt(x.mirrors)} mirrors`
  );
}

/** lobbyTable renders the report. */
export function lobbyTable(o: LobbyOptions, r: LobbyResult): string {
  const x = r.exactness;
  const j = r.joins;
  const rows: string[][] = [
    ['metric', 'value'],
    ['lobby subscribes (live)', `${fmt(j.attempts)} (${fmt(j.subscribed)})`],
    ['slots taken', fmt(j.succeeded)],
    ['full on arrival / lost every race', `${fmt(j.fullOnArrival)} / ${fmt(j.fullAfterConflict)}`],
    [
      'conflicts 113 (for the last slot); per slot taken',
      `${fmt(r.conflicts.total)} (${fmt(r.conflicts.lastSlot)}); ${fmt(r.conflicts.perSlotTaken, 3)}`,
    ],
    ['leaves (errors)', `${fmt(r.leaves.ok)} (${fmtCounts(r.leaves.errors)})`],
    ['write errors other than 113', fmtCounts(j.writeErrors)],
    ['subscribe errors', fmtCounts(j.subscribeErrors)],
    [
      'players: got a slot / saw a free one / starved / left the game',
      `${fmt(r.players.gotSlot)} / ${fmt(r.players.sawFree)} / ${fmt(r.players.starved)} / ${fmt(r.players.gone)}`,
    ],
    ['own write → own push, p50 / p99 / max ms (n)', lat(r.latencyMs.own)],
    ["write → other members' push, p50 / p99 / max ms (n)", lat(r.latencyMs.others)],
    ['write → reply, p50 / p99 / max ms (n)', lat(r.latencyMs.writeReply)],
    ['subscribe → live, p50 / p99 / max ms (n)', lat(r.latencyMs.subscribe)],
    ['snapshot entries p50 / mean / max', size(r.snapshot.entries)],
    ['snapshot bytes p50 / mean / max', size(r.snapshot.bytes)],
    [
      'subscribe requests p50 / max (restarts)',
      `${fmt(r.snapshot.requests.p50)} / ${fmt(r.snapshot.requests.max)} (${fmt(r.snapshot.restarts)})`,
    ],
    ['own takes seen by the writer', `${fmt(r.ownTakes.delivered)} / ${fmt(r.ownTakes.ok)}`],
    [
      'stream gaps / repeats / overwrites of held slots',
      `${fmt(r.stream.gaps)} / ${fmt(r.stream.stale)} / ${fmt(r.stream.overwrites)}`,
    ],
    [
      'exactness: mirrors equal / at position / total',
      `${fmt(x.equal)} / ${fmt(x.atPosition)} / ${fmt(x.mirrors)} (${fmt(percentOf(x.equal, x.mirrors), 2)} %)`,
    ],
    [
      'end: slots held / double-held / strangers / phantoms',
      `${fmt(x.slotsHeld)} / ${fmt(x.doubleHeld)} / ${fmt(x.strangers)} / ${fmt(x.phantoms)}`,
    ],
    [
      "Bulwark's count: client sets / removals / key_exists / catch-up timeouts",
      r.bulwark === undefined
        ? '(unread)'
        : `${fmt(r.bulwark.writes['publish'] ?? 0)} / ${fmt(r.bulwark.writes['remove'] ?? 0)} / ` +
          `${fmt(r.bulwark.suppressed['key_exists'] ?? 0)} / ${fmt(r.bulwark.catchUpTimeouts)}`,
    ],
    ['own leaves let go before their push', fmt(r.ownDropped)],
    ['settle (ms)', fmt(r.settleMs)],
    ['server CPU, % of one core', r.cpu.serverPercent.map((c) => fmt(c, 1)).join(' / ')],
    ['server waiting for a CPU, % of the time', r.cpu.serverWaitPercent.map((c) => fmt(c, 1)).join(' / ')],
    [
      'load generator CPU, % · waiting for a CPU, % · loop delay p99 / max ms',
      `${fmt(r.cpu.loadgenPercent, 1)} · ${fmt(r.cpu.loadgenWaitPercent, 1)} · ` +
        `${fmt(r.cpu.loadgenLoopDelayMs.p99, 1)} / ${fmt(r.cpu.loadgenLoopDelayMs.max, 1)}`,
    ],
    ['players received (MiB)', fmt(r.bytesReceived / 2 ** 20, 2)],
    ['players disconnected', fmtCounts(r.disconnected)],
  ];
  const lines = [
    `lobby: ${fmt(o.players)} players, ${fmt(o.lobbies)} lobbies × ${o.slots} slots (durable map, client_key_mode if_new), ` +
      `${r.engine} engine on ${o.nodes} node${o.nodes > 1 ? 's' : ''}; ${o.durationSeconds} s, stays ${o.holdMinSeconds}–${o.holdMaxSeconds} s, ` +
      `${o.rejoinPercent} % rejoin, pick ${o.pick}, pages of ${o.pageSize}`,
    formatTable(rows),
  ];
  if (x.examples.length) lines.push(`  differing mirrors:\n    ${x.examples.join('\n    ')}`);
  return lines.join('\n');
}

/** charts are the HTML report's time series. */
export function charts(run: RunOutcome): Chart[] {
  const tl = run.tallies.timeline;
  return [
    {
      title: 'Slot writes per second',
      xLabel: 's since the first join',
      yLabel: 'per second',
      series: [tl.rate('joins', 'slots taken'), tl.rate('conflicts', 'conflicts (113)'), tl.rate('leaves', 'leaves')],
    },
    {
      title: 'Write → delivery latency',
      xLabel: 's since the first join',
      yLabel: 'ms',
      series: [
        tl.quantile('own', 50, 'own p50'),
        tl.quantile('own', 99, 'own p99'),
        tl.quantile('others', 99, 'other members p99'),
      ],
    },
    {
      title: 'Server CPU (sampled every 500 ms)',
      xLabel: 's since the first join',
      yLabel: '% of one core',
      series: run.cpu,
    },
  ];
}
