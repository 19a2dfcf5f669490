/**
 * Running one measurement on each compared server (raw ws, Bulwark, Socket.IO; Bulwark once per
 * client kind asked for), each run on a fresh server process, for the scenarios that compare servers (fanout, connections).
 *
 * @module
 */
import path from 'node:path';
import { startConsolePoller } from './console-poller.js';
import { bulwarkKey, type ScenarioReport } from './report.js';
import type { ScenarioContext } from './scenario.js';
import { medianOf } from './stats.js';
import { bulwarkAvailable, defaultBulwarkMain, startServer, type RunningServer, type TargetName } from './targets.js';

/** A column of a comparison: one target, and for Bulwark the client kind it is measured with. */
interface Column {
  key: keyof ScenarioReport<unknown>['results'];
  target: TargetName;
  variant: string;
}

/**
 * runOnTargets runs `run` against each of `ctx.targets`; Bulwark once per client kind of
 * `variants` (default JSON only), each on a fresh server, its results under {@link bulwarkKey}
 * (`bulwark`, `bulwark-protobuf`, …); the reference servers are given the first variant and
 * ignore it. With `repeat` > 1 the columns alternate (raw, bulwark, bulwark-protobuf, socketio,
 * raw, …) so that drift in the machine's state biases none, and each column's result is the
 * field-wise median. A column that fails or is skipped is not run again.
 */
export async function runOnTargets<R extends object>(
  name: string,
  ctx: Pick<ScenarioContext, 'targets' | 'bulwark' | 'workers' | 'log'>,
  run: (server: RunningServer, variant: string) => Promise<R>,
  repeat = 1,
  variants: readonly string[] = ['json'],
): Promise<ScenarioReport<R>['results']> {
  const { log } = ctx;
  const bulwarkMain = ctx.bulwark.bulwarkMain ?? defaultBulwarkMain;
  const results: ScenarioReport<R>['results'] = {};
  const runs = new Map<Column['key'], R[]>();
  const columns = ctx.targets.flatMap((target): Column[] =>
    target === 'bulwark'
      ? variants.map((variant) => ({ key: bulwarkKey(variant), target, variant }))
      : [{ key: target, target, variant: variants[0] ?? 'json' }],
  );
  for (let rep = 1; rep <= repeat; rep++) {
    for (const { key, target, variant } of columns) {
      if (results[key]) continue; // skipped or failed earlier
      const label = repeat > 1 ? `${name} / ${key} (run ${rep}/${repeat})` : `${name} / ${key}`;
      if (target === 'bulwark' && !bulwarkAvailable(bulwarkMain)) {
        const why = `Bulwark is not built (${path.relative(process.cwd(), bulwarkMain)} missing)`;
        log(`${label}: skipped: ${why}`);
        results[key] = { skipped: why };
        continue;
      }
      log(`${label}: starting server`);
      let server: RunningServer | undefined;
      try {
        server = await startServer(target, { ...ctx.bulwark, workers: ctx.workers });
        log(`${label}: server pid ${server.pid} on port ${server.port}`);
        const poller = target === 'bulwark' && ctx.bulwark.console ? await startConsolePoller(server) : undefined;
        let r: R;
        try {
          r = await run(server, variant);
        } finally {
          const polled = await poller?.stop();
          if (polled) log(`${label}: console polled ${polled.polls} times (${polled.errors} failed)`);
        }
        if (server.exited()) throw new Error('server exited during the run');
        runs.set(key, [...(runs.get(key) ?? []), r]);
      } catch (err) {
        const message = (err as Error).message;
        log(`${label}: ERROR: ${message}`);
        results[key] = { error: message, ...(server ? { serverLog: server.logTail() } : {}) };
      } finally {
        await server?.stop();
      }
    }
  }
  for (const { key } of columns) {
    const done = runs.get(key);
    if (results[key] || !done) continue;
    results[key] = done.length === 1 ? { result: done[0] as R } : { result: medianOf(done), runs: done };
  }
  return results;
}

/** anyFailed says whether some target's outcome is an error. */
export function anyFailed(results: ScenarioReport<unknown>['results']): boolean {
  return Object.values(results).some((o) => o && 'error' in o);
}
