/**
 * ConnFleet: the load generator's side of the connection workers. It forks P `conn-worker.js`
 * child processes, gives each a contiguous slice of the connections to open, adds up what they
 * report, and always ends them: `close` has every worker destroy its sockets at once (in
 * parallel), then SIGKILLs any that did not exit; a process `exit` hook SIGKILLs whatever is
 * left (errors, signals, the watchdog), and each worker exits by itself when its IPC channel
 * to this process goes away.
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  ConnWorkerProgress,
  ConnWorkerSnapshot,
  ConnWorkerStart,
  FromConnWorker,
  ToConnWorker,
} from './conn-worker-protocol.js';
import { readRssBytes } from '../harness/proc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const workerMain = path.resolve(here, './conn-worker.js');

/** Every worker not yet seen exiting: SIGKILLed on any way out of this process. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * splitRange splits indices [0, total) into `parts` contiguous [from, to) slices whose sizes
 * differ by at most one (the first ones get the extra), so every index is in exactly one slice.
 */
export function splitRange(total: number, parts: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const base = Math.floor(total / parts);
  const extra = total % parts;
  let from = 0;
  for (let k = 0; k < parts; k++) {
    const to = from + base + (k < extra ? 1 : 0);
    out.push([from, to]);
    from = to;
  }
  return out;
}

/** within waits for `p` at most `ms` (without leaving a timer behind that keeps the process alive). */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([p, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** FleetOptions configure a {@link ConnFleet}. */
export interface FleetOptions extends Omit<ConnWorkerStart, 'type' | 'from' | 'to' | 'concurrency'> {
  /** Worker processes. */
  processes: number;
  /** Connections in all. */
  total: number;
  /** Connects in flight at once, all workers together (split evenly). */
  concurrency: number;
  /** How long a worker may take to load and say ready. */
  readyTimeoutMs?: number;
}

/** FleetSnapshot adds up the workers' snapshots. */
export type FleetSnapshot = Omit<ConnWorkerSnapshot, 'type' | 'id'>;

/** One worker process and what it reported. */
interface Member {
  child: ChildProcess;
  pid: number;
  connected: number;
  done: boolean;
  exited: boolean;
  stderr: string[];
  onMessage: Set<(msg: FromConnWorker) => void>;
}

/** ConnFleet runs the connection workers of one scenario run. */
export class ConnFleet {
  /** Connections established, failed, and 503 refusals retried, all workers. */
  connected = 0;
  failed = 0;
  rejected = 0;
  /** Final errors by kind, all workers. */
  readonly errors: Record<string, number> = {};
  /** Workers that exited before being told to (with their last stderr lines). */
  readonly deaths: string[] = [];
  /** Resolves once every worker finished its connect loop (or died). */
  readonly done: Promise<void>;

  private readonly members: Member[] = [];
  private nextSnapshotId = 1;
  /** Set once close() or kill() began: exits from then on are expected. */
  private closing = false;
  private resolveDone!: () => void;

  private constructor(private readonly onProgress: (p: ConnWorkerProgress) => void) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  /**
   * start forks the workers, waits until each is ready, then tells them all to start
   * connecting; `onProgress` receives every progress report (counts since the previous one).
   */
  static async start(opts: FleetOptions, onProgress: (p: ConnWorkerProgress) => void): Promise<ConnFleet> {
    const fleet = new ConnFleet(onProgress);
    try {
      const ready = splitRange(opts.total, opts.processes).map(([from, to], k) => fleet.spawn(k, from, to, opts));
      await Promise.all(ready);
      return fleet;
    } catch (err) {
      fleet.kill();
      throw err;
    }
  }

  /** pids of the worker processes. */
  get pids(): number[] {
    return this.members.map((m) => m.pid);
  }

  /** Workers still running. */
  get running(): number {
    return this.members.filter((m) => !m.exited).length;
  }

  /** rssBytes is each worker's resident memory (0 for one that exited). */
  rssBytes(): number[] {
    return this.members.map((m) => {
      try {
        return m.exited ? 0 : readRssBytes(m.pid);
      } catch {
        return 0;
      }
    });
  }

  private spawn(k: number, from: number, to: number, opts: FleetOptions): Promise<void> {
    // No inherited execArgv (--inspect and the like); stdout ignored so it cannot mix with
    // the results on ours; stderr kept for error reports.
    const child = fork(workerMain, [], { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    if (child.pid === undefined) throw new Error(`could not start load process ${k + 1}`);
    live.add(child);
    const m: Member = {
      child,
      pid: child.pid,
      connected: 0,
      done: false,
      exited: false,
      stderr: [],
      onMessage: new Set(),
    };
    this.members.push(m);
    child.stderr?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') m.stderr.push(line.slice(0, 300));
      if (m.stderr.length > 20) m.stderr.splice(0, m.stderr.length - 20);
    });
    // A send racing the worker's exit fails with EPIPE: the exit handler reports the worker.
    child.on('error', (err) => m.stderr.push(`[${err.message}]`));
    child.on('message', (msg: FromConnWorker) => {
      if (msg.type === 'progress') this.onWorkerProgress(m, msg);
      for (const f of m.onMessage) f(msg);
    });
    child.once('exit', (code, signal) => {
      m.exited = true;
      live.delete(child);
      if (!this.closing) {
        this.deaths.push(
          `load process ${k + 1} (pid ${m.pid}) exited early (${signal ?? `code ${code}`})` +
            (m.stderr.length ? `: ${m.stderr.slice(-5).join(' | ')}` : ''),
        );
      }
      if (!m.done) {
        m.done = true;
        this.checkDone();
      }
      for (const f of m.onMessage) f({ type: 'closed', ms: 0 });
    });
    const concurrency = Math.max(1, Math.ceil(opts.concurrency / opts.processes));
    return this.waitFor(m, (msg) => msg.type === 'ready', opts.readyTimeoutMs ?? 20_000, 'ready').then(() => {
      const start: ToConnWorker = {
        type: 'start',
        url: opts.url,
        tokenSecret: opts.tokenSecret,
        from,
        to,
        concurrency,
        channels: opts.channels,
        sourcePrefix: opts.sourcePrefix,
        sourceIps: opts.sourceIps,
        timeoutMs: opts.timeoutMs,
        retries: opts.retries,
      };
      child.send(start);
    });
  }

  private onWorkerProgress(m: Member, p: ConnWorkerProgress): void {
    m.connected += p.connected;
    this.connected += p.connected;
    this.failed += p.failed;
    this.rejected += p.rejected;
    for (const [kind, n] of Object.entries(p.errors)) this.errors[kind] = (this.errors[kind] ?? 0) + n;
    this.onProgress(p);
    if (p.done && !m.done) {
      m.done = true;
      this.checkDone();
    }
  }

  private checkDone(): void {
    if (this.members.every((m) => m.done)) this.resolveDone();
  }

  /** waitFor resolves on the first message of `m` matching `match`; rejects on timeout or exit. */
  private waitFor(
    m: Member,
    match: (msg: FromConnWorker) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<FromConnWorker> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        m.onMessage.delete(listener);
        reject(new Error(`load process pid ${m.pid}: no ${what} after ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (msg: FromConnWorker) => {
        if (m.exited) {
          clearTimeout(timer);
          m.onMessage.delete(listener);
          reject(new Error(`load process pid ${m.pid} exited: ${m.stderr.slice(-5).join(' | ')}`));
        } else if (match(msg)) {
          clearTimeout(timer);
          m.onMessage.delete(listener);
          resolve(msg);
        }
      };
      m.onMessage.add(listener);
    });
  }

  /**
   * snapshot asks every worker how many of its established connections are still open, and
   * adds up the answers. A worker that died counts all its connections as closed (code
   * "worker died").
   */
  async snapshot(timeoutMs = 10_000): Promise<FleetSnapshot> {
    const id = this.nextSnapshotId++;
    const out: FleetSnapshot = { open: 0, closed: 0, closeCodes: {}, pinged: 0, pings: 0 };
    const answers = await Promise.all(
      this.members.map(async (m) => {
        if (m.exited) return { m, s: undefined };
        const reply = this.waitFor(m, (msg) => msg.type === 'snapshot' && msg.id === id, timeoutMs, 'snapshot');
        m.child.send({ type: 'snapshot', id } satisfies ToConnWorker);
        try {
          return { m, s: (await reply) as ConnWorkerSnapshot };
        } catch {
          return { m, s: undefined };
        }
      }),
    );
    for (const { m, s } of answers) {
      if (!s) {
        out.closed += m.connected;
        out.closeCodes['worker died'] = (out.closeCodes['worker died'] ?? 0) + m.connected;
        continue;
      }
      out.open += s.open;
      out.closed += s.closed;
      out.pinged += s.pinged;
      out.pings += s.pings;
      for (const [code, n] of Object.entries(s.closeCodes)) out.closeCodes[code] = (out.closeCodes[code] ?? 0) + n;
    }
    return out;
  }

  /**
   * close has every worker destroy all its sockets at once (in parallel) and exit; workers not
   * gone after `timeoutMs` are SIGKILLed. Resolves with the wall time and how many were killed.
   */
  async close(timeoutMs = 15_000): Promise<{ ms: number; killed: number }> {
    this.closing = true;
    const t0 = performance.now();
    const exited = this.members.map((m) =>
      m.exited ? Promise.resolve() : new Promise<void>((resolve) => m.child.once('exit', () => resolve())),
    );
    for (const m of this.members) {
      if (!m.exited && m.child.connected) m.child.send({ type: 'close' } satisfies ToConnWorker);
    }
    await within(Promise.all(exited), timeoutMs);
    const killed = this.members.filter((m) => !m.exited).length;
    this.kill();
    await within(Promise.all(exited), 2000);
    return { ms: performance.now() - t0, killed };
  }

  /** kill SIGKILLs every worker still running (idempotent). */
  kill(): void {
    this.closing = true;
    for (const m of this.members) if (!m.exited) m.child.kill('SIGKILL');
  }
}
