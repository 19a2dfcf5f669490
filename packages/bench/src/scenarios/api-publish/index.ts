/**
 * The api-publish scenario (issue 18): a backend publishing through the server HTTP API as
 * fast as it is answered, over keep-alive connections, to channels of a namespace with
 * history. Three runs, each on a fresh server pinned like the others: the Node `http` floor
 * (servers/http-floor-server.ts), Bulwark's `POST /api/publish`, Bulwark's `POST /api/batch`
 * with B publishes a request. Bulwark runs on the memory engine unless --bulwark-config says
 * otherwise (e.g. Redis); --target does not apply (the runs are --runs).
 *
 * @module
 */
import { check, type Scenario, type ScenarioContext } from '../../harness/scenario.js';
import type { TargetOutcome } from '../../harness/report.js';
import { ServerRunError, bulwarkAvailable, onFreshBulwark, startServer } from '../../harness/targets.js';
import { apiPublishOptions, flags } from './options.js';
import { apiPublishCharts, apiPublishTable } from './report.js';
import { runApiLoad } from './run.js';
import type { ApiPublishOptions, ApiRunName, ApiRunResult } from './types.js';
import { apiChecks, apiRatios, type ApiOutcomes } from './verdict.js';

/**
 * apiPublishConfig is Bulwark's config for the runs: the bench namespace with history (every
 * publish appends to its channel's stream, as a game's chat or event channels would), and a
 * batch limit that admits --batch-size.
 */
export function apiPublishConfig(
  o: Pick<ApiPublishOptions, 'historySize' | 'historyTtl' | 'batchSize'>,
): Record<string, unknown> {
  return {
    channel: {
      namespaces: [
        {
          name: 'bench',
          history_size: o.historySize,
          history_ttl: o.historyTtl,
          allow_subscribe_for_client: true,
        },
      ],
    },
    http_api: { batch_max_commands: Math.max(1000, o.batchSize) },
  };
}

/** runOne makes one run on a fresh server; an error or a skip becomes its outcome, not a throw. */
async function runOne(
  ctx: ScenarioContext,
  run: ApiRunName,
  o: ApiPublishOptions,
): Promise<TargetOutcome<ApiRunResult>> {
  const label = `api-publish / ${run}`;
  const hooks = { log: ctx.log, progress: (f: number, s: string) => ctx.progress.update(f, s) };
  try {
    if (run === 'floor') {
      ctx.log(`${label}: starting server`);
      const server = await startServer('floor', { cpu: ctx.bulwark.cpu });
      ctx.log(`${label}: server pid ${server.pid} on port ${server.port}`);
      try {
        const r = await runApiLoad(server, run, o, hooks);
        if (server.exited()) throw new Error('server exited during the run');
        return { result: r };
      } catch (err) {
        throw new ServerRunError(`${label}: ${(err as Error).message}`, server.logTail());
      } finally {
        await server.stop();
      }
    }
    if (!bulwarkAvailable(ctx.bulwark.bulwarkMain)) return { skipped: 'Bulwark is not built' };
    const start = { ...ctx.bulwark, workers: ctx.workers };
    const r = await onFreshBulwark(start, apiPublishConfig(o), label, ctx.log, (server) =>
      runApiLoad(server, run, o, hooks),
    );
    return { result: r };
  } catch (err) {
    ctx.progress.end();
    const message = (err as Error).message;
    ctx.log(`${label}: ERROR: ${message}`);
    const serverLog = err instanceof ServerRunError ? err.serverLog : undefined;
    return { error: message, ...(serverLog ? { serverLog } : {}) };
  }
}

export const apiPublishScenario: Scenario = {
  name: 'api-publish',
  summary:
    'server API publishes over keep-alive HTTP: Bulwark /api/publish and /api/batch vs a Node http floor (issue 18)',
  flags: Object.values(flags),
  async run(ctx) {
    const o = apiPublishOptions(ctx);
    const results: ApiOutcomes = {};
    for (const run of o.runs) {
      results[run] = await runOne(ctx, run, o);
      ctx.progress.end();
      const x = results[run];
      if (x && 'result' in x) {
        const r = x.result;
        ctx.log(
          `  ${run}: ${r.publishesPerSec} publishes/s (${r.requestsPerSec} requests/s), p99 ${r.latencyMs.p99} ms, ` +
            `${r.errors} errors, server ${r.serverCpuPercent}% CPU (${r.serverCpuMicrosPerPublish} µs/publish), ` +
            `load generator ${r.loadgenCpuPercent}% CPU`,
        );
      }
    }
    const ratios = apiRatios(results, o);
    const failedRuns = o.runs.filter((run) => {
      const x = results[run];
      return x !== undefined && 'error' in x;
    });
    const checks = [
      ...apiChecks(results, ratios, ctx.quick),
      // A run that failed has no checks of its own: say so in the verdict.
      ...failedRuns.map((run) => check(`${run}: run completed`, 0, '==', 1)),
    ];
    return {
      options: o,
      results: { runs: results, ratios },
      failed: failedRuns.length > 0,
      checks,
      charts: apiPublishCharts(results),
      table: apiPublishTable(results, ratios, o),
    };
  },
};
