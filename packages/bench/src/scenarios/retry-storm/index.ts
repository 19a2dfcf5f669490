/**
 * The retry-storm scenario as the simulator registers it: its name, summary and flags, and the run
 * over the variants with the verdict and report.
 *
 * @module
 */
import { fmt } from '../../harness/format.js';
import { originCapacity } from '../../servers/rpc-origin.js';
import { type Scenario } from '../../harness/scenario.js';
import { ServerRunError } from '../../harness/targets.js';
import type { Timeline } from '../../harness/timeline.js';
import { round } from '../../harness/util.js';
import { flags } from './options.js';
import { optionsOf } from './options.js';
import { windowsOf, reportedWindow, demandOf } from './plan.js';
import { type VariantResult, type VariantError } from './types.js';
import { runVariant } from './run.js';
import { retryStormChecks } from './verdict.js';
import { charts, retryStormTable } from './report.js';

export const retryStormScenario: Scenario = {
  name: 'retry-storm',
  summary:
    'incident 4: a buggy build calls one RPC at 10× with 3 immediate retries; goodput and latency of everyone else, unprotected vs protected vs kill switch',
  flags: Object.values(flags),
  async run(ctx) {
    const o = optionsOf(ctx);
    if (o.variants.includes('kill-switch')) windowsOf(o, true); // validate --switch-after before starting anything
    const capacity = originCapacity(o.originWorkers, o.originServiceMs);
    const results: VariantResult[] = [];
    const timelines: Timeline[] = [];
    const errors: VariantError[] = [];
    for (const v of o.variants) {
      const began = performance.now();
      let ran;
      try {
        ran = await runVariant(ctx, o, v);
      } catch (err) {
        ctx.log(`  ${v}: ERROR: ${(err as Error).message}`);
        const serverLog = err instanceof ServerRunError ? err.serverLog : undefined;
        if (serverLog?.length) ctx.log(`  server output:\n    ${serverLog.slice(-10).join('\n    ')}`);
        errors.push({ variant: v, error: (err as Error).message, ...(serverLog ? { serverLog } : {}) });
        continue;
      }
      const { result, timeline } = ran;
      result.runSeconds = round((performance.now() - began) / 1000, 1);
      results.push(result);
      timelines.push(timeline);
      const w = reportedWindow(result, v === 'kill-switch' ? 'after' : 'storm');
      if (w) {
        ctx.log(
          `  ${v}: well-behaved ok ${fmt(w.good.successPercent, 2)}%, p99 ${fmt(w.good.latencyMs.p99, 1)} ms; ` +
            `origin ${fmt(w.origin.perSec)} calls/s (${fmt(w.origin.loadPercent)}% of capacity), 503 ${fmt(w.origin.throttled)}`,
        );
      }
    }
    return {
      options: { ...o, originCapacityPerSec: capacity, demand: demandOf(o) },
      results: { capacityPerSec: capacity, variants: results, errors },
      checks: retryStormChecks(
        results,
        { successPercent: o.successLimitPercent, p99Ms: o.p99LimitMs, capacityPerSec: capacity },
        errors,
      ),
      charts: charts(o, results, timelines, capacity),
      table: retryStormTable(o, capacity, results, errors),
    };
  },
};
