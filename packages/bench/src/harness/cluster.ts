/**
 * Starting a cluster: M Bulwark processes on one Redis, sharing one token secret and API key
 * (a client's token is good on any node, the backend's key too), as the multi-node scenarios
 * (`cold-cache`, `sticker`) need. The Redis engine and its prefix come with the config.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Log } from './scenario.js';
import { deepMerge, startServer, type RunningServer, type StartOptions } from './targets.js';

/**
 * startCluster starts M Bulwark processes sharing one secret pair (and Redis prefix, via the
 * config); if any fails, the others are stopped and the error carries its output.
 */
export async function startCluster(
  start: StartOptions,
  config: Record<string, unknown>,
  nodes: number,
  log: Log,
): Promise<{ servers: RunningServer[]; tokenSecret: string }> {
  const tokenSecret = randomBytes(32).toString('hex');
  const apiKey = randomBytes(16).toString('hex');
  const opts: StartOptions = {
    ...start,
    tokenSecret,
    apiKey,
    bulwarkConfig: deepMerge(start.bulwarkConfig ?? {}, config),
  };
  const started = await Promise.allSettled(Array.from({ length: nodes }, () => startServer('bulwark', opts)));
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) {
    await Promise.all(servers.map((s) => s.stop()));
    throw failure.reason;
  }
  log(`  ${nodes} Bulwark processes: pids ${servers.map((s) => s.pid).join(', ')}`);
  return { servers, tokenSecret };
}
