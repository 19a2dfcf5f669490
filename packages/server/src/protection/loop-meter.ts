/**
 * How busy the node's event loop is with its own work, for load shedding (load-shedder.ts):
 * the signal that tells the node's own overload from a neighbour process taking the CPU.
 *
 * Two measures, both since the last mark:
 * - `busy`: the share of the time the loop thread *could* run that it spent running. On Linux
 *   it comes from the thread's scheduler statistics (/proc/thread-self/schedstat: time on a
 *   CPU, and time runnable but waiting for one, which is left out), so time a neighbour keeps
 *   the thread off the CPU counts neither way. Elsewhere it is performance.eventLoopUtilization(),
 *   which counts a turn's preempted time as busy.
 * - `cpu`: the CPU the loop thread used, in cores (1 = a whole core). Under heavy contention
 *   even an idle loop is always either running or waiting for the CPU — every timer wakes it
 *   into a queue — and reads busy (measured: 0.98 beside 24 CPU-bound processes on its core,
 *   while using 4.7 % of a core). A node that cannot get a fair share of a core is starved by
 *   its neighbours, not overloaded by its clients, and refusing players would not help it.
 *
 * @module
 */
import { openSync, readSync } from 'node:fs';

/** LoopLoad is how busy the loop was over a window. */
export interface LoopLoad {
  /** The share of the time the loop could run that it spent running work, 0–1. */
  readonly busy: number;
  /** The CPU the loop thread used, in cores. */
  readonly cpu: number;
}

/** LoopMeter measures the loop's load since its last mark. */
export interface LoopMeter {
  /** since is the load from the last mark until now (the running turn included). */
  since(): LoopLoad;
  /** mark starts a new window. */
  mark(): void;
}

/** loopMeter measures this process's loop: from schedstat on Linux, else from eventLoopUtilization. */
export function loopMeter(): LoopMeter {
  return schedstatMeter() ?? eventLoopMeter();
}

const schedstatPath = '/proc/thread-self/schedstat';

/**
 * The schedstat file, opened once per thread (each thread has its own module instance, and
 * /proc/thread-self is the thread that opens it) and read again from offset 0: readFileSync
 * of a /proc file (size 0, so read in 64 KiB buffers) took ~90 µs a call, a pread ~5 µs, and
 * the sampler reads twice every sample_interval (20 ms), busy or idle.
 */
let schedstatFd: number | undefined;
const schedstatBuf = Buffer.alloc(128);

/** readSchedstat returns [ns on a CPU, ns runnable waiting for a CPU], or undefined where unavailable. */
function readSchedstat(): [number, number] | undefined {
  try {
    schedstatFd ??= openSync(schedstatPath, 'r');
    const n = readSync(schedstatFd, schedstatBuf, 0, schedstatBuf.length, 0);
    const [run, wait] = schedstatBuf.toString('ascii', 0, n).split(' ', 2).map(Number);
    return run !== undefined && wait !== undefined && Number.isFinite(run + wait) ? [run, wait] : undefined;
  } catch {
    return undefined;
  }
}

function schedstatMeter(): LoopMeter | undefined {
  const first = readSchedstat();
  if (first === undefined) return undefined;
  let [run, wait] = first;
  let at = process.hrtime.bigint();
  return {
    since: () => {
      const now = readSchedstat();
      const wall = Number(process.hrtime.bigint() - at);
      if (now === undefined || wall <= 0) return { busy: 0, cpu: 0 };
      const ran = now[0] - run;
      const couldRun = wall - (now[1] - wait);
      return { busy: couldRun <= 0 ? 0 : Math.min(1, ran / couldRun), cpu: ran / wall };
    },
    mark: () => {
      [run, wait] = readSchedstat() ?? [run, wait];
      at = process.hrtime.bigint();
    },
  };
}

function eventLoopMeter(): LoopMeter {
  let elu = performance.eventLoopUtilization();
  let cpu = process.cpuUsage();
  let at = performance.now();
  return {
    since: () => {
      const used = process.cpuUsage(cpu);
      const wallUs = (performance.now() - at) * 1000;
      return {
        busy: performance.eventLoopUtilization(elu).utilization,
        // The whole process (no per-thread figure here): GC and I/O threads count too.
        cpu: wallUs <= 0 ? 0 : (used.user + used.system) / wallUs,
      };
    },
    mark: () => {
      elu = performance.eventLoopUtilization();
      cpu = process.cpuUsage();
      at = performance.now();
    },
  };
}
