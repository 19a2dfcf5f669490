/**
 * A private PostgreSQL server for tests that stop, crash and restart it (the shared one on
 * 5432 serves everyone else and is never touched): its own data directory in a temporary
 * folder, a free port on 127.0.0.1, no Unix socket, `fsync=on` and `synchronous_commit=on`
 * (an acknowledged commit is on disk), trust authentication for `postgres`.
 *
 * The postmaster runs as a direct child of the test process (spawned with the `postgres` OS
 * user's uid when the test runs as root: initdb and postgres refuse root), not through pg_ctl,
 * so the test reaps it and sees it exit: `kill()` is a real `kill -9` of the postmaster, and
 * `restart()` is what `pg_ctl restart -m fast` does (SIGINT: fast shutdown, then a new
 * postmaster). initdb runs once per test process; each server copies that template.
 *
 * Every server still running when the test process exits (even on a crash) is SIGKILLed with
 * its backends and its directory removed; a test process killed by a signal takes its
 * postmasters with it (setpriv --pdeathsig), so a failed run leaves no postgres behind.
 *
 * @module
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { childPidsOf } from './process.js';
import { freePort } from './redis.js';

/** Where the PostgreSQL binaries are (BULWARK_TEST_PG_BIN overrides). */
export const pgBinDir = process.env.BULWARK_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** The OS user that runs initdb and postgres when the test runs as root. */
const OS_USER = 'postgres';

/** RunAs is the uid/gid a spawned PostgreSQL binary runs with (none: as the test itself). */
type RunAs = { uid: number; gid: number } | Record<string, never>;

/** runAs resolves who runs the binaries: the `postgres` user under root, else the test's user. */
function runAs(): RunAs | string {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string): number => Number(spawnSync('id', [flag, OS_USER], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  if (!Number.isInteger(uid) || uid <= 0 || !Number.isInteger(gid)) {
    return `the test runs as root and there is no "${OS_USER}" OS user to run initdb and postgres as`;
  }
  return { uid, gid };
}

/** privatePostgresMissing says why a private PostgreSQL cannot run here, or undefined when it can. */
export function privatePostgresMissing(): string | undefined {
  for (const bin of ['initdb', 'postgres']) {
    if (!existsSync(join(pgBinDir, bin))) return `${join(pgBinDir, bin)} is missing (set BULWARK_TEST_PG_BIN)`;
  }
  const who = runAs();
  return typeof who === 'string' ? who : undefined;
}

/** Servers whose postmaster runs now, killed with their backends when this process exits. */
const running = new Set<PrivatePostgres>();
/** Directories to remove when this process exits (the template and every server's). */
const dirs = new Set<string>();
process.once('exit', () => {
  for (const server of running) server.killNow();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** newDir makes a temporary directory the binaries' user owns (it must be able to enter it). */
function newDir(name: string, who: RunAs): string {
  const dir = mkdtempSync(join(tmpdir(), name));
  dirs.add(dir);
  if ('uid' in who) chownSync(dir, who.uid, who.gid);
  return dir;
}

function sh(cmd: string, args: string[], who: RunAs): void {
  const r = spawnSync(cmd, args, { ...who, encoding: 'utf8', timeout: 60_000, env: { ...process.env, LC_ALL: 'C' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.error?.message ?? ''}${r.stderr}`);
}

/** The initdb'd data directory every server of this process copies (initdb once). */
let template: string | undefined;

function templateDir(who: RunAs): string {
  if (template !== undefined) return template;
  const data = join(newDir('bulwark-pg-template-', who), 'data');
  // --no-sync: the template is copied, never crashed; the copies' own writes are fsynced.
  sh(
    join(pgBinDir, 'initdb'),
    ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--locale=C'],
    who,
  );
  template = data;
  return data;
}

/** PrivatePostgres is one private server; see the module comment. */
export class PrivatePostgres {
  #proc: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly who: RunAs,
  ) {}

  /** start makes a server from the template on a free port and waits until it answers. */
  static async start(): Promise<PrivatePostgres> {
    const who = runAs();
    if (typeof who === 'string') throw new Error(who);
    const dir = newDir('bulwark-pg-', who);
    sh('cp', ['-a', templateDir(who), join(dir, 'data')], who);
    const server = new PrivatePostgres(await freePort(), dir, who);
    await server.start();
    return server;
  }

  /** url is the DSN of its `postgres` database. */
  get url(): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** pid is the postmaster's pid while it runs. */
  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** log is what the server wrote to its log so far. */
  log(): string {
    try {
      return readFileSync(join(this.dir, 'postgres.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /**
   * start runs the postmaster (again) and waits until it accepts queries: after a crash that
   * includes its WAL replay. A start refused because the crashed server's backends still hold
   * its shared memory is tried again.
   */
  async start(): Promise<void> {
    if (this.#proc !== undefined) return;
    const deadline = Date.now() + 15_000;
    for (;;) {
      const proc = this.#spawn();
      for (;;) {
        if (this.#proc !== proc) break; // exited at start
        if (await answers(this.url)) return;
        if (Date.now() > deadline) {
          this.killNow();
          throw new Error(
            `private PostgreSQL on port ${this.port} did not start within 15 s:\n${this.log().slice(-2000)}`,
          );
        }
        await sleep(25);
      }
      if (Date.now() > deadline) {
        throw new Error(`private PostgreSQL on port ${this.port} exited at start:\n${this.log().slice(-2000)}`);
      }
      await sleep(100);
    }
  }

  /** stop shuts it down fast (SIGINT, as `pg_ctl stop -m fast`: sessions ended, a checkpoint) and waits. */
  async stop(): Promise<void> {
    const proc = this.#proc;
    if (proc === undefined) return;
    const exited = this.#exited;
    proc.kill('SIGINT');
    await exited;
  }

  /** restart is `pg_ctl restart -m fast`: stop, then start on the same port and directory. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /**
   * kill sends SIGKILL to the postmaster (a crash) and waits until it and its backends are
   * gone: the backends notice their postmaster died and exit; any still there after 5 s are
   * killed too. The next start replays the WAL.
   */
  async kill(): Promise<void> {
    const proc = this.#proc;
    if (proc?.pid === undefined) return;
    const backends = childPidsOf(proc.pid);
    const exited = this.#exited;
    proc.kill('SIGKILL');
    await exited;
    const deadline = Date.now() + 5000;
    while (backends.some(alive)) {
      if (Date.now() > deadline) for (const pid of backends.filter(alive)) signal(pid, 'SIGKILL');
      await sleep(20);
    }
  }

  /** processes lists the pids of its postmaster and backends that run now (none once destroyed). */
  processes(): number[] {
    const pid = this.#proc?.pid;
    return pid === undefined ? [] : [pid, ...childPidsOf(pid)];
  }

  /** destroy kills it (postmaster and backends) and removes its directory. */
  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
    dirs.delete(this.dir);
  }

  /** killNow SIGKILLs the backends and the postmaster at once, without waiting (process exit). */
  killNow(): void {
    const pid = this.#proc?.pid;
    if (pid === undefined) return;
    for (const child of childPidsOf(pid)) signal(child, 'SIGKILL');
    signal(pid, 'SIGKILL');
  }

  #spawn(): ChildProcess {
    const log = openSync(join(this.dir, 'postgres.log'), 'a');
    const settings = {
      listen_addresses: '127.0.0.1',
      port: String(this.port),
      unix_socket_directories: '',
      fsync: 'on',
      synchronous_commit: 'on',
      full_page_writes: 'on',
      max_connections: '60',
      shared_buffers: '16MB',
    };
    const args = ['-D', join(this.dir, 'data'), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
    const postgres = join(pgBinDir, 'postgres');
    const env = { ...process.env, LC_ALL: 'C' };
    // Through setpriv (which execs it: the pid stays the postmaster's), the postmaster gets
    // SIGKILL when this process dies in any way, a signal included, where the exit hook
    // does not run; its backends follow it.
    const proc = setprivAvailable()
      ? spawn('setpriv', [...setprivUser(this.who), '--pdeathsig', 'KILL', '--', postgres, ...args], {
          stdio: ['ignore', log, log],
          env,
        })
      : spawn(postgres, args, { ...this.who, stdio: ['ignore', log, log], env });
    closeSync(log);
    this.#proc = proc;
    running.add(this);
    this.#exited = new Promise((resolve) => {
      proc.once('exit', () => {
        if (this.#proc === proc) {
          this.#proc = undefined;
          running.delete(this);
        }
        resolve();
      });
    });
    return proc;
  }
}

let setprivOk: boolean | undefined;

/** setprivAvailable tells whether util-linux's `setpriv` can run here. */
function setprivAvailable(): boolean {
  setprivOk ??= spawnSync('setpriv', ['--version']).status === 0;
  return setprivOk;
}

/** setprivUser is setpriv's arguments to run as `who` (none: as this process's user). */
function setprivUser(who: RunAs): string[] {
  return 'uid' in who ? [`--reuid=${who.uid}`, `--regid=${who.gid}`, '--clear-groups'] : [];
}

/** answers tells whether PostgreSQL at `url` runs a query now. */
async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** alive tells whether a process runs (a zombie, which holds nothing any more, does not count). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
