/**
 * FanoutFleet: the fan-out scenario's subscribers, spread over P worker processes (forked
 * `fanout-worker.js`, each holding a contiguous slice as a {@link SubscriberSet}), or held in
 * this process when P is 0 (the layout before issue 18, kept for comparison). The parent keeps
 * the publisher; per phase it tells every worker where each channel's numbering starts, and at
 * the end collects each worker's {@link PhaseTally} and CPU time and adds them up.
 *
 * Clocks: publications carry the publisher's `performance.now()`, which is per process; each
 * worker's offset is measured by IPC round trips (the probe with the shortest round trip wins,
 * its error is at most half that round trip) and the worker converts its arrival times.
 *
 * Workers always die with this process: an `exit` hook SIGKILLs any still running (errors,
 * signals, the watchdog), and each worker exits by itself when its IPC channel goes away.
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinProcess } from '../harness/proc.js';
import { nowMicros } from '../harness/util.js';
import { splitRange } from './conn-fleet.js';
import type { LatencyHistogram } from '../harness/latency-histogram.js';
import { mergeTallies, SubscriberSet, type PhaseTally, type SubscriberSetOptions } from './fanout-subscribers.js';
import type { FanoutWorkerReply, FromFanoutWorker, ToFanoutWorker } from './fanout-worker-protocol.js';
import type { ReaderName } from './session-clients.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const workerMain = path.resolve(here, './fanout-worker.js');

/** Every worker not yet seen exiting: SIGKILLed on any way out of this process. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Requests without an `id` (the member adds it). */
type Request = ToFanoutWorker extends infer T ? (T extends { id: number } ? Omit<T, 'id'> : never) : never;

/** A worker's answer: its body and its CPU time so far (µs). */
interface Answer {
  body: FanoutWorkerReply;
  cpuMicros: number;
}

/** One holder of subscribers: a worker process, or this process. */
interface Member {
  pid: number;
  request(req: Request, timeoutMs: number): Promise<Answer>;
  close(): void;
}

/** FanoutFleetOptions configure a {@link FanoutFleet}. */
export interface FanoutFleetOptions extends Omit<SubscriberSetOptions, 'from' | 'to' | 'concurrency' | 'reader'> {
  /**
   * The reader of each worker, round-robin: one name for all, or several to compare them in one
   * run (worker k reads with readers[k mod n], and each worker's CPU per delivery is reported).
   */
  readers: ReaderName[];
  subscribers: number;
  /** Worker processes; 0 holds the subscribers in this process. */
  processes: number;
  /** Connects in flight at once, all processes together. */
  concurrency: number;
  /** CPUs to pin the workers to (a taskset list: the ones the server does not have), if pinning. */
  pinCpus?: string;
}

/** The end of a phase, all processes added up. */
export interface FleetPhase extends PhaseTally {
  /** The merged latency counts. */
  histogram: LatencyHistogram;
  /** Each worker's CPU time during the phase, µs (empty with --sub-procs 0: it is this process's). */
  workerCpuMicros: number[];
  /** Each worker's reader and deliveries (same order). */
  workers: Array<{ reader: ReaderName; delivered: number }>;
}

/** FanoutFleet holds the fan-out subscribers of one scenario run. */
export class FanoutFleet {
  /** Deliveries of the current phase reported so far (workers report every PROGRESS_MS). */
  delivered = 0;
  /** The shortest clock-probe round trip of each worker, µs (the bound on its clock error is half). */
  readonly clockRttMicros: number[] = [];
  /** Workers that were pinned to the load generator's CPUs. */
  pinned = 0;

  private readonly members: Member[] = [];
  private cpuAtStart: number[] = [];
  private local: SubscriberSet | undefined;

  private constructor(private readonly o: FanoutFleetOptions) {}

  /** start forks the workers (or makes the local set) and opens every subscriber; throws on failures. */
  static async start(o: FanoutFleetOptions): Promise<FanoutFleet> {
    const fleet = new FanoutFleet(o);
    try {
      await fleet.init();
      return fleet;
    } catch (err) {
      fleet.close();
      throw err;
    }
  }

  /** The worker processes' pids (empty with --sub-procs 0). */
  get pids(): number[] {
    return this.local ? [] : this.members.map((m) => m.pid);
  }

  private async init(): Promise<void> {
    const { o } = this;
    const parts = Math.max(1, o.processes);
    const slices = splitRange(o.subscribers, parts);
    const concurrency = Math.max(1, Math.ceil(o.concurrency / parts));
    const readerOf = (k: number) => o.readers[k % o.readers.length] as ReaderName;
    if (o.processes === 0) {
      const set = new SubscriberSet({ ...o, reader: readerOf(0), from: 0, to: o.subscribers, concurrency });
      this.local = set;
      this.members.push(localMember(set, () => (this.delivered = set.delivered)));
    } else {
      const ready = slices.map(() => this.spawn());
      this.members.push(...(await Promise.all(ready)));
    }
    const opened = await Promise.all(
      this.members.map((m, k) => {
        const [from, to] = slices[k] as [number, number];
        return m.request({ type: 'open', options: { ...o, reader: readerOf(k), from, to, concurrency } }, 120_000);
      }),
    );
    const failures = opened.flatMap((a) => (a.body as { failures: string[] }).failures);
    if (failures.length > 0) {
      throw new Error(`${failures.length}/${o.subscribers} subscribers failed to connect; first: ${failures[0]}`);
    }
    if (!this.local) await Promise.all(this.members.map((m) => this.syncClock(m)));
  }

  /** Forks one worker and waits for its `ready`. */
  private spawn(): Promise<Member> {
    // No inherited execArgv (--inspect and the like); stdout ignored so it cannot mix with the
    // results on ours; stderr kept for error reports.
    const child = fork(workerMain, [], { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    if (child.pid === undefined) throw new Error('could not start a fan-out worker');
    live.add(child);
    const pid = child.pid;
    if (this.o.pinCpus !== undefined && pinProcess(pid, this.o.pinCpus)) this.pinned++;
    const stderr: string[] = [];
    child.stderr?.on('data', (c: Buffer) => {
      stderr.push(
        ...c
          .toString('utf8')
          .split('\n')
          .filter((l) => l.trim() !== ''),
      );
      stderr.splice(0, Math.max(0, stderr.length - 10));
    });
    child.on('error', (err) => stderr.push(`[${err.message}]`));
    const waiting = new Map<number, { resolve: (a: Answer) => void; reject: (e: Error) => void }>();
    let exited = false;
    let nextId = 1;
    const died = () => new Error(`fan-out worker pid ${pid} exited: ${stderr.slice(-5).join(' | ') || 'no output'}`);
    let onReady: (() => void) | undefined;
    child.on('message', (msg: FromFanoutWorker) => {
      if (msg.type === 'ready') onReady?.();
      else if (msg.type === 'progress') this.delivered += msg.delivered;
      else {
        const w = waiting.get(msg.id);
        waiting.delete(msg.id);
        w?.resolve({ body: msg.body, cpuMicros: msg.cpuMicros });
      }
    });
    const exit = new Promise<void>((resolve) =>
      child.once('exit', () => {
        exited = true;
        live.delete(child);
        for (const w of waiting.values()) w.reject(died());
        waiting.clear();
        resolve();
      }),
    );
    const member: Member = {
      pid,
      request: (req, timeoutMs) =>
        new Promise<Answer>((resolve, reject) => {
          if (exited) return reject(died());
          const id = nextId++;
          const timer = setTimeout(() => {
            waiting.delete(id);
            reject(new Error(`fan-out worker pid ${pid}: no reply to ${req.type} after ${timeoutMs} ms`));
          }, timeoutMs);
          waiting.set(id, {
            resolve: (a) => (clearTimeout(timer), resolve(a)),
            reject: (e) => (clearTimeout(timer), reject(e)),
          });
          child.send({ ...req, id } as ToFanoutWorker);
        }),
      close: () => {
        if (exited) return;
        if (child.connected) child.send({ type: 'close' } satisfies ToFanoutWorker);
        // A worker that does not exit promptly is killed; exit() is awaited by nobody.
        setTimeout(() => child.kill('SIGKILL'), 2000).unref();
        void exit;
      },
    };
    return new Promise<Member>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fan-out worker pid ${pid}: not ready after 20 s`)), 20_000);
      onReady = () => (clearTimeout(timer), resolve(member));
      void exit.then(() => (clearTimeout(timer), reject(died())));
    });
  }

  /** Measures a worker's clock offset by IPC round trips and tells it. */
  private async syncClock(m: Member): Promise<void> {
    let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 };
    for (let i = 0; i < 9; i++) {
      const t0 = nowMicros();
      const a = await m.request({ type: 'clock' }, 5000);
      const t1 = nowMicros();
      const w = (a.body as { nowMicros: number }).nowMicros;
      if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: w - (t0 + t1) / 2 };
    }
    this.clockRttMicros.push(best.rtt);
    await m.request({ type: 'offset', micros: Math.round(best.offset) }, 5000);
  }

  /** startPhase resets every process's counters (see SubscriberSet.startPhase) and notes their CPU. */
  async startPhase(first: readonly number[], startMicros: number): Promise<void> {
    this.delivered = 0;
    const answers = await Promise.all(
      this.members.map((m) => m.request({ type: 'phase', first: [...first], startMicros }, 10_000)),
    );
    this.cpuAtStart = answers.map((a) => a.cpuMicros);
  }

  /** finishPhase drains every process (at most `drainTimeoutMs`) and adds up their tallies. */
  async finishPhase(publishedPer: readonly number[], drainTimeoutMs: number): Promise<FleetPhase> {
    const answers = await Promise.all(
      this.members.map((m) =>
        m.request({ type: 'finish', publishedPer: [...publishedPer], drainTimeoutMs }, drainTimeoutMs + 10_000),
      ),
    );
    const tallies = answers.map((a) => (a.body as { tally: PhaseTally }).tally);
    const merged = mergeTallies(tallies);
    this.delivered = merged.delivered;
    return {
      ...merged,
      workers: tallies.map((t, k) => ({
        reader: this.o.readers[k % this.o.readers.length] as ReaderName,
        delivered: t.delivered,
      })),
      workerCpuMicros: this.local ? [] : answers.map((a, k) => a.cpuMicros - (this.cpuAtStart[k] ?? 0)),
    };
  }

  /** revive reconnects dropped subscribers in every process; resolves with how many. */
  async revive(): Promise<number> {
    const answers = await Promise.all(this.members.map((m) => m.request({ type: 'revive' }, 120_000)));
    const bodies = answers.map((a) => a.body as { revived: number; errors: string[] });
    const errors = bodies.flatMap((b) => b.errors);
    if (errors.length > 0) throw new Error(`could not reconnect ${errors.length} subscribers; first: ${errors[0]}`);
    return bodies.reduce((n, b) => n + b.revived, 0);
  }

  /** close destroys every subscriber's socket and ends the workers (SIGKILL after 2 s). */
  close(): void {
    for (const m of this.members) m.close();
  }
}

/** A member for the subscribers held in this process (its CPU is this process's: reported as 0). */
function localMember(set: SubscriberSet, onDelivered: () => void): Member {
  const progress = setInterval(onDelivered, 100);
  progress.unref();
  return {
    pid: process.pid,
    async request(req) {
      const done = (body: FanoutWorkerReply): Answer => ({ body, cpuMicros: 0 });
      switch (req.type) {
        case 'open':
          return done({ failures: await set.open() });
        case 'phase':
          set.startPhase(req.first, req.startMicros);
          return done({});
        case 'finish':
          return done({ tally: await set.finishPhase(req.publishedPer, req.drainTimeoutMs) });
        case 'revive': {
          const r = await set.revive();
          return done({ revived: r.count, errors: r.errors });
        }
        default:
          return done({});
      }
    },
    close() {
      clearInterval(progress);
      set.terminate();
    },
  };
}
