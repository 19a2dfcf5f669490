/**
 * CPU-hungry neighbour processes: busy loops that keep a core busy beside the server under
 * test, as another program on a busy machine would (issue 12: a compile next to an idle node).
 * Each hog is `node -e` spinning in 20 ms slices; when pinned it runs on the server's CPU with
 * taskset, so it competes with the server for that core.
 *
 * A hog never outlives the bench: it exits when its stdin pipe (held by the bench) closes —
 * also when the bench is SIGKILLed and no handler of ours runs — and by itself after
 * `maxSeconds`; {@link CpuHogs.stop} and any way out of this process SIGKILL what is left.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readCpuMicros, readComm, tasksetAvailable } from './proc.js';
import { round, sleep } from './util.js';

/** Every hog started and not yet seen exiting: SIGKILLed on any way out of this process. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * hogScript is the program each hog runs: spin in slices, yielding to the event loop between
 * them (setImmediate), so that the end of stdin — the bench gone — is seen within a slice.
 */
export function hogScript(maxSeconds: number, sliceMs = 20): string {
  return [
    'const stop = () => process.exit(0);',
    "process.stdin.on('end', stop).on('close', stop).on('error', stop).resume();",
    `const deadline = performance.now() + ${Math.round(maxSeconds * 1000)};`,
    'const spin = () => {',
    `  const end = performance.now() + ${sliceMs};`,
    '  while (performance.now() < end) {}',
    '  if (performance.now() > deadline) stop();',
    '  setImmediate(spin);',
    '};',
    'spin();',
  ].join('\n');
}

/** HogsOptions configure {@link startHogs}. */
export interface HogsOptions {
  /** How many hogs. */
  count: number;
  /** CPU to pin every hog to (the server's), or undefined for none. */
  cpu?: number;
  /** A hog exits by itself after this long, whatever happens to the bench. */
  maxSeconds: number;
}

/** CpuHogs is a started set of hogs. */
export class CpuHogs {
  private readonly cpu0: number;
  private readonly t0 = performance.now();
  private stopped: Promise<number> | undefined;

  constructor(
    private readonly children: ChildProcess[],
    /** CPU they are pinned to, if pinned. */
    readonly pinnedCpu: number | undefined,
  ) {
    this.cpu0 = this.cpuMicros();
  }

  /** pids of the hogs (each is node's pid: taskset execs it). */
  get pids(): number[] {
    return this.children.flatMap((c) => (c.pid === undefined ? [] : [c.pid]));
  }

  /** running is how many hogs are still running. */
  get running(): number {
    return this.children.filter((c) => c.exitCode === null && c.signalCode === null).length;
  }

  /** cpuMicros is the CPU time the running hogs have used so far (exited ones drop out). */
  cpuMicros(): number {
    let total = 0;
    for (const pid of this.pids) {
      try {
        total += readCpuMicros(pid);
      } catch {
        // exited
      }
    }
    return total;
  }

  /** cpuPercent is the hogs' CPU since they started, % of one core (all hogs together). */
  cpuPercent(): number {
    const wallMicros = (performance.now() - this.t0) * 1000;
    return round(((this.cpuMicros() - this.cpu0) / wallMicros) * 100, 1);
  }

  /** stop SIGKILLs every hog and waits until they are gone; returns how many were still running. Idempotent. */
  stop(): Promise<number> {
    this.stopped ??= (async () => {
      const running = this.children.filter((c) => c.exitCode === null && c.signalCode === null);
      for (const c of running) c.kill('SIGKILL');
      const deadline = performance.now() + 3000;
      while (this.running > 0 && performance.now() < deadline) await sleep(10);
      for (const c of this.children) c.stdin?.destroy();
      return running.length;
    })();
    return this.stopped;
  }
}

/**
 * startHogs starts `count` hogs (pinned to `cpu` with taskset when given and available) and
 * resolves once each one runs node (taskset has exec'd it), so its CPU can be read.
 */
export async function startHogs(opts: HogsOptions): Promise<CpuHogs> {
  const pin = opts.cpu !== undefined && tasksetAvailable();
  const script = hogScript(opts.maxSeconds);
  const children: ChildProcess[] = [];
  for (let i = 0; i < opts.count; i++) {
    const args = ['-e', script];
    const child = pin
      ? spawn('taskset', ['-c', String(opts.cpu), process.execPath, ...args], { stdio: ['pipe', 'ignore', 'ignore'] })
      : spawn(process.execPath, args, { stdio: ['pipe', 'ignore', 'ignore'] });
    live.add(child);
    child.once('exit', () => live.delete(child));
    child.once('error', () => live.delete(child));
    child.stdin?.on('error', () => undefined);
    children.push(child);
  }
  const hogs = new CpuHogs(children, pin ? opts.cpu : undefined);
  const deadline = performance.now() + 5000;
  while (performance.now() < deadline) {
    const pending = hogs.pids.filter((pid) => {
      const comm = readComm(pid);
      return comm === undefined || comm === 'taskset';
    });
    if (pending.length === 0 && hogs.running === opts.count) break;
    await sleep(10);
  }
  if (hogs.running !== opts.count) {
    await hogs.stop();
    throw new Error(`only ${hogs.running} of ${opts.count} CPU hogs started`);
  }
  return hogs;
}
