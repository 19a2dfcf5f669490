/**
 * Running one measurement on each compared server (raw ws, Bulwark, Socket.IO), each run on a
 * fresh server process, for the scenarios that compare servers (fanout, connections).
 *
 * @module
 */
import path from 'node:path';
import type { ScenarioReport } from './report.js';
import type { ScenarioContext } from './scenario.js';
import { medianOf } from './stats.js';
import { bulwarkAvailable, defaultBulwarkMain, startServer, type RunningServer, type TargetName } from './targets.js';

/**
 * runOnTargets runs `run` against each of `ctx.targets`. With `repeat` > 1 the targets
 * alternate (raw, bulwark, socketio, raw, bulwark, socketio, …) so that drift in the machine's
 * state biases none, and each target's result is the field-wise median. A target that fails
 * or is skipped is not run again.
 */
export async function runOnTargets<R extends object>(
  name: string,
  ctx: Pick<ScenarioContext, 'targets' | 'bulwark' | 'workers' | 'log'>,
  run: (server: RunningServer) => Promise<R>,
  repeat = 1,
): Promise<ScenarioReport<R>['results']> {
  const { log } = ctx;
  const bulwarkMain = ctx.bulwark.bulwarkMain ?? defaultBulwarkMain;
  const results: ScenarioReport<R>['results'] = {};
  const runs: Partial<Record<TargetName, R[]>> = {};
  for (let rep = 1; rep <= repeat; rep++) {
    for (const target of ctx.targets) {
      if (results[target]) continue; // skipped or failed earlier
      const label = repeat > 1 ? `${name} / ${target} (run ${rep}/${repeat})` : `${name} / ${target}`;
      if (target === 'bulwark' && !bulwarkAvailable(bulwarkMain)) {
        const why = `Bulwark is not built (${path.relative(process.cwd(), bulwarkMain)} missing)`;
        log(`${label}: skipped: ${why}`);
        results.bulwark = { skipped: why };
        continue;
      }
      log(`${label}: starting server`);
      let server: RunningServer | undefined;
      try {
        server = await startServer(target, { ...ctx.bulwark, workers: ctx.workers });
        log(`${label}: server pid ${server.pid} on port ${server.port}`);
        const r = await run(server);
        if (server.exited()) throw new Error('server exited during the run');
        (runs[target] ??= []).push(r);
      } catch (err) {
        const message = (err as Error).message;
        log(`${label}: ERROR: ${message}`);
        results[target] = { error: message, ...(server ? { serverLog: server.logTail() } : {}) };
      } finally {
        await server?.stop();
      }
    }
  }
  for (const target of ctx.targets) {
    const done = runs[target];
    if (results[target] || !done) continue;
    results[target] = done.length === 1 ? { result: done[0] as R } : { result: medianOf(done), runs: done };
  }
  return results;
}

/** anyFailed says whether some target's outcome is an error. */
export function anyFailed(results: ScenarioReport<unknown>['results']): boolean {
  return Object.values(results).some((o) => o && 'error' in o);
}
