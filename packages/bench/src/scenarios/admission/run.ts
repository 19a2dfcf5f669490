/**
 * The admission scenario: what a refused connection costs the server compared with an
 * accepted one (incident 5). Bulwark runs with `client.connection_limit` = N. The load
 * generator opens N WebSockets (phase "upgrade"), sends each a connect command with its own
 * HS256 JWT (phase "connect"), and then, with the node full, fires R more upgrade attempts
 * over plain TCP (phase "reject"), each answered by admission with HTTP 503 + Retry-After.
 * Both paths are warmed up first (unmeasured). Server CPU is read per phase from /proc/<pid>/task/{@literal *}/schedstat (nanoseconds of
 * on-CPU time, every thread: far finer than the 10 ms ticks of /proc/<pid>/stat), minus the
 * idle server's CPU over the same wall time.
 *
 * Bulwark only: the raw-ws reference server has no admission.
 *
 * @module
 */
import type { Log } from '../../harness/scenario.js';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { LeanClient } from '../../load/lean-client.js';
import { connectionToken } from '../../harness/jwt.js';
import { readCpuMicros } from '../../harness/proc.js';
import { type ScenarioReport, type TargetOutcome } from '../../harness/report.js';
import { medianOf } from '../../harness/stats.js';
import {
  bulwarkAvailable,
  deepMerge,
  startServer,
  type RunningServer,
  type StartOptions,
} from '../../harness/targets.js';
import { mapLimit, round, sleep } from '../../harness/util.js';

/** AdmissionOptions size the admission scenario. */
export interface AdmissionOptions {
  /** client.connection_limit, and the connections opened before the node is full. */
  accepted: number;
  /** Upgrade attempts fired at the full node. */
  attempts: number;
  /** Connects / attempts in flight at once. */
  concurrency: number;
  /** Runs, each on a fresh server; the result is the field-wise median. */
  repeat: number;
  /** Wall time over which the idle server's CPU is measured (subtracted from each phase). */
  idleMs: number;
}

/** PhaseCost is the server's CPU for one phase. */
export interface PhaseCost {
  /** Operations completed in the phase. */
  count: number;
  wallMs: number;
  /** Server CPU in the phase (all threads), idle CPU subtracted, µs. */
  serverCpuMicros: number;
  /** serverCpuMicros / count. */
  serverCpuMicrosPerOp: number;
  /** The same from /proc/<pid>/stat (10 ms ticks): a coarse cross-check. */
  serverCpuMicrosPerOpTicks: number;
  /** Operations per second of wall time. */
  rate: number;
}

/** AdmissionResult is one run's (or the median) outcome. */
export interface AdmissionResult {
  /** Idle server CPU, µs per second of wall time (timers, metrics sampling). */
  idleCpuMicrosPerSecond: number;
  /** N WebSocket upgrades accepted (HTTP 101 + ws handshake), no protocol command yet. */
  upgrade: PhaseCost;
  /** Connect commands with a JWT on those N sockets. */
  connect: PhaseCost;
  /** Upgrade + connect, per accepted connection. */
  acceptedMicrosPerConnection: number;
  /** R refused upgrades (HTTP 503) at the full node. */
  reject: PhaseCost;
  /** acceptedMicrosPerConnection / reject.serverCpuMicrosPerOp. */
  acceptedToRejectedRatio: number;
  /** Attempts answered with something other than 503 (expected 0). */
  notRefused: number;
  /** Retry-After values seen, lowest and highest, and how many distinct. */
  retryAfter: { min: number; max: number; distinct: number };
  /** Accepted clients closed by the end of the run (expected 0: refusals do not touch them). */
  acceptedClosed: number;
}

/**
 * readCpuNanos is the CPU time process `pid` has used so far, in nanoseconds, summed over its
 * threads from /proc/<pid>/task/<tid>/schedstat (first field: time on CPU). Threads that exited
 * since the last reading drop out, so read it across phases in which the thread set is stable
 * (a Node server's is).
 */
export function readCpuNanos(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
    } catch {
      // The thread exited between readdir and read.
    }
  }
  return total;
}

/** upgradeRequest is the raw HTTP upgrade request a refused attempt sends. */
function upgradeRequest(port: number, path: string): Buffer {
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    'latin1',
  );
}

/**
 * rawAttempt sends one upgrade request over plain TCP and resolves with the response head once
 * the server closed the connection (a refusal closes it; a 101 would not, hence the timeout).
 */
function rawAttempt(port: number, request: Buffer, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let head = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; got: ${head.slice(0, 40)}`));
    }, timeoutMs);
    s.setNoDelay(true);
    s.once('connect', () => s.write(request));
    s.on('data', (d: Buffer) => {
      if (head.length < 512) head += d.toString('latin1');
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.once('close', () => {
      clearTimeout(timer);
      resolve(head);
    });
  });
}

function phase(server: RunningServer, idleNsPerMs: number): { end: (count: number) => PhaseCost } {
  const ns0 = readCpuNanos(server.pid);
  const ticks0 = readCpuMicros(server.pid);
  const t0 = performance.now();
  return {
    end(count: number): PhaseCost {
      const wallMs = performance.now() - t0;
      const cpuMicros = Math.max(0, (readCpuNanos(server.pid) - ns0 - idleNsPerMs * wallMs) / 1000);
      const tickMicros = readCpuMicros(server.pid) - ticks0 - (idleNsPerMs * wallMs) / 1000;
      return {
        count,
        wallMs: round(wallMs, 1),
        serverCpuMicros: Math.round(cpuMicros),
        serverCpuMicrosPerOp: round(cpuMicros / count, 2),
        serverCpuMicrosPerOpTicks: round(tickMicros / count, 1),
        rate: Math.round(count / (wallMs / 1000)),
      };
    },
  };
}

/** runAdmissionOnce measures one fresh server (already started with client.connection_limit = accepted). */
async function runAdmissionOnce(server: RunningServer, opts: AdmissionOptions, log: Log): Promise<AdmissionResult> {
  const n = opts.accepted;
  const tokens = Array.from({ length: n }, (_, i) => connectionToken(`adm-${i}`, server.tokenSecret));
  const clients: LeanClient[] = [];
  const errors: string[] = [];
  try {
    // Warm-up, unmeasured, so neither path is timed while V8 still compiles it: accept and
    // connect a batch, close it (freeing its slots), then later refuse a batch before timing.
    const warm = Math.min(200, n);
    const warmClients = Array.from(
      { length: warm },
      () => new LeanClient({ url: server.wsUrl, protocol: 'centrifugo' }),
    );
    await Promise.all(
      warmClients.map(async (c, i) => {
        await c.open();
        await c.connect(connectionToken(`warm-${i}`, server.tokenSecret));
      }),
    );
    for (const c of warmClients) c.terminate();
    await sleep(500);
    const idle0 = readCpuNanos(server.pid);
    const i0 = performance.now();
    await sleep(opts.idleMs);
    const idleNsPerMs = (readCpuNanos(server.pid) - idle0) / (performance.now() - i0);

    const up = phase(server, idleNsPerMs);
    await mapLimit(
      n,
      opts.concurrency,
      async () => {
        const c = new LeanClient({ url: server.wsUrl, protocol: 'centrifugo' });
        clients.push(c);
        await c.open();
      },
      (_i, err) => errors.push((err as Error).message),
    );
    const upgrade = up.end(n - errors.length);
    if (errors.length) throw new Error(`${errors.length}/${n} upgrades failed; first: ${errors[0]}`);

    const cp = phase(server, idleNsPerMs);
    await mapLimit(
      n,
      opts.concurrency,
      async (i) => {
        await (clients[i] as LeanClient).connect(tokens[i] as string);
      },
      (_i, err) => errors.push((err as Error).message),
    );
    const connect = cp.end(n - errors.length);
    if (errors.length) throw new Error(`${errors.length}/${n} connects failed; first: ${errors[0]}`);
    log(`  ${n} accepted: upgrade ${upgrade.serverCpuMicrosPerOp} µs + connect ${connect.serverCpuMicrosPerOp} µs`);

    const path = new URL(server.wsUrl).pathname;
    const request = upgradeRequest(server.port, path);
    const statuses = new Map<string, number>();
    const retryAfter = new Set<number>();
    await mapLimit(
      Math.min(1000, opts.attempts),
      opts.concurrency,
      async () => void (await rawAttempt(server.port, request)),
      (_i, err) => errors.push((err as Error).message),
    );
    if (errors.length) throw new Error(`${errors.length} warm-up attempts failed; first: ${errors[0]}`);
    const rj = phase(server, idleNsPerMs);
    await mapLimit(
      opts.attempts,
      opts.concurrency,
      async () => {
        const head = await rawAttempt(server.port, request);
        const status = head.slice(9, 12) || 'none';
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        const m = /\r\nRetry-After: (\d+)\r\n/i.exec(head);
        if (m) retryAfter.add(Number(m[1]));
      },
      (_i, err) => errors.push((err as Error).message),
    );
    const reject = rj.end(opts.attempts - errors.length);
    if (errors.length > opts.attempts * 0.01) {
      throw new Error(`${errors.length}/${opts.attempts} attempts failed; first: ${errors[0]}`);
    }
    log(
      `  ${opts.attempts} attempts at the full node: ${[...statuses].map(([s, c]) => `${c}× ${s}`).join(', ')}; ` +
        `${reject.serverCpuMicrosPerOp} µs each`,
    );
    const values = [...retryAfter];
    const accepted = round(upgrade.serverCpuMicrosPerOp + connect.serverCpuMicrosPerOp, 2);
    return {
      idleCpuMicrosPerSecond: Math.round(idleNsPerMs),
      upgrade,
      connect,
      acceptedMicrosPerConnection: accepted,
      reject,
      acceptedToRejectedRatio: round(accepted / reject.serverCpuMicrosPerOp, 1),
      notRefused: opts.attempts - (statuses.get('503') ?? 0),
      retryAfter: {
        min: values.length ? Math.min(...values) : Number.NaN,
        max: values.length ? Math.max(...values) : Number.NaN,
        distinct: values.length,
      },
      acceptedClosed: clients.filter((c) => c.closeCode !== undefined).length,
    };
  } finally {
    for (const c of clients) c.terminate();
  }
}

/**
 * runAdmission runs the scenario `opts.repeat` times, each on a fresh Bulwark started with
 * `start` plus `client.connection_limit = opts.accepted` (and no connection rate limit), and
 * returns the field-wise median as the Bulwark outcome.
 */
export async function runAdmission(
  start: StartOptions,
  opts: AdmissionOptions,
  log: Log,
): Promise<ScenarioReport<AdmissionResult>['results']> {
  if (!bulwarkAvailable(start.bulwarkMain)) return { bulwark: { skipped: 'Bulwark is not built' } };
  const runs: AdmissionResult[] = [];
  for (let rep = 1; rep <= opts.repeat; rep++) {
    const label = opts.repeat > 1 ? `admission / bulwark (run ${rep}/${opts.repeat})` : 'admission / bulwark';
    log(`${label}: starting server`);
    let server: RunningServer | undefined;
    try {
      server = await startServer('bulwark', {
        ...start,
        bulwarkConfig: deepMerge(start.bulwarkConfig ?? {}, {
          client: { connection_limit: opts.accepted, connection_rate_limit: 0 },
        }),
      });
      log(`${label}: server pid ${server.pid} on port ${server.port}`);
      runs.push(await runAdmissionOnce(server, opts, log));
      if (server.exited()) throw new Error('server exited during the run');
    } catch (err) {
      const outcome: TargetOutcome<AdmissionResult> = {
        error: (err as Error).message,
        ...(server ? { serverLog: server.logTail() } : {}),
      };
      log(`${label}: ERROR: ${(err as Error).message}`);
      return { bulwark: outcome };
    } finally {
      await server?.stop();
    }
  }
  return { bulwark: runs.length === 1 ? { result: runs[0] as AdmissionResult } : { result: medianOf(runs), runs } };
}
