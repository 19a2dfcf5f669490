/**
 * OrphanGuard: makes sure no process of a server's tree outlives the run. `bulwark start
 * --workers N` forks N workers; stopping the server signals only the primary, and a worker
 * busy closing thousands of sockets can linger after the primary is gone. The guard remembers
 * every process of the tree by pid and start time (so a reused pid is never hit), and
 * SIGKILLs the ones still running when asked, and on any way out of this process.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { readStartTicks, treePids } from './proc.js';
import { sleep } from './util.js';

/** ProcessIdentity names one process: its pid and when it started. */
interface ProcessIdentity {
  pid: number;
  startTicks: number;
}

/** running tells whether process `p` still runs (a zombie, dead but not yet reaped, does not). */
function running(p: ProcessIdentity): boolean {
  if (readStartTicks(p.pid) !== p.startTicks) return false;
  try {
    const stat = readFileSync(`/proc/${p.pid}/stat`, 'latin1');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** Guards of this process not yet released: swept on exit. */
const guards = new Set<OrphanGuard>();
process.once('exit', () => {
  for (const g of guards) g.killLeft();
});

/** OrphanGuard remembers a process tree and kills what is left of it. */
export class OrphanGuard {
  private readonly procs: ProcessIdentity[] = [];

  /** Remembers `pid` and all its current descendants. */
  constructor(pid: number) {
    for (const p of treePids(pid)) {
      const startTicks = readStartTicks(p);
      if (startTicks !== undefined) this.procs.push({ pid: p, startTicks });
    }
    guards.add(this);
  }

  /** pids of the remembered processes. */
  get pids(): number[] {
    return this.procs.map((p) => p.pid);
  }

  /** left lists the remembered processes still running. */
  left(): number[] {
    return this.procs.filter((p) => running(p)).map((p) => p.pid);
  }

  /** killLeft SIGKILLs every remembered process still running; returns how many. */
  killLeft(): number {
    const left = this.left();
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    return left.length;
  }

  /**
   * release waits up to `graceMs` for the remembered processes to exit by themselves, then
   * SIGKILLs the rest and forgets the tree. Returns how many had to be killed.
   */
  async release(graceMs = 3000): Promise<number> {
    const deadline = performance.now() + graceMs;
    while (this.left().length > 0 && performance.now() < deadline) await sleep(50);
    const killed = this.killLeft();
    guards.delete(this);
    return killed;
  }
}
