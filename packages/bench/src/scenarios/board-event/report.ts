/**
 * The board-event report: one line per mode, the charts and the modes side by side.
 *
 * @module
 */
import { fmt, fmtCounts, formatTable } from '../../harness/format.js';
import { type Chart, type Series } from '../../harness/scenario.js';
import { type LatencySummary } from '../../harness/stats.js';
import type { Timeline } from '../../harness/timeline.js';
import { round } from '../../harness/util.js';
import type { ModeResult, Runs, BoardMode, BoardOptions, BoardResult, PollCounts } from './types.js';

export function describe(r: ModeResult): string {
  const l = r.latencyMs;
  return (
    `${r.mode}: ${fmt(r.published)} posts, ${fmt(r.seen)}/${fmt(r.owed)} post × player seen; ` +
    `${r.mode === 'push' ? 'latency' : 'staleness'} p50 ${fmt(l.p50, 1)} / p99 ${fmt(l.p99, 1)} ms; ` +
    `server ${fmt(r.window.serverCpuPercent, 1)}% CPU, ${fmt(r.window.serverBytesWritten / 2 ** 20, 2)} MiB written` +
    (r.origin
      ? `; origin ${fmt(r.origin.requestsPerSecond, 1)} requests/s of ${fmt(r.origin.itemsPerRequest, 0)} items ` +
        `(${fmt(r.origin.requestsPerCycleBatch, 2)} per cycle and batch)`
      : '')
  );
}

export function charts(runs: Runs): Chart[] {
  const polls = (['poll', 'poll-since'] as const).filter((m) => runs[m]);
  const each = (modes: readonly BoardMode[], fn: (t: Timeline, mode: BoardMode) => Series): Series[] =>
    modes.flatMap((m) => {
      const run = runs[m];
      return run ? [fn(run.trace.timeline, m)] : [];
    });
  const kib = (s: Series): Series => ({ label: s.label, points: s.points.map(([x, y]) => [x, round(y / 1024, 1)]) });
  const shared = (['shared-poll'] as const).filter((m) => runs[m]);
  const stale: BoardMode[] = [...polls, ...shared];
  const all: BoardMode[] = ['push', ...polls, ...shared];
  return [
    {
      title: 'Server CPU over time (sampled every 500 ms)',
      xLabel: 's since event start',
      yLabel: '% of one core',
      series: all.flatMap((m) => {
        const run = runs[m];
        return run ? [{ label: m, points: run.trace.cpu }] : [];
      }),
    },
    {
      title: 'Push delivery latency and poll reply latency over time (p99)',
      xLabel: 's since event start',
      yLabel: 'ms',
      series: [
        ...each(['push'], (t) => t.quantile('latency', 99, 'push: delivery p99')),
        ...each(polls, (t, m) => t.quantile('reply', 99, `${m}: reply p99`)),
      ],
    },
    {
      title: 'Polls and shared poll: staleness (post sent → first reply or push containing it), by post send time',
      xLabel: 's since event start',
      yLabel: 'ms',
      series: [
        ...each(stale, (t, m) => t.quantile('staleness', 50, `${m}: p50`)),
        ...each(stale, (t, m) => t.quantile('staleness', 99, `${m}: p99`)),
      ],
    },
    {
      title: 'Messages per second',
      xLabel: 's since event start',
      yLabel: 'per second',
      series: [
        ...each(['push'], (t) => t.rate('published', 'posts published')),
        ...each(['push'], (t) => t.rate('deliveries', 'push: deliveries')),
        ...each(polls, (t, m) => t.rate('replies', `${m}: replies`)),
        ...each(stale, (t, m) => t.rate('seen', `${m}: posts seen first time`)),
      ],
    },
    {
      title: "Requests per second reaching the board's backend (polls to the server, or shared poll refresh calls)",
      xLabel: 's since event start',
      yLabel: 'per second',
      series: [
        ...each(polls, (t, m) => t.rate('polls', `${m}: polls`)),
        ...each(shared, (t, m) => t.rate('origin', `${m}: origin requests`)),
      ],
    },
    {
      title: 'Bytes received by the players',
      xLabel: 's since event start',
      yLabel: 'KiB/s',
      series: each(all, (t, m) => kib(t.rate('bytes', m))),
    },
  ];
}

/** boardTable renders the report. */
export function boardTable(opts: BoardOptions, r: BoardResult): string {
  const modes = [r.push, r.poll, ...(r.pollSince ? [r.pollSince] : []), ...(r.sharedPoll ? [r.sharedPoll] : [])];
  const lat = (l: LatencySummary) => `${fmt(l.p50, 1)} / ${fmt(l.p99, 1)} / ${fmt(l.max, 1)}`;
  const vsPush = (m: ModeResult, v: number, base: number, digits: number) =>
    m.mode === 'push' || !(base > 0) ? fmt(v, digits) : `${fmt(v, digits)} (${fmt(v / base, 1)}×)`;
  const row = (label: string, f: (m: ModeResult) => string): string[] => [label, ...modes.map(f)];
  const poll = (f: (p: PollCounts) => string) => (m: ModeResult) => (m.polls ? f(m.polls) : '-');
  const rows: string[][] = [
    [
      'metric',
      'push',
      `poll: newest ${opts.page} every ${opts.pollIntervalS} s`,
      ...(r.pollSince ? [`poll-since: new posts every ${opts.pollIntervalS} s`] : []),
      ...(r.sharedPoll ? [`shared-poll: backend asked every ${opts.refreshIntervalS} s`] : []),
    ],
    row('posts published (API errors)', (m) => `${fmt(m.published)} (${fmt(m.apiErrors)})`),
    row('post × player seen / owed', (m) => `${fmt(m.seen)} / ${fmt(m.owed)}`),
    row('missed (players with misses)', (m) => `${fmt(m.missing.missing)} (${fmt(m.missing.subscribersWithLoss)})`),
    row('latency | staleness p50 / p99 / max (ms)', (m) => lat(m.latencyMs)),
    row(
      'polls sent / ok / refused (111) / timed out',
      poll((p) => `${fmt(p.sent)} / ${fmt(p.ok)} / ${fmt(p.errors['111'] ?? 0)} / ${fmt(p.timeouts)}`),
    ),
    row("requests/s for the board's data (polls; shared-poll: origin)", (m) =>
      m.origin ? fmt(m.origin.requestsPerSecond, 1) : m.polls ? fmt(opts.players / opts.pollIntervalS, 1) : '-',
    ),
    row('origin: items per request; requests per cycle × batch', (m) =>
      m.origin ? `${fmt(m.origin.itemsPerRequest, 1)}; ${fmt(m.origin.requestsPerCycleBatch, 2)}` : '-',
    ),
    row(
      'poll reply p50 / p99 (ms)',
      poll((p) => `${fmt(p.replyLatencyMs.p50, 1)} / ${fmt(p.replyLatencyMs.p99, 1)}`),
    ),
    row(
      'posts per reply (new to the player)',
      poll((p) => `${fmt(p.postsPerReply, 1)} (${fmt(p.newPostsPerReply, 2)})`),
    ),
    row('server CPU, % of one core (÷ push)', (m) =>
      vsPush(m, m.window.serverCpuPercent, r.push.window.serverCpuPercent, 1),
    ),
    row('server CPU per post × player, µs (÷ push)', (m) =>
      vsPush(m, m.serverCpuMicrosPerPostReader, r.push.serverCpuMicrosPerPostReader, 2),
    ),
    row('server bytes written, MiB (÷ push)', (m) =>
      vsPush(m, m.window.serverBytesWritten / 2 ** 20, r.push.window.serverBytesWritten / 2 ** 20, 2),
    ),
    row('server bytes per post × player', (m) => fmt(m.serverBytesPerPostReader)),
    row('players received (MiB)', (m) => fmt(m.window.clientBytesReceived / 2 ** 20, 2)),
    row('load generator CPU (%)', (m) => fmt(m.window.loadgenCpuPercent, 1)),
    row('players disconnected', (m) => fmtCounts(m.disconnected)),
  ];
  return [
    `board-event: ${fmt(opts.players)} players in ${fmt(opts.teams)} teams of ≤ ${opts.teamSize} (board:team.<t>); ` +
      `1 post of ${fmt(opts.postBytes)} B per team every ${opts.postIntervalS} s for ${opts.seconds} s through the server API; ` +
      `boards keep ${opts.historySize}, prefilled with ${opts.page}; fresh server per mode`,
    `  CPU and bytes over ${opts.seconds} s of posting after ${opts.warmupS} s of warm-up; ` +
      'staleness = post sent → first poll reply containing it' +
      (r.sharedPoll
        ? `; shared-poll: posts written to the backend, Bulwark refreshes every ${opts.refreshIntervalS} s ` +
          `(batches of ${opts.refreshBatchSize}) and pushes what is new`
        : ''),
    formatTable(rows),
  ].join('\n');
}
