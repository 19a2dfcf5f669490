/**
 * The cold-cache scenario as the simulator registers it: its name, summary and flags, and the run
 * over the variants with the verdict and report.
 *
 * @module
 */
import { redisReachable } from '../../harness/redis-keys.js';
import { fmt } from '../../harness/format.js';
import { type Chart, type Scenario } from '../../harness/scenario.js';
import { flags } from './options.js';
import { options, originRateBound } from './options.js';
import { type VariantRun, VARIANTS, type ColdCacheResult } from './types.js';
import { runVariant } from './run.js';
import { judgeColdCache } from './verdict.js';
import { coldCacheTable } from './report.js';

/** coldCacheScenario is the registered scenario. */
export const coldCacheScenario: Scenario = {
  name: 'cold-cache',
  summary: 'M cold Bulwark processes, K unique keys through a cacheable RPC: origin calls and peak rate (incident 2)',
  flags: Object.values(flags),
  async run(ctx) {
    const o = options(ctx);
    const unreachable = await redisReachable(o.redisUrl);
    if (unreachable) throw new Error(`cold-cache needs Redis: ${unreachable} (--redis-url)`);
    const bound = originRateBound(o.nodes, o.maxConcurrent, o.serviceMs);
    ctx.log(
      `cold-cache: protected variants use proxy.max_concurrent ${o.maxConcurrent}/node → origin ≤ ${fmt(bound)} calls/s ` +
        `(capacity ${fmt(o.originCapacity)}/s)`,
    );
    const runs: VariantRun[] = [];
    for (const v of o.variants) {
      ctx.log(`cold-cache ${v}: ${VARIANTS[v]}`);
      runs.push(await runVariant(ctx, v, o));
    }
    const result: ColdCacheResult = { protectedRateBound: bound, variants: runs.map((r) => r.result) };
    const lastX = Math.max(1, ...runs.flatMap((r) => r.originRate.points.map(([x]) => x)));
    const charts: Chart[] = [
      {
        title: 'Origin calls per second (trailing 1 s window)',
        xLabel: 's since the cold start',
        yLabel: 'calls/s',
        series: [
          ...runs.map((r) => r.originRate),
          {
            label: `capacity ${fmt(o.originCapacity)}/s`,
            points: [
              [0, o.originCapacity],
              [lastX, o.originCapacity],
            ],
          },
        ],
      },
      {
        title: 'Origin calls, running total',
        xLabel: 's since the cold start',
        yLabel: 'calls',
        series: runs.map((r) => r.originTotal),
      },
      {
        title: 'Client RPC latency p99 (250 ms buckets)',
        xLabel: 's since the cold start',
        yLabel: 'ms',
        series: runs.map((r) => r.p99),
      },
    ];
    return {
      options: o,
      results: result,
      checks: judgeColdCache(result.variants, o),
      charts,
      table: coldCacheTable(result, o),
    };
  },
};
