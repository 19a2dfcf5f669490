/**
 * The lobby scenario as the simulator registers it (issue 15): thousands of players joining and
 * leaving map-backed lobbies, racing for the last slot with conditional writes, judged on
 * conflicts, latency, snapshot sizes and exactness (every client's final map equals the
 * server's). With --nodes M > 1 the processes share Redis, which needs the Redis map broker: a
 * server that refuses map namespaces on Redis at config load is reported as such, not a crash.
 *
 * @module
 */
import { redisReachable } from '../../harness/redis-keys.js';
import { check, type Scenario } from '../../harness/scenario.js';
import { bulwarkAvailable } from '../../harness/targets.js';
import { flags, options } from './options.js';
import { charts, describe, lobbyTable } from './report.js';
import { runLobby } from './run.js';
import type { RefusedResult } from './types.js';
import { judgeLobby } from './verdict.js';

/** lobbyScenario is the registered scenario. */
export const lobbyScenario: Scenario = {
  name: 'lobby',
  summary:
    'players joining and leaving map-backed lobbies, CAS on the last slot: conflicts, snapshot sizes, latency, exactness (issue 15)',
  flags: Object.values(flags),
  async run(ctx) {
    const o = options(ctx);
    if (!bulwarkAvailable(ctx.bulwark.bulwarkMain)) {
      return {
        options: o,
        results: { skipped: 'Bulwark is not built' },
        checks: [],
        charts: [],
        table: 'lobby: skipped: Bulwark is not built',
      };
    }
    if (o.nodes > 1) {
      const unreachable = await redisReachable(o.redisUrl);
      if (unreachable) throw new Error(`lobby --nodes ${o.nodes} needs Redis: ${unreachable} (--redis-url)`);
    }
    const run = await runLobby(ctx, o);
    if (typeof run === 'string') {
      // Nothing was measured: say why, and fail the run without a stack trace.
      const results: RefusedResult = { refused: run };
      ctx.log(`lobby: Bulwark refused the config: ${run}`);
      return {
        options: o,
        results,
        checks: [check(`Bulwark accepts map namespaces on the Redis engine (--nodes ${o.nodes})`, 0, '==', 1)],
        charts: [],
        table:
          `lobby: not run: with --nodes ${o.nodes} Bulwark runs on the Redis engine, and it refused the lobby map ` +
          `namespace at config load:\n  "${run}"\n  (the Redis map broker has not landed on this build; --nodes 1 runs on memory)`,
      };
    }
    ctx.log(`  ${describe(run.result)}`);
    return {
      options: o,
      results: run.result,
      checks: judgeLobby(run.result, o),
      charts: charts(run),
      table: lobbyTable(o, run.result),
    };
  },
};
