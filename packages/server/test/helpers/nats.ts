/**
 * Test helpers for the NATS broker: gate suites on a reachable NATS, give each run its own
 * subject prefix, and run a private `nats-server` that a test may kill and start again.
 *
 * The shared NATS (`BULWARK_TEST_NATS_URL`, default `nats://127.0.0.1:4222`) is used by other
 * things: tests publish and subscribe only under their random prefix, and core NATS keeps
 * nothing, so there is nothing to clean up afterwards but connections.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { availabilityTimeoutMs, describeIf, freePort } from './redis.js';

/** natsUrl is the shared NATS the suites run against. */
export const natsUrl = process.env.BULWARK_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/** natsAvailable returns undefined when NATS at `url` answers within 5 s, else why not. */
export async function natsAvailable(url = natsUrl): Promise<string | undefined> {
  try {
    const nc = await connect({ servers: url, timeout: availabilityTimeoutMs, reconnect: false });
    await nc.flush();
    await nc.close();
    return undefined;
  } catch (err) {
    return `NATS at ${url} is not reachable (${(err as Error).message})`;
  }
}

/** jetstreamAvailable returns undefined when NATS at `url` has JetStream enabled, else why not. */
export async function jetstreamAvailable(url = natsUrl): Promise<string | undefined> {
  try {
    const nc = await connect({ servers: url, timeout: availabilityTimeoutMs, reconnect: false });
    try {
      await (await jetstreamManager(nc, { timeout: availabilityTimeoutMs })).getAccountInfo();
      return undefined;
    } finally {
      await nc.close();
    }
  } catch (err) {
    return `JetStream at ${url} is not available (${(err as Error).message})`;
  }
}

/**
 * describeNats registers `fn` as suite `name` when NATS at {@link natsUrl} answers and every
 * other check in `alsoMissing` passed; otherwise it is skipped with the reason printed, or
 * fails under BULWARK_REQUIRE_SERVICES=1.
 */
export async function describeNats(
  name: string,
  fn: () => void,
  alsoMissing: Promise<string | undefined>[] = [],
): Promise<void> {
  const reasons = (await Promise.all([natsAvailable(), ...alsoMissing])).filter((r) => r !== undefined);
  const reason = reasons.length === 0 ? undefined : reasons.join('; ');
  describeIf(
    name,
    reason && `${reason} (BULWARK_TEST_NATS_URL, BULWARK_TEST_REDIS_URL, BULWARK_TEST_POSTGRES_URL)`,
    fn,
  );
}

/** uniqueNatsPrefix returns a subject prefix no other test run uses. */
export function uniqueNatsPrefix(): string {
  return `bwtest.${randomBytes(5).toString('hex')}`;
}

/** natsServerMissing returns why `nats-server` cannot be run here, or undefined if it can. */
export function natsServerMissing(): string | undefined {
  const probe = spawnSync(natsServerBin, ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined) return `nats-server cannot be run (${probe.error.message})`;
  return undefined;
}

const natsServerBin = process.env.BULWARK_TEST_NATS_SERVER ?? '/usr/sbin/nats-server';

/** Servers still running, killed when this process exits (even on a crash). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

/** NatsServer is a private `nats-server` on a fixed port that a test may kill and start again. */
export class NatsServer {
  private proc: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly args: readonly string[],
  ) {}

  /**
   * start runs a server on a free port (or `port`) and waits until it listens; `args` are more
   * nats-server flags (e.g. `--tls …`, `--auth TOKEN`, `-js -sd DIR`).
   */
  static async start(port?: number, args: readonly string[] = []): Promise<NatsServer> {
    const server = new NatsServer(port ?? (await freePort()), args);
    await server.resume();
    return server;
  }

  /** url is the server's address. */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** resume starts the server process again on the same port and waits until it listens. */
  async resume(): Promise<void> {
    if (this.proc !== undefined) return;
    const proc = spawn(natsServerBin, ['-a', '127.0.0.1', '-p', String(this.port), ...this.args], {
      stdio: 'ignore',
    });
    this.proc = proc;
    running.add(proc);
    proc.once('exit', () => {
      running.delete(proc);
      if (this.proc === proc) this.proc = undefined;
    });
    const deadline = Date.now() + 5000;
    while (!(await listening(this.port))) {
      if (this.proc !== proc) throw new Error(`nats-server on port ${this.port} exited at start`);
      if (Date.now() > deadline) throw new Error(`nats-server on port ${this.port} did not listen within 5 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** kill stops the server abruptly (SIGKILL) and waits for the process to exit. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (proc === undefined) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
