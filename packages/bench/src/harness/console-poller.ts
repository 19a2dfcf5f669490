/**
 * An operator watching the console during a run (`--console`): logs in to Bulwark's /admin with
 * the bench's admin password, then every second fetches the overview the console's live charts
 * draw and scrapes /metrics as Prometheus would, so a run with it can be compared with one
 * without (the console and the latency histograms must not cost the hot paths).
 *
 * @module
 */
import { BENCH_ADMIN_PASSWORD, type RunningServer } from './targets.js';

/** ConsolePoller polls until stopped; `stop` says how many polls ran and failed. */
export interface ConsolePoller {
  stop(): Promise<{ polls: number; errors: number }>;
}

/** startConsolePoller logs in to `server`'s console and polls it and /metrics every `everyMs`. */
export async function startConsolePoller(server: Pick<RunningServer, 'port'>, everyMs = 1000): Promise<ConsolePoller> {
  const base = `http://127.0.0.1:${server.port}`;
  const login = await fetch(`${base}/admin/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ password: BENCH_ADMIN_PASSWORD }),
  });
  if (!login.ok) throw new Error(`--console: login to ${base}/admin failed: HTTP ${login.status}`);
  const { token } = (await login.json()) as { token: string };
  let polls = 0;
  let errors = 0;
  let stopped = false;
  const poll = async (): Promise<void> => {
    try {
      const [overview, metrics] = await Promise.all([
        fetch(`${base}/admin/api/overview`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
          body: '{}',
        }),
        fetch(`${base}/metrics`),
      ]);
      await Promise.all([overview.arrayBuffer(), metrics.arrayBuffer()]);
      if (!overview.ok || !metrics.ok) errors++;
    } catch {
      errors++;
    }
    polls++;
  };
  let inFlight: Promise<void> = poll();
  const timer = setInterval(() => {
    if (!stopped) inFlight = inFlight.then(poll);
  }, everyMs);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await inFlight;
      return { polls, errors };
    },
  };
}
