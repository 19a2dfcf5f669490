/**
 * Starting and stopping the servers under test as child processes: Bulwark (its CLI with a
 * generated config), the raw-ws reference server, the Socket.IO reference server and the HTTP
 * floor of the api-publish scenario. Each is pinned to a CPU with taskset when asked, polled on
 * GET /ready until it answers 200, and always killed (SIGTERM, then SIGKILL).
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SOCKETIO_WS_PATH, type WireProtocol } from './wire.js';
import { readComm, tasksetAvailable } from './proc.js';
import { sleep } from './util.js';

/** TargetName names a server under test that WebSocket clients are compared on (--target). */
export type TargetName = 'raw' | 'bulwark' | 'socketio';

/**
 * ServerName names every server the bench starts: the targets, and `floor` (the HTTP floor of
 * the api-publish scenario, servers/http-floor-server.ts), which serves no WebSocket, so that
 * --target never names it.
 */
export type ServerName = TargetName | 'floor';

/**
 * parseTargets reads `--target`: one server, `both` (raw and Bulwark: the original pair, kept
 * for compatibility) or `all` (raw, Bulwark and Socket.IO), in the order they run.
 */
export function parseTargets(arg: string): TargetName[] {
  if (arg === 'both') return ['raw', 'bulwark'];
  if (arg === 'all') return ['raw', 'bulwark', 'socketio'];
  if (arg === 'raw' || arg === 'bulwark' || arg === 'socketio') return [arg];
  throw new Error(`--target must be raw, bulwark, socketio, both or all, got "${arg}"`);
}

/** RunningServer is a started, ready server under test. */
export interface RunningServer {
  name: ServerName;
  /** PID of the server's node process (taskset execs node, so it is the child's PID). */
  pid: number;
  port: number;
  /** WebSocket URL clients connect to. */
  wsUrl: string;
  /** Client protocol the server speaks. */
  protocol: WireProtocol;
  /** HMAC secret the server verifies connection tokens with. */
  tokenSecret: string;
  /** HTTP API key (Bulwark only). */
  apiKey?: string;
  /** CPU the server is pinned to, if pinned. */
  pinnedCpu?: number;
  /** Last lines the server wrote (stdout and stderr), for error reports. */
  logTail(): string[];
  /** Whether the process has exited (crash or stop). */
  exited(): boolean;
  /**
   * stop kills the server: SIGTERM, then SIGKILL after `graceMs` (the grace is short on purpose:
   * a graceful drain is not what is measured, and it would only lengthen the run). Idempotent.
   */
  stop(graceMs?: number): Promise<void>;
}

/** The console password of a bench Bulwark started with --console (bench only: it listens on loopback). */
export const BENCH_ADMIN_PASSWORD = 'bench-console-password';

/** StartOptions configure {@link startServer}. */
export interface StartOptions {
  /** CPU to pin the server to with taskset; undefined for no pinning. */
  cpu?: number;
  /** Bulwark's CLI entry (packages/server/dist/src/cli/main.js by default). */
  bulwarkMain?: string;
  /** Bulwark's WebSocket path. */
  wsPath?: string;
  /** How long to wait for readiness. */
  readyTimeoutMs?: number;
  /** Extra Bulwark config, deep-merged over the bench's own (e.g. `{client: {write_delay: "20ms"}}`). */
  bulwarkConfig?: Record<string, unknown>;
  /**
   * Bulwark only: `bulwark start --workers N` (needs the Redis engine in bulwarkConfig). With
   * N > 1 the server is not pinned: its workers may use every CPU, the load generator's too.
   */
  workers?: number;
  /**
   * HMAC secret for connection tokens and HTTP API key; random when absent. Several Bulwark
   * processes of one run (on a shared Redis) must be given the same pair.
   */
  tokenSecret?: string;
  apiKey?: string;
  /** --console: an operator polls the console and scrapes /metrics every second during each run. */
  console?: boolean;
}

/** deepMerge returns `base` with `extra` merged in; objects merge, everything else replaces. */
export function deepMerge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const cur = out[k];
    const bothObjects = [cur, v].every((x) => typeof x === 'object' && x !== null && !Array.isArray(x));
    out[k] = bothObjects ? deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/** defaultBulwarkMain is where the server workspace's build puts Bulwark's CLI. */
export const defaultBulwarkMain = path.resolve(here, '../../../../server/dist/src/cli/main.js');
const rawServerMain = path.resolve(here, '../servers/raw-ws-server.js');
/** Preloaded into Bulwark so it exits with the bench (see exit-with-parent.ts). */
const exitWithParent = path.resolve(here, '../servers/exit-with-parent.js');
const socketioServerMain = path.resolve(here, '../servers/socketio-server.js');
const floorServerMain = path.resolve(here, '../servers/http-floor-server.js');

/** Every child we started and have not yet seen exit: killed on any way out of the process. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** killAllServers SIGKILLs every server child still running (for signal handlers). */
export function killAllServers(): void {
  for (const child of live) child.kill('SIGKILL');
}

/** freePort asks the kernel for a free loopback TCP port (bind to 0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function httpStatus(url: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** bulwarkAvailable reports whether Bulwark's built CLI exists at `main`. */
export function bulwarkAvailable(main = defaultBulwarkMain): boolean {
  return existsSync(main);
}

/** startServer starts target `name` on a free loopback port and waits until it is ready. */
export async function startServer(name: ServerName, opts: StartOptions = {}): Promise<RunningServer> {
  const port = await freePort();
  const tokenSecret = opts.tokenSecret ?? randomBytes(32).toString('hex');
  const apiKey = opts.apiKey ?? randomBytes(16).toString('hex');
  let tmpDir: string | undefined;
  let args: string[];
  if (name === 'bulwark') {
    const main = opts.bulwarkMain ?? defaultBulwarkMain;
    if (!existsSync(main)) throw new Error(`Bulwark is not built: ${main} does not exist`);
    tmpDir = mkdtempSync(path.join(os.tmpdir(), 'bulwark-bench-'));
    const configFile = path.join(tmpDir, 'config.json');
    const config = deepMerge(
      {
        http_server: { address: '127.0.0.1' },
        client: { token: { hmac_secret_key: tokenSecret }, channel_limit: 128 },
        http_api: { key: apiKey },
        log: { level: 'warn' },
        channel: {
          // allow_tags_filter: fanout --tags-filter (a filter costs nothing to subscribers without one).
          namespaces: [
            {
              name: 'bench',
              allow_subscribe_for_client: true,
              allow_publish_for_client: true,
              allow_tags_filter: true,
            },
          ],
        },
        // The HTTP-streaming and SSE load clients (--format http_stream, sse) need them on.
        http_stream: { enabled: true },
        sse: { enabled: true },
        // The bench publisher is one connection sending hundreds of publications per second, as
        // a game backend would: lift the per-client publish limits that protect against players.
        protection: { rate_limit: { connection: { publish: { rate: 0 } }, user: { publish: { rate: 0 } } } },
        // --console logs in to it; off, it is not served at all.
        admin: opts.console
          ? { enabled: true, password: BENCH_ADMIN_PASSWORD, secret: randomBytes(32).toString('hex') }
          : { enabled: false },
      },
      opts.bulwarkConfig ?? {},
    );
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    args = ['--import', exitWithParent, main, 'start', '--config', configFile, '--port', String(port)];
    if ((opts.workers ?? 1) > 1) args.push('--workers', String(opts.workers));
  } else if (name === 'floor') {
    args = [floorServerMain, '--port', String(port), '--watch-stdin'];
  } else {
    const main = name === 'socketio' ? socketioServerMain : rawServerMain;
    args = [main, '--port', String(port), '--jwt-secret', tokenSecret, '--watch-stdin'];
  }
  const pin = opts.cpu !== undefined && (opts.workers ?? 1) <= 1 && tasksetAvailable();
  const cmd = pin ? 'taskset' : process.execPath;
  const argv = pin ? ['-c', String(opts.cpu), process.execPath, ...args] : args;
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: 'production' } });
  live.add(child);

  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      tail.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
      if (tail.length > 40) tail.shift();
    }
  };
  // Always drain the pipes: a child blocked on a full stdout pipe would skew every number.
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.stdin?.on('error', () => undefined);
  let exitedFlag = false;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitedFlag = true;
      live.delete(child);
      tail.push(`[process exited: code=${code} signal=${signal}]`);
      resolve();
    });
  });
  child.once('error', (err) => {
    tail.push(`[spawn error: ${err.message}]`);
  });

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 1000): Promise<void> => {
    stopping ??= (async () => {
      if (!exitedFlag) {
        child.kill('SIGTERM');
        await Promise.race([exitedPromise, sleep(graceMs)]);
        if (!exitedFlag) {
          child.kill('SIGKILL');
          await Promise.race([exitedPromise, sleep(2000)]);
        }
      }
      child.stdin?.destroy();
      if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
    })();
    return stopping;
  };

  try {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
    const readyUrl = `http://127.0.0.1:${port}/ready`;
    for (;;) {
      if (exitedFlag) throw new Error(`${name} exited before becoming ready`);
      const workers = name === 'bulwark' ? (opts.workers ?? 1) : 1;
      // With --workers, ready means every worker listens: wait until info lists them all.
      if (
        (await httpStatus(readyUrl, 1000)) === 200 &&
        (workers === 1 || (await nodesListed(port, apiKey)) >= workers)
      ) {
        break;
      }
      if (Date.now() > deadline) throw new Error(`${name} not ready after ${opts.readyTimeoutMs ?? 20_000} ms`);
      await sleep(50);
    }
    const pid = child.pid;
    if (pid === undefined) throw new Error(`${name}: no pid`);
    const comm = readComm(pid);
    // taskset execs the command, so the PID becomes node's; if it is still taskset's, every
    // /proc reading would measure the wrong process.
    if (comm === 'taskset') {
      throw new Error(`${name}: pid ${pid} is still taskset, not node; /proc readings would be wrong`);
    }
    const wsPath =
      name === 'bulwark' ? (opts.wsPath ?? '/connection/websocket') : name === 'socketio' ? SOCKETIO_WS_PATH : '/';
    return {
      name,
      pid,
      port,
      wsUrl: `ws://127.0.0.1:${port}${wsPath}`,
      // The floor speaks no WebSocket: its wsUrl and protocol are never used.
      protocol: name === 'bulwark' ? 'centrifugo' : name === 'floor' ? 'raw' : name,
      tokenSecret,
      apiKey: name === 'bulwark' ? apiKey : undefined,
      pinnedCpu: pin ? opts.cpu : undefined,
      logTail: () => [...tail],
      exited: () => exitedFlag,
      stop,
    };
  } catch (err) {
    await stop(500);
    const detail = tail.length ? `\n  server output:\n    ${tail.slice(-15).join('\n    ')}` : '';
    throw new Error(`${(err as Error).message}${detail}`, { cause: err });
  }
}

/** nodesListed is how many nodes the server's `info` lists (every worker, once they all report). */
async function nodesListed(port: number, apiKey: string): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/api/info`, {
      method: 'POST',
      headers: { 'x-api-key': apiKey },
      body: '{}',
      signal: AbortSignal.timeout(1000),
    });
    const body = (await res.json()) as { result?: { nodes?: unknown[] } };
    return body.result?.nodes?.length ?? 0;
  } catch {
    return 0;
  }
}

/** ServerRunError is a run that failed on a server, with the server's last output lines. */
export class ServerRunError extends Error {
  constructor(
    message: string,
    readonly serverLog: string[],
  ) {
    super(message);
    this.name = 'ServerRunError';
  }
}

/**
 * onFreshBulwark starts a Bulwark with `start`'s options and `config` deep-merged over its
 * `bulwarkConfig` (the scenario's settings win over the user's), runs `fn` on it, and always
 * stops it. A failure, or the server exiting during the run, rejects with a
 * {@link ServerRunError} carrying the server's output.
 */
export async function onFreshBulwark<R>(
  start: StartOptions,
  config: Record<string, unknown>,
  label: string,
  log: (msg: string) => void,
  fn: (server: RunningServer) => Promise<R>,
): Promise<R> {
  log(`${label}: starting server`);
  const server = await startServer('bulwark', {
    ...start,
    bulwarkConfig: deepMerge(start.bulwarkConfig ?? {}, config),
  });
  log(`${label}: server pid ${server.pid} on port ${server.port}`);
  try {
    const result = await fn(server);
    if (server.exited()) throw new Error('server exited during the run');
    return result;
  } catch (err) {
    throw new ServerRunError(`${label}: ${(err as Error).message}`, server.logTail());
  } finally {
    await server.stop();
  }
}
