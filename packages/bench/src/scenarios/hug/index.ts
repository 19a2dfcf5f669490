/**
 * The hug scenario as the simulator registers it: its name, summary and flags, and the run that
 * starts Bulwark with the admission limits, measures, judges and reports.
 *
 * @module
 */
import { type Chart, type Scenario, type ScenarioContext } from '../../harness/scenario.js';
import { bulwarkAvailable, deepMerge, startServer } from '../../harness/targets.js';
import { flags } from './options.js';
import { hugOptions } from './options.js';
import { type HugResult } from './types.js';
import { runHug } from './run.js';
import { hugChecks } from './verdict.js';
import { hugTable } from './report.js';

/** hugScenario: connection ramp to 10× normal against admission limits. */
export const hugScenario: Scenario = {
  name: 'hug',
  summary:
    'Bulwark only: new players ramp to 10x the normal arrival rate; admitted, refused (503 + Retry-After, retried), handshake p99, memory',
  flags: Object.values(flags),
  async run(ctx: ScenarioContext) {
    const o = hugOptions(ctx);
    if (!bulwarkAvailable(ctx.bulwark.bulwarkMain)) throw new Error('hug: Bulwark is not built');
    ctx.log('hug / bulwark: starting server');
    const server = await startServer('bulwark', {
      ...ctx.bulwark,
      bulwarkConfig: deepMerge(ctx.bulwark.bulwarkConfig ?? {}, {
        client: { connection_limit: o.connectionLimit, connection_rate_limit: o.connectionRateLimit },
      }),
    });
    ctx.log(`hug / bulwark: server pid ${server.pid} on port ${server.port}`);
    let out: { result: HugResult; charts: Chart[] };
    try {
      out = await runHug(server, o, ctx);
    } catch (err) {
      throw Object.assign(new Error(`hug: ${(err as Error).message}`), { serverLog: server.logTail() });
    } finally {
      await server.stop();
    }
    const r = out.result;
    const checks = hugChecks(
      {
        serverAlive: r.server.alive,
        readyFailed: r.ready.failed,
        refused: r.attempts.refused,
        refusedWithoutAdvice: r.advice.refusalsWithout,
        admittedP99Ms: r.handshakeMs.p99,
        peakRssBytes: r.server.rssPeakBytes,
        peakHeld: Math.max(r.held.peakClient, r.held.peakServerSampled),
        connectionLimit: o.connectionLimit,
        unexpectedCloses: r.closes.unexpected,
        attempts: r.attempts.total,
        failed: r.attempts.failed,
        notSent: r.players.notSent,
      },
      { p99LimitMs: o.p99LimitMs, maxRssMiB: o.maxRssMiB, maxFailedPercent: o.maxFailedPercent, maxNotSentPercent: 1 },
    );
    return { options: o, results: r, checks, charts: out.charts, table: hugTable(r, o) };
  },
};
