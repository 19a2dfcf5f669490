/**
 * The sticker scenario as the simulator registers it (incident 2 end to end): new and old
 * builds in one chat on a cold 3-node cluster, stickers posted with an upgrade-text variant
 * answered by a cached backend RPC; each build must get its own payload, and the origin about
 * one call per sticker.
 *
 * @module
 */
import { fmt } from '../../harness/format.js';
import { redisReachable } from '../../harness/redis-keys.js';
import { type Chart, type Scenario } from '../../harness/scenario.js';
import { flags, options } from './options.js';
import { stickerTable } from './report.js';
import { runMode } from './run.js';
import { CACHE_MODES, type ModeRun, type StickerResult } from './types.js';
import { judgeSticker } from './verdict.js';

/** stickerScenario is the registered scenario. */
export const stickerScenario: Scenario = {
  name: 'sticker',
  summary:
    'new and old builds in one chat on M cold nodes: each gets its own sticker payload, the origin ~1 call per sticker (incident 2)',
  flags: Object.values(flags),
  async run(ctx) {
    const o = options(ctx);
    const unreachable = await redisReachable(o.redisUrl);
    if (unreachable) throw new Error(`sticker needs Redis: ${unreachable} (--redis-url)`);
    const runs: ModeRun[] = [];
    for (const m of o.modes) {
      ctx.log(`sticker ${m}: ${CACHE_MODES[m]}`);
      const run = await runMode(ctx, m, o);
      ctx.log(`  ${m}: origin ${fmt(run.result.origin.calls)} calls`);
      runs.push(run);
    }
    const result: StickerResult = {
      perServerCacheCalls: o.nodes * o.stickers,
      noCacheCalls: o.stickers * o.postsPerSticker,
      modes: runs.map((r) => r.result),
    };
    const charts: Chart[] = [
      {
        title: 'Origin calls, running total',
        xLabel: 's since the first post',
        yLabel: 'calls',
        series: runs.map((r) => r.originTotal),
      },
      {
        title: 'Deliveries per second (every player)',
        xLabel: 's since the first post',
        yLabel: 'deliveries/s',
        series: runs.map((r) => r.deliveryRate),
      },
    ];
    return {
      options: o,
      results: result,
      checks: judgeSticker(result.modes, o),
      charts,
      table: stickerTable(result, o),
    };
  },
};
