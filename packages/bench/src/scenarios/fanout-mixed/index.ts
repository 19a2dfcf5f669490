/**
 * The fanout-mixed scenario as the simulator registers it: its name, summary and flags, and the
 * run on each target with the verdict and report.
 *
 * @module
 */
import { fmt } from '../../harness/format.js';
import { check, type Chart, type Check, type Scenario } from '../../harness/scenario.js';
import { bulwarkAvailable, onFreshBulwark, startServer, type TargetName } from '../../harness/targets.js';
import { flags } from './options.js';
import { optionsFrom } from './options.js';
import { type FanoutMixedResult, type MixedHooks } from './types.js';
import { expectedDeliveryRates, runFanoutMixed } from './run.js';
import { mixedChecks } from './verdict.js';
import { mixedCharts, mixedTable } from './report.js';

/** The scenario as the registry runs it: each asked-for target on a fresh server. */
export const fanoutMixedScenario: Scenario = {
  name: 'fanout-mixed',
  summary: 'personal, team and world channels per player, one publisher: latency and exact loss per class',
  flags: Object.values(flags),
  async run(ctx) {
    const opts = optionsFrom(ctx);
    if (opts.players > 18_000) {
      throw new Error('--players must be ≤ 18000 (one process holds at most ~19k sockets: a player is one)');
    }
    const outcomes: Array<{ target: TargetName; result?: FanoutMixedResult; error?: string }> = [];
    const checks: Check[] = [];
    const charts: Chart[] = [];
    const rates = expectedDeliveryRates(opts);
    ctx.log(
      `fanout-mixed: expected deliveries/s: personal ${fmt(rates.personal)}, team ${fmt(rates.team)}, ` +
        `world ${fmt(rates.world)} (${fmt(rates.personal + rates.team + rates.world)} in all)`,
    );
    for (const target of ctx.targets) {
      const label = `fanout-mixed / ${target}`;
      const hooks: MixedHooks = { log: ctx.log, progress: ctx.progress };
      try {
        let run: Awaited<ReturnType<typeof runFanoutMixed>>;
        if (target === 'bulwark') {
          if (!bulwarkAvailable(ctx.bulwark.bulwarkMain)) {
            ctx.log(`${label}: skipped: Bulwark is not built`);
            outcomes.push({ target, error: 'skipped: Bulwark is not built' });
            continue;
          }
          run = await onFreshBulwark(ctx.bulwark, {}, label, ctx.log, (server) => runFanoutMixed(server, opts, hooks));
        } else {
          ctx.log(`${label}: starting server`);
          const server = await startServer(target, { cpu: ctx.bulwark.cpu });
          try {
            run = await runFanoutMixed(server, opts, hooks);
            if (server.exited()) throw new Error('server exited during the run');
          } finally {
            await server.stop();
          }
        }
        outcomes.push({ target, result: run.result });
        checks.push(...mixedChecks(run.result, opts.p99LimitMs));
        charts.push(...mixedCharts(target, run.detail.timeline));
      } catch (err) {
        const message = (err as Error).message;
        ctx.log(`${label}: ERROR: ${message}`);
        const serverLog = (err as { serverLog?: string[] }).serverLog;
        if (serverLog?.length) ctx.log(`  server output:\n    ${serverLog.slice(-15).join('\n    ')}`);
        outcomes.push({ target, error: `ERROR: ${message}` });
        checks.push(check(`${target}: run completed`, 0, '==', 1));
      }
    }
    const results: Record<string, unknown> = {};
    for (const o of outcomes) results[o.target] = o.result ?? { error: o.error };
    return { options: opts, results, checks, charts, table: mixedTable(opts, outcomes) };
  },
};
