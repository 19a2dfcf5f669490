/**
 * Test helpers for the Redis engine: gate suites on a reachable Redis, give each run its own
 * key prefix and remove its keys afterwards, and run private `redis-server` processes (a
 * standalone server to kill and restart, or a small cluster) on free ports.
 *
 * The shared Redis (`BULWARK_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`) is used by
 * other things: tests touch only keys under their random prefix and never stop it.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';

/** redisUrl is the shared Redis the suites run against. */
export const redisUrl = process.env.BULWARK_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** servicesRequired is true when a missing service must fail the run instead of skipping it. */
const servicesRequired = process.env.BULWARK_REQUIRE_SERVICES === '1';

/**
 * How long a suite's check that a service is up waits for its answer (ms). A service that is
 * down refuses the connection at once; one that is up but slow to answer, on a machine busy
 * with other test files and other work, must not be taken for down (it was, at 1 s).
 */
export const availabilityTimeoutMs = 5000;

/**
 * redisAvailable checks that Redis at `url` answers PING within {@link availabilityTimeoutMs}.
 * It returns undefined when it does, else the reason it does not.
 */
export async function redisAvailable(url = redisUrl): Promise<string | undefined> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: availabilityTimeoutMs,
    retryStrategy: () => null,
  });
  let cause: unknown;
  client.on('error', (err) => (cause ??= err)); // the socket error says more than connect()'s
  try {
    await client.connect();
    await client.ping();
    return undefined;
  } catch (err) {
    cause ??= err;
    return `Redis at ${url} is not reachable (${cause instanceof Error ? cause.message : String(cause)})`;
  } finally {
    client.disconnect();
  }
}

/**
 * describeRedis registers `fn` as suite `name` when Redis at {@link redisUrl} is reachable;
 * otherwise see {@link describeIf}.
 */
export async function describeRedis(name: string, fn: () => void): Promise<void> {
  const reason = await redisAvailable();
  describeIf(name, reason && `${reason}; set BULWARK_TEST_REDIS_URL to use another Redis`, fn);
}

/**
 * describeIf registers `fn` as suite `name` when nothing is `missing`. Otherwise it prints
 * why and registers the suite as skipped, or, when `BULWARK_REQUIRE_SERVICES=1`, as one
 * failing test carrying the reason.
 */
export function describeIf(name: string, missing: string | undefined, fn: () => void): void {
  if (missing === undefined) {
    describe(name, fn);
  } else if (servicesRequired) {
    describe(name, () => {
      it('has the services it needs', () => {
        throw new Error(`BULWARK_REQUIRE_SERVICES=1 but ${missing}`);
      });
    });
  } else {
    console.log(`skipping "${name}": ${missing}`);
    describe(name, { skip: missing }, () => {});
  }
}

/** uniquePrefix returns a key prefix no other test run uses. */
export function uniquePrefix(): string {
  return `bwtest-${randomBytes(6).toString('hex')}`;
}

/** removeKeys deletes every key under `prefix` (`<prefix>.*`) with SCAN + UNLINK; returns how many. */
export async function removeKeys(prefix: string, url = redisUrl): Promise<number> {
  const client = new Redis(url, {
    connectTimeout: availabilityTimeoutMs,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  client.on('error', () => {});
  let removed = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}.*`, 'COUNT', 1000);
      if (keys.length > 0) removed += await client.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
  return removed;
}

/** freePort returns a TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** redisServerMissing returns why `redis-server` cannot be run here, or undefined if it can. */
export function redisServerMissing(): string | undefined {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined) return `redis-server cannot be run (${probe.error.message})`;
  return undefined;
}

/**
 * Server processes still running. They are killed when this process exits, even on a crash
 * (an uncaught exception still emits 'exit'), so a failed run leaves no redis-server behind.
 */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

/** RedisServerOptions: where and how to run a {@link RedisServer}. */
export interface RedisServerOptions {
  /** Default: a free port. */
  port?: number;
  /** More command-line options, e.g. `['--sentinel']`. */
  args?: string[];
  /** Working directory; default: a new temporary one. */
  dir?: string;
  /** Contents of a config file to start from (a sentinel needs one it can rewrite). */
  config?: string;
}

/**
 * RedisServer is a private `redis-server` on a fixed port, without persistence, that a test
 * may kill and start again on the same port.
 */
export class RedisServer {
  private proc: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    /** Config file first (redis-server wants it so), then options. */
    private readonly argv: string[],
    private readonly dir: string,
  ) {}

  /** start runs a server and waits until it answers. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'bulwark-redis-'));
    const port = options.port ?? (await freePort());
    const argv = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
    if (options.config !== undefined) {
      const file = join(dir, `redis-${port}.conf`);
      writeFileSync(file, options.config);
      argv.unshift(file);
    }
    const server = new RedisServer(port, [...argv, ...(options.args ?? [])], dir);
    await server.resume();
    return server;
  }

  /** url is the server's address. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** resume starts the server process again on the same port and waits until it answers. */
  async resume(): Promise<void> {
    if (this.proc !== undefined) return;
    const proc = spawn('redis-server', this.argv, { stdio: 'ignore' });
    this.proc = proc;
    running.add(proc);
    proc.once('exit', () => {
      running.delete(proc);
      if (this.proc === proc) this.proc = undefined;
    });
    const deadline = Date.now() + 5000;
    while ((await redisAvailable(this.url)) !== undefined) {
      if (this.proc !== proc) throw new Error(`redis-server on port ${this.port} exited at start`);
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer within 5 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** kill stops the server abruptly (SIGKILL, as a crash) and waits for the process to exit. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (proc === undefined) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
  }

  /** destroy kills the server and removes its directory. */
  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * RedisTestCluster is a private Redis Cluster of `size` masters without replicas on free
 * ports, created with `redis-cli --cluster create`.
 */
export class RedisTestCluster {
  private constructor(
    readonly nodes: RedisServer[],
    private readonly dir: string,
  ) {}

  /** start runs the nodes, joins them into a cluster and waits until every node reports it ok. */
  static async start(size = 3): Promise<RedisTestCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-cluster-'));
    const nodes: RedisServer[] = [];
    const cluster = new RedisTestCluster(nodes, dir);
    try {
      for (let i = 0; i < size; i++) {
        const port = await freePort();
        const args = ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`];
        nodes.push(await RedisServer.start({ port, dir, args: [...args, '--cluster-node-timeout', '1000'] }));
      }
      const create = spawnSync(
        'redis-cli',
        ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
        { encoding: 'utf8', timeout: 10_000 },
      );
      if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stderr || create.stdout}`);
      await cluster.waitHealthy();
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  /** addresses are the nodes' `host:port` addresses. */
  get addresses(): string[] {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`);
  }

  /** waitHealthy waits until every node reports `cluster_state:ok`. */
  async waitHealthy(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const node of this.nodes) {
      const client = new Redis(node.url, { retryStrategy: () => 100, maxRetriesPerRequest: 0 });
      client.on('error', () => {});
      try {
        for (;;) {
          const info = await client.cluster('INFO').catch(() => '');
          if (typeof info === 'string' && info.includes('cluster_state:ok')) break;
          if (Date.now() > deadline) throw new Error(`cluster node ${node.port} not ok within ${timeoutMs} ms`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      } finally {
        client.disconnect();
      }
    }
  }

  /** destroy kills every node and removes the cluster's directory. */
  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
