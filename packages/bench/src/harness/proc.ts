/**
 * Reading another process's resource use from Linux /proc, CPU pinning with taskset, and a
 * description of the machine for the results file.
 *
 * @module
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { round } from './util.js';

let clkTck: number | undefined;

/** clockTicksPerSecond is the kernel's USER_HZ (`getconf CLK_TCK`, almost always 100). */
export function clockTicksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      clkTck = Number.isFinite(n) && n > 0 ? n : 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/**
 * readCpuMicros returns the CPU time (user + system, all threads) process `pid` has used so
 * far, in microseconds, from fields 14 and 15 of /proc/<pid>/stat. The resolution is one
 * clock tick (10 ms at USER_HZ=100), so measure over windows of seconds, not milliseconds.
 */
export function readCpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // Field 2 (comm) is in parentheses and may contain spaces or ')': split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field 14 (utime) is rest[11] and field 15 (stime) rest[12].
  const ticks = Number(rest[11]) + Number(rest[12]);
  if (!Number.isFinite(ticks)) throw new Error(`cannot parse /proc/${pid}/stat`);
  return (ticks * 1e6) / clockTicksPerSecond();
}

/**
 * readTreeCpuMicros is {@link readCpuMicros} of `pid` plus all its descendants (a Bulwark
 * started with --workers does its work in child processes). Children that exit between the
 * two readings of a measurement drop out of the sum: measure with the tree stable.
 */
export function readTreeCpuMicros(pid: number): number {
  let total = readCpuMicros(pid);
  for (const child of childPids(pid)) total += readTreeCpuMicros(child);
  return total;
}

/**
 * readTreeRssBytes is {@link readRssBytes} of `pid` plus all its descendants: the memory of a
 * Bulwark started with --workers (primary + workers). Pages shared between the processes (the
 * node binary's text) are counted once per process, so compare sums of the same tree (before
 * vs after), not a sum with a single process. A process that exits meanwhile counts 0.
 */
export function readTreeRssBytes(pid: number): number {
  let total = 0;
  for (const p of treePids(pid)) {
    try {
      total += readRssBytes(p);
    } catch {
      // exited between listing and reading
    }
  }
  return total;
}

/** treePids lists `pid` and all its descendants (depth first, `pid` first). */
export function treePids(pid: number): number[] {
  const out = [pid];
  for (const child of childPids(pid)) out.push(...treePids(child));
  return out;
}

/**
 * readOpenFileLimits reads the open-file limits (soft and hard) of process `pid` ("self" for
 * this one) from /proc/<pid>/limits; undefined where /proc lacks them (not Linux).
 * Infinity stands for "unlimited".
 */
export function readOpenFileLimits(pid: number | 'self' = 'self'): { soft: number; hard: number } | undefined {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'latin1'));
    if (!m) return undefined;
    const num = (v: string) => (v === 'unlimited' ? Number.POSITIVE_INFINITY : Number(v));
    return { soft: num(m[1] as string), hard: num(m[2] as string) };
  } catch {
    return undefined;
  }
}

/** childPids lists the direct children of `pid` (from every thread's children file). */
function childPids(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1').trim();
      if (text !== '') for (const c of text.split(' ')) out.push(Number(c));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** readRssBytes returns the resident set size of process `pid` (VmRSS in /proc/<pid>/status). */
export function readRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/**
 * readStartTicks is when process `pid` started (field 22 of /proc/<pid>/stat, clock ticks since
 * boot), or undefined if there is no such process. A pid with its start time names one process
 * for good (a pid alone may be reused by an unrelated process once the first one exits).
 */
export function readStartTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // rest[0] is field 3 (state), so field 22 (starttime) is rest[19].
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

/** readComm returns the command name of process `pid`, or undefined if it is gone. */
export function readComm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'latin1').trim();
  } catch {
    return undefined;
  }
}

let tasksetOk: boolean | undefined;

/** tasksetAvailable reports whether the `taskset` binary (util-linux) can be run. */
export function tasksetAvailable(): boolean {
  if (tasksetOk === undefined) {
    const r = spawnSync('taskset', ['-p', String(process.pid)], { encoding: 'utf8' });
    tasksetOk = r.status === 0;
  }
  return tasksetOk;
}

/**
 * pinSelf pins every thread of this process (main, libuv pool, V8 helpers: `-a`) to `cpu`;
 * threads created later inherit it. Returns false when taskset is missing or refuses.
 */
export function pinSelf(cpu: number): boolean {
  return pinProcess(process.pid, cpu);
}

/**
 * pinProcess pins every thread of process `pid` to `cpus` (a taskset list: "1", "1-3"), e.g. a
 * load-generator worker to the CPUs the server does not have. Returns false when taskset is
 * missing or refuses.
 */
export function pinProcess(pid: number, cpus: number | string): boolean {
  if (!tasksetAvailable()) return false;
  const r = spawnSync('taskset', ['-a', '-c', '-p', String(cpus), String(pid)], { encoding: 'utf8' });
  return r.status === 0;
}

/** MachineInfo describes where a benchmark ran. */
export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  node: string;
  platform: string;
  kernel: string;
  memoryGiB: number;
  clockTicksPerSecond: number;
}

/** machineInfo describes this machine (nproc, /proc/cpuinfo model name, node version). */
export function machineInfo(): MachineInfo {
  let model = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) model = m[1].trim();
  } catch {
    // Not Linux: keep os.cpus()'s answer.
  }
  return {
    cpus: os.availableParallelism(),
    cpuModel: model,
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    kernel: os.release(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    clockTicksPerSecond: clockTicksPerSecond(),
  };
}

/**
 * KernelNetCounters are machine-wide TCP/loopback counters; on an otherwise idle machine they
 * are this benchmark's. On loopback nearly all retransmissions are tail-loss probes: the
 * receiver (the load generator) was slow to ACK, not a lost segment. Zero-window events mean
 * the load generator fell behind reading. Real drops (softnet, backlog) would add ≥ 200 ms RTO
 * stalls to the latency tail.
 */
export interface KernelNetCounters {
  /** Tcp RetransSegs (/proc/net/snmp). */
  tcpRetransSegs: number;
  /** TcpExt TCPLossProbes: retransmissions sent as tail-loss probes (spurious on loopback). */
  tcpLossProbes: number;
  /** TcpExt TCPToZeroWindowAdv: a receiver's buffer filled up (it was not reading fast enough). */
  zeroWindow: number;
  /** TcpExt ListenOverflows + ListenDrops (/proc/net/netstat): refused or dropped connects. */
  listenDrops: number;
  /** TcpExt TCPBacklogDrop: segments dropped because a socket's backlog was full. */
  backlogDrops: number;
  /** Packets dropped at the per-CPU input queue (netdev_max_backlog), /proc/net/softnet_stat. */
  softnetDrops: number;
}

function snmpTable(text: string, prefix: string): Map<string, number> {
  const lines = text.split('\n').filter((l) => l.startsWith(`${prefix}:`));
  const out = new Map<string, number>();
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const keys = (lines[i] as string).split(/\s+/).slice(1);
    const vals = (lines[i + 1] as string).split(/\s+/).slice(1);
    keys.forEach((k, j) => out.set(k, Number(vals[j])));
  }
  return out;
}

/** readKernelNetCounters reads {@link KernelNetCounters}; zeros where /proc lacks them. */
export function readKernelNetCounters(): KernelNetCounters {
  const read = (file: string) => {
    try {
      return readFileSync(file, 'latin1');
    } catch {
      return '';
    }
  };
  const tcp = snmpTable(read('/proc/net/snmp'), 'Tcp');
  const ext = snmpTable(read('/proc/net/netstat'), 'TcpExt');
  let softnetDrops = 0;
  for (const line of read('/proc/net/softnet_stat').split('\n')) {
    const col = line.trim().split(/\s+/)[1];
    if (col) softnetDrops += parseInt(col, 16) || 0;
  }
  return {
    tcpRetransSegs: tcp.get('RetransSegs') ?? 0,
    tcpLossProbes: ext.get('TCPLossProbes') ?? 0,
    zeroWindow: ext.get('TCPToZeroWindowAdv') ?? 0,
    listenDrops: (ext.get('ListenOverflows') ?? 0) + (ext.get('ListenDrops') ?? 0),
    backlogDrops: ext.get('TCPBacklogDrop') ?? 0,
    softnetDrops,
  };
}

/** diffKernelNetCounters returns `after − before` field by field. */
export function diffKernelNetCounters(before: KernelNetCounters, after: KernelNetCounters): KernelNetCounters {
  return {
    tcpRetransSegs: after.tcpRetransSegs - before.tcpRetransSegs,
    tcpLossProbes: after.tcpLossProbes - before.tcpLossProbes,
    zeroWindow: after.zeroWindow - before.zeroWindow,
    listenDrops: after.listenDrops - before.listenDrops,
    backlogDrops: after.backlogDrops - before.backlogDrops,
    softnetDrops: after.softnetDrops - before.softnetDrops,
  };
}

/** CpuReading is the CPU use of the server and of this load generator over a window. */
export interface CpuReading {
  /** Server CPU, % of one core (10 ms ticks: read over seconds). */
  serverCpuPercent: number;
  /** This process's CPU, % of one core (≥ ~90 % means the load generator is the bottleneck). */
  loadgenCpuPercent: number;
  /** This process's event-loop delay: stalls here delay every reply and delivery behind them. */
  loadgenLoopDelayMs: { p99: number; max: number };
}

/** watchCpu starts measuring server `pid` and this process; the returned function ends the window. */
export function watchCpu(pid: number): () => CpuReading {
  const cpu0 = readCpuMicros(pid);
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  return () => {
    const wallMicros = (performance.now() - t0) * 1000;
    const own = process.cpuUsage(own0);
    loop.disable();
    return {
      serverCpuPercent: round(((readCpuMicros(pid) - cpu0) / wallMicros) * 100, 1),
      loadgenCpuPercent: round(((own.user + own.system) / wallMicros) * 100, 1),
      loadgenLoopDelayMs: { p99: round(loop.percentile(99) / 1e6, 1), max: round(loop.max / 1e6, 1) },
    };
  };
}
