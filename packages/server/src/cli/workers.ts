/**
 * `bulwark start --workers N`: N node processes on one machine, sharing one port (incident 5:
 * a single-threaded server pegs one core while the others idle). Node's cluster module lets
 * the workers listen on the same port; the primary process only supervises: it forks the
 * workers, restarts one that dies (with a growing delay, so a worker that cannot start does
 * not become a fork storm), and on SIGTERM asks every worker to drain and waits for them.
 *
 * The workers share nothing in memory: they act as one Bulwark through the Redis engine,
 * exactly as nodes on different machines do. That is why workers need a shared engine: engine.type redis or postgresql.
 *
 * @module
 */
import cluster, { type Worker } from 'node:cluster';

/** Restart delays of a worker that died: doubling from the first, capped at the last. */
const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;
/** A worker that lived this long before dying restarts after RESTART_MIN_MS again. */
const HEALTHY_AFTER_MS = 60_000;

/** isWorker tells whether this process is a worker forked by {@link runPrimary}. */
export function isWorker(): boolean {
  return cluster.isWorker;
}

/** workerId is this worker's number (1…N), or undefined in the primary. */
export function workerId(): number | undefined {
  return cluster.worker?.id;
}

/**
 * runPrimary forks `n` workers running this same command line, supervises them, and resolves
 * with the exit status once they all stopped after a SIGTERM/SIGINT. `onListening` is called
 * once every worker listens, with the port.
 */
export function runPrimary(
  n: number,
  say: (line: string) => void,
  onListening: (port: number) => void,
): Promise<number> {
  let stopping = false;
  /** A worker that did not stop cleanly during a stop makes the primary's exit status 1. */
  let failed = false;
  let listening = 0;
  const started = new Map<Worker, number>();
  const delays = new Map<number, number>();

  const fork = (slot: number): void => {
    const w = cluster.fork({ BULWARK_WORKER_SLOT: String(slot) });
    started.set(w, Date.now());
    w.once('listening', (addr) => {
      if (++listening === n) onListening(addr.port);
    });
    w.once('exit', (code, signal) => {
      const lived = Date.now() - (started.get(w) ?? Date.now());
      started.delete(w);
      if (stopping) {
        if (code !== 0) failed = true;
        return;
      }
      const last = lived > HEALTHY_AFTER_MS ? 0 : (delays.get(slot) ?? 0);
      const delay = Math.min(RESTART_MAX_MS, Math.max(RESTART_MIN_MS, last * 2));
      delays.set(slot, delay);
      say(`worker ${slot} exited (${signal ?? `code ${code}`}); restarting in ${delay} ms`);
      setTimeout(() => {
        if (!stopping) fork(slot);
      }, delay).unref();
    });
  };
  for (let slot = 1; slot <= n; slot++) fork(slot);

  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        say('second signal: stopping workers now');
        for (const w of started.keys()) w.process.kill('SIGKILL');
        resolve(1);
        return;
      }
      stopping = true;
      say(`${signal}: draining ${started.size} workers`);
      // Each worker drains its own clients over drain.window, as a single node would.
      for (const w of started.keys()) w.process.kill('SIGTERM');
      const check = setInterval(() => {
        if (started.size > 0) return;
        clearInterval(check);
        resolve(failed ? 1 : 0);
      }, 50);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}
