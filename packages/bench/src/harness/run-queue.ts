/**
 * How long a process waited for a CPU: the second field of /proc/<pid>/task/<tid>/schedstat
 * (nanoseconds runnable but not running), summed over its threads. On a machine shared with
 * other work a server that waits for a CPU answers late without being busy itself, and its
 * own CPU reading alone would not say so; this does.
 *
 * @module
 */
import { readdirSync, readFileSync } from 'node:fs';

/**
 * readRunQueueWaitNanos is `pid`'s threads' total time waiting on a run queue (ns), or with
 * `mainThreadOnly` its main thread's alone (the event loop: what delays a reply; helper
 * threads waiting at the same time can add up to more than the wall time); NaN when unreadable.
 */
export function readRunQueueWaitNanos(pid: number, mainThreadOnly = false): number {
  try {
    if (mainThreadOnly) return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'latin1').split(' ')[1]);
    let total = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[1]);
      } catch {
        // The thread exited between the listing and the read.
      }
    }
    return total;
  } catch {
    return Number.NaN;
  }
}

/** watchRunQueueWait starts a window; the returned function gives the wait as % of the window's wall time. */
export function watchRunQueueWait(pid: number, mainThreadOnly = false): () => number {
  const w0 = readRunQueueWaitNanos(pid, mainThreadOnly);
  const t0 = performance.now();
  return () => {
    const wallNanos = (performance.now() - t0) * 1e6;
    return Math.round(((readRunQueueWaitNanos(pid, mainThreadOnly) - w0) / wallNanos) * 1000) / 10;
  };
}
