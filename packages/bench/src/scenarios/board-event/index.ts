/**
 * The board-event scenario as the simulator registers it: its name, summary and flags, and the
 * run over the modes (push, poll, poll-since, shared-poll) with the verdict and report.
 *
 * @module
 */
import { type Scenario } from '../../harness/scenario.js';
import { bulwarkAvailable, onFreshBulwark } from '../../harness/targets.js';
import { round } from '../../harness/util.js';
import { flags } from './options.js';
import { resolveOptions } from './options.js';
import { boardConfig, runMode } from './run.js';
import { type Runs, type ModeResult, type BoardResult } from './types.js';
import { judgeBoard, judgeSharedPoll } from './verdict.js';
import { runSharedPollMode } from './shared-poll-run.js';
import { charts, boardTable } from './report.js';

/** The scenario. */
export const boardEventScenario: Scenario = {
  name: 'board-event',
  summary:
    'incident 1: team boards at event start, push subscribers vs the same players polling history, and vs shared poll against the backend',
  flags: Object.values(flags),
  async run(ctx) {
    const opts = resolveOptions(ctx);
    if (!bulwarkAvailable(ctx.bulwark.bulwarkMain)) {
      return {
        options: opts,
        results: { skipped: 'Bulwark is not built' },
        checks: [],
        charts: [],
        table: 'board-event: skipped: Bulwark is not built',
      };
    }
    const config = boardConfig(opts);
    const runs: Runs = {};
    for (const mode of opts.modes) {
      runs[mode] =
        mode === 'shared-poll'
          ? await runSharedPollMode(opts, ctx)
          : await onFreshBulwark(ctx.bulwark, config, `board-event / ${mode}`, ctx.log, (server) =>
              runMode(server, mode, opts, ctx),
            );
    }
    const push = runs.push?.result;
    const poll = runs.poll?.result;
    if (!push || !poll) throw new Error('board-event: push and poll must both run');
    const pollSince = runs['poll-since']?.result;
    const sharedPoll = runs['shared-poll']?.result;
    const ratio = (m: ModeResult, f: (x: ModeResult) => number) => round(f(m) / f(push), 2);
    const cpu = (x: ModeResult) => x.window.serverCpuPercent;
    const bytes = (x: ModeResult) => x.window.serverBytesWritten;
    const result: BoardResult = {
      push,
      poll,
      ...(pollSince ? { pollSince } : {}),
      ...(sharedPoll ? { sharedPoll } : {}),
      cpuRatio: {
        poll: ratio(poll, cpu),
        ...(pollSince ? { pollSince: ratio(pollSince, cpu) } : {}),
        ...(sharedPoll ? { sharedPoll: ratio(sharedPoll, cpu) } : {}),
      },
      bytesRatio: {
        poll: ratio(poll, bytes),
        ...(pollSince ? { pollSince: ratio(pollSince, bytes) } : {}),
        ...(sharedPoll ? { sharedPoll: ratio(sharedPoll, bytes) } : {}),
      },
    };
    return {
      options: opts,
      results: result,
      checks: [
        ...judgeBoard(push, poll, pollSince, opts.p99LimitMs),
        ...(sharedPoll ? judgeSharedPoll(sharedPoll, opts) : []),
      ],
      charts: charts(runs),
      table: boardTable(opts, result),
    };
  },
};
