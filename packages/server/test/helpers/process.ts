/**
 * Test helpers for real `bulwark` processes: write a config file, run `bulwark start` from the
 * built CLI (dist/src/cli/main.js) and wait for its "listening on" banner, call its server API,
 * and stop it with SIGTERM as an orchestrator would.
 *
 * Every process started here that still runs when its test ends (or, failing that, when this
 * test process exits) is killed by pid, its forked workers (`--workers`) first, so a failed
 * run leaves none behind.
 */
import { spawn, type ChildProcess, type ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import type { ConfigInput } from '../../src/config/schema.js';
import { checkLine } from './log-check.js';
import { withTimeout, type ApiResponse } from './server.js';

/** cliPath is the built CLI entry point the processes run. */
export const cliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Processes started here that have not exited yet. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) killTree(proc);
});

/** Exit is how a process ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** BulwarkProcess is a running `bulwark start`. */
export interface BulwarkProcess {
  readonly pid: number;
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly httpUrl: string;
  /** ws://127.0.0.1:<port>/connection/websocket */
  readonly url: string;
  /** Everything written to stderr so far. */
  readonly stderr: string;
  /** Everything written to stdout so far (the JSON log). */
  readonly stdout: string;
  /** Resolves when the process exited. */
  readonly exited: Promise<Exit>;
  /** childPids lists the pids of the processes it forked (its workers) now, read from /proc. */
  childPids(): number[];
  /**
   * stop sends SIGTERM (to this process only: a primary stops its workers itself) and resolves
   * with its exit. Past `ms` it kills the process and its workers and rejects.
   */
  stop(ms?: number): Promise<Exit>;
  /** kill sends SIGKILL to the process and to every process it forked; idempotent. */
  kill(): Promise<void>;
}

/** ConfigFile is a config written to a temporary directory. */
export interface ConfigFile {
  readonly path: string;
  /** remove deletes the file and its directory. */
  remove(): void;
}

/** writeConfigFile writes `config` as JSON to a new temporary directory (mode 0600: it holds secrets). */
export function writeConfigFile(config: ConfigInput): ConfigFile {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-proc-'));
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify(config, null, 2), { mode: 0o600 });
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An environment without BULWARK_* (each process reads only its config file) nor node:test's marker. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('BULWARK_') && k !== 'NODE_TEST_CONTEXT' && k !== 'NODE_OPTIONS') env[k] = v;
  }
  return env;
}

/**
 * killTree SIGKILLs a running process's children (its workers), then the process. Only while
 * it runs: once it exited, its pid and its children's may belong to someone else.
 */
function killTree(proc: ChildProcess): void {
  const pid = proc.pid;
  if (pid === undefined || !running.has(proc)) return;
  for (const child of childPidsOf(pid)) {
    try {
      process.kill(child, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  proc.kill('SIGKILL');
}

/** childPidsOf lists the processes whose parent is `pid` (Linux /proc; empty elsewhere). */
export function childPidsOf(pid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid …; comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** isAlive tells whether a process with this pid exists (a zombie counts). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** StartOptions tune {@link startBulwark}. */
export interface StartOptions {
  /** -p: the HTTP port; 0 (default) lets the OS choose. */
  port?: number;
  /** More arguments after `start -c <file> -p <port>`, e.g. `['--workers', '2']`. */
  args?: string[];
  /**
   * How long to wait for the banner (default 30 s: a process starting beside other test files
   * on a busy machine wrote nothing within 10 s).
   */
  timeoutMs?: number;
  /** Start under this open-file limit, soft and hard (`ulimit -n`, through /bin/sh). */
  nofile?: number;
}

/**
 * startBulwark runs `node dist/src/cli/main.js start -c <configFile> -p <port>` and resolves
 * once its banner ("listening on http://HOST:PORT") is on stderr. Rejects, with what the
 * process wrote, when it exits first or the banner does not come in time. `t.after` (when
 * given) kills it when the test ends.
 */
export async function startBulwark(
  configFile: string,
  opts: StartOptions = {},
  t?: { after(fn: () => Promise<void>): void },
): Promise<BulwarkProcess> {
  const cli = spawnCli(['start', '-c', configFile, '-p', String(opts.port ?? 0), ...(opts.args ?? [])], opts.nofile);
  const { proc, exited } = cli;
  const pid = proc.pid ?? 0;
  const kill = async (): Promise<void> => {
    if (!running.has(proc)) return;
    killTree(proc);
    await exited;
  };
  t?.after(kill);

  let port: number;
  try {
    port = await withTimeout(
      new Promise<number>((resolve, reject) => {
        const check = (): void => {
          const m = /listening on https?:\/\/[^\s:]+:(\d+)/.exec(cli.stderr);
          if (m) resolve(Number(m[1]));
        };
        proc.stderr.on('data', check);
        void exited.then((e) => reject(new Error(`bulwark exited (${e.signal ?? `code ${e.code}`}) before listening`)));
      }),
      opts.timeoutMs ?? 30_000,
      'bulwark banner',
    );
  } catch (err) {
    await kill();
    throw new Error(`${(err as Error).message}\nstderr:\n${cli.stderr}\nstdout:\n${cli.stdout.slice(0, 4000)}`);
  }

  return {
    pid,
    port,
    httpUrl: `http://127.0.0.1:${port}`,
    url: `ws://127.0.0.1:${port}/connection/websocket`,
    get stderr() {
      return cli.stderr;
    },
    get stdout() {
      return cli.stdout;
    },
    exited,
    childPids: () => (running.has(proc) ? childPidsOf(pid) : []),
    async stop(ms = 10_000) {
      proc.kill('SIGTERM');
      try {
        return await withTimeout(exited, ms, `bulwark pid ${pid} to exit after SIGTERM`);
      } catch (err) {
        await kill();
        throw err;
      }
    },
    kill,
  };
}

/** runBulwark runs the CLI with `args` to completion (killed after `ms`) and returns its exit and output. */
export async function runBulwark(args: string[], ms = 10_000): Promise<{ exit: Exit; stderr: string; stdout: string }> {
  const cli = spawnCli(args);
  try {
    return {
      exit: await withTimeout(cli.exited, ms, `bulwark ${args.join(' ')}`),
      stderr: cli.stderr,
      stdout: cli.stdout,
    };
  } finally {
    killTree(cli.proc);
  }
}

/** SpawnedCli is a CLI process with its output collected so far. */
interface SpawnedCli {
  readonly proc: ChildProcessByStdio<null, Readable, Readable>;
  readonly stderr: string;
  readonly stdout: string;
  readonly exited: Promise<Exit>;
}

/**
 * spawnCli runs `node <cli> ...args` with a clean environment, collecting its output; tracked
 * until it exits. With `nofile`, a shell sets the open-file limit and execs node (same pid).
 */
function spawnCli(args: string[], nofile?: number): SpawnedCli {
  const options = { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'] };
  const proc =
    nofile === undefined
      ? spawn(process.execPath, [cliPath, ...args], options)
      : spawn('/bin/sh', ['-c', `ulimit -n ${nofile} && exec "$0" "$@"`, process.execPath, cliPath, ...args], options);
  running.add(proc);
  const out = { stderr: '', stdout: '' };
  proc.stderr.setEncoding('utf8').on('data', (s: string) => (out.stderr += s));
  proc.stdout.setEncoding('utf8').on('data', (s: string) => (out.stdout += s));
  const exited = new Promise<Exit>((resolve) => {
    proc.once('exit', (code, signal) => {
      running.delete(proc);
      // The JSON log lines on stdout must be clean too (the CLI's own messages are not JSON).
      for (const line of out.stdout.split('\n')) if (line.startsWith('{')) checkLine(line);
      resolve({ code, signal });
    });
  });
  return {
    proc,
    exited,
    get stderr() {
      return out.stderr;
    },
    get stdout() {
      return out.stdout;
    },
  };
}

/** callApi POSTs `body` to `<httpUrl>/api/<method>` with the API key and returns the status and parsed answer. */
export async function callApi(
  httpUrl: string,
  apiKey: string,
  method: string,
  body: unknown = {},
): Promise<ApiResponse> {
  const res = await fetch(`${httpUrl}/api/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep the text: a test will say what it expected
  }
  return { status: res.status, body: parsed };
}
