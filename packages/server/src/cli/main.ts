#!/usr/bin/env node
/**
 * The `bulwark` CLI: start, migrate, checkconfig, genconfig, gentoken, plan, version.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { signConnectionToken } from '../auth/token-signer.js';
import { loadConfig, redactConfig, toConfigInput } from '../config/load.js';
import type { Config, ConfigInput } from '../config/schema.js';
import { BulwarkError } from '../errors.js';
import { postgresOptions } from '../engine/engine.js';
import { PostgresDatabase } from '../engine/postgres/database.js';
import { Node } from '../node.js';
import { version } from '../version.js';
import { demoConfig } from './demo-config.js';
import { registerPlan } from './plan.js';
import { isWorker, runPrimary, workerId } from './workers.js';

function parseWorkers(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new InvalidArgumentError('workers must be 1-256');
  return n;
}

function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('port must be 0-65535');
  return n;
}

/** load reads the config from --config (or BULWARK_CONFIG) plus environment, exiting on errors. */
function load(opts: { config?: string; port?: number; demo?: boolean }): Readonly<Config> {
  const file = opts.config ?? process.env['BULWARK_CONFIG'];
  const overrides: Array<{ path: string[]; value: unknown }> = [];
  if (opts.port !== undefined) overrides.push({ path: ['http_server', 'port'], value: opts.port });
  try {
    const read = () =>
      opts.demo && !file
        ? loadConfig({ object: demoConfig(), env: process.env, overrides })
        : loadConfig({ file, env: process.env, overrides });
    if (opts.demo && file) overrides.push({ path: ['demo', 'enabled'], value: true });
    const config = read();
    const slot = process.env['BULWARK_WORKER_SLOT'] ?? workerId();
    if (slot === undefined) return config;
    // Workers of one machine need names of their own in info, logs and metrics.
    overrides.push({ path: ['node', 'name'], value: `${config.node.name || hostname()}#${slot}` });
    return read();
  } catch (err) {
    if (err instanceof BulwarkError) {
      process.stderr.write(`bulwark: ${err.code}: ${err.message}\n`);
      if (!file && !opts.demo) {
        process.stderr.write(
          'bulwark: no config file given (-c <file> or BULWARK_CONFIG): `bulwark genconfig` writes one with fresh secrets, `bulwark start --demo` runs a demo without one\n',
        );
      }
      process.exit(2);
    }
    throw err;
  }
}

const program = new Command();
program
  .name('bulwark')
  .description('Realtime messaging server for live-service games (Centrifugo protocol v2)')
  .version(version, '-V, --version', 'print the version');

program
  .command('start')
  .description('start a Bulwark node')
  .option('-c, --config <file>', 'JSON config file (default: $BULWARK_CONFIG)')
  .option('-p, --port <port>', 'HTTP port (overrides http_server.port)', parsePort)
  .option('--demo', 'serve the bulletin board demo; without --config, run on fresh random secrets')
  .option(
    '-w, --workers <n>',
    'run N processes sharing the port (needs engine.type redis or postgresql)',
    parseWorkers,
    1,
  )
  .action(async (opts: { config?: string; port?: number; demo?: boolean; workers: number }) => {
    const config = load(opts);
    if (opts.workers > 1 && !isWorker()) {
      if (config.engine.type === 'memory') {
        process.stderr.write(
          'bulwark: --workers needs engine.type "redis" (or "postgresql"): with the memory engine each process would be an island (publications would not reach the other processes\' clients)\n',
        );
        process.exit(2);
      }
      const status = await runPrimary(
        opts.workers,
        (line) => process.stderr.write(`bulwark: ${line}\n`),
        (port) => process.stderr.write(banner(config, port, opts, `${opts.workers} workers`)),
      );
      process.exit(status);
    }
    let node: Node;
    try {
      node = new Node(config);
    } catch (err) {
      if (!(err instanceof BulwarkError)) throw err;
      process.stderr.write(`bulwark: ${err.code}: ${err.message}\n`);
      process.exit(2);
    }
    // A bug in one request must not take every player offline: log it loudly, keep serving.
    process.on('unhandledRejection', (err) => node.log.error({ err }, 'unhandled rejection'));
    let addr;
    try {
      addr = await node.start();
    } catch (err) {
      // A known failure (port in use, engine unreachable) is one plain line; a bug keeps its stack.
      if (err instanceof BulwarkError) node.log.fatal({ code: err.code, reason: err.message }, 'startup failed');
      else node.log.fatal({ err }, 'startup failed');
      const code = err instanceof BulwarkError ? `${err.code}: ` : '';
      process.stderr.write(`bulwark: ${code}${(err as Error).message}\n`);
      process.exit(1);
    }
    // The primary prints the banner of a multi-process node.
    if (!isWorker()) process.stderr.write(banner(config, addr.port, opts, '', node.internalAddress?.port));
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        process.stderr.write('bulwark: second signal, exiting now\n');
        process.exit(1);
      }
      stopping = true;
      node.log.info({ signal }, 'shutdown requested');
      node.shutdown().then(
        () => process.exit(0),
        (err: unknown) => {
          node.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGHUP', () => {
      try {
        node.reloadTls();
      } catch (err) {
        node.log.error({ err }, 'tls reload failed: the previous certificate stays in use');
      }
    });
    process.on('SIGTERM', () => stop('SIGTERM'));
    // A terminal's Ctrl-C reaches every process of the group: workers leave it to the
    // primary, which sends them SIGTERM (a second signal would cut their drain short).
    process.on('SIGINT', () => (isWorker() ? undefined : stop('SIGINT')));
  });

/** banner is the human-readable start message (stderr). */
function banner(
  config: Readonly<Config>,
  port: number,
  opts: { config?: string; demo?: boolean },
  extra = '',
  internalPort?: number,
): string {
  const host = config.http_server.address || 'localhost';
  const tls = config.http_server.tls.enabled;
  const url = `${tls ? 'https' : 'http'}://${host}:${port}`;
  const internalHost = config.http_server.internal_address || host;
  return (
    `\nBulwark ${version} listening on ${url}${extra ? ` (${extra})` : ''}\n` +
    `  WebSocket: ${tls ? 'wss' : 'ws'}://${host}:${port}/connection/websocket\n` +
    (internalPort !== undefined
      ? `  Internal (server API, /metrics, /health, /ready): http://${internalHost}:${internalPort}\n`
      : '') +
    (config.demo.enabled ? `  Demo bulletin board: ${url}/  (open it in two tabs)\n` : '') +
    (opts.demo && !opts.config ? `  Demo API key (fresh each start): ${config.http_api.key}\n` : '') +
    '\n'
  );
}

program
  .command('migrate')
  .description("apply the PostgreSQL engine's schema migrations (engine.type postgresql) and exit")
  .option('-c, --config <file>', 'JSON config file (default: $BULWARK_CONFIG)')
  .action(async (opts: { config?: string }) => {
    const config = load(opts);
    if (config.engine.type !== 'postgresql') {
      process.stderr.write(`bulwark: migrate needs engine.type "postgresql" (it is "${config.engine.type}")\n`);
      process.exit(2);
    }
    // Several nodes (or a migrate and starting nodes) may run at once: migrations take an
    // advisory lock, so one applies them and the others find them applied.
    const db = new PostgresDatabase(postgresOptions(config.engine.postgresql), () => undefined).retain();
    try {
      const r = await db.start();
      const what = r.applied.length === 0 ? 'nothing to apply' : `applied ${r.applied.join(', ')}`;
      process.stdout.write(`bulwark: PostgreSQL schema at version ${r.to} (${what}) at ${db.address}\n`);
    } catch (err) {
      const code = err instanceof BulwarkError ? `${err.code}: ` : '';
      process.stderr.write(`bulwark: migrate failed: ${code}${(err as Error).message}\n`);
      process.exitCode = 1;
    } finally {
      await db.close();
    }
  });

program
  .command('checkconfig')
  .description('validate a config (file + BULWARK_* environment) without starting')
  .option('-c, --config <file>', 'JSON config file (default: $BULWARK_CONFIG)')
  .option('--print', 'print the effective config, secrets redacted')
  .action((opts: { config?: string; print?: boolean }) => {
    const config = load(opts);
    if (opts.print) process.stdout.write(JSON.stringify(redactConfig(toConfigInput(config)), null, 2) + '\n');
    process.stderr.write('config is valid\n');
  });

program
  .command('genconfig')
  .description('write a minimal config with fresh random secrets')
  .option('-o, --output <file>', 'where to write it', 'config.json')
  .option('-f, --force', 'overwrite an existing file')
  .action((opts: { output: string; force?: boolean }) => {
    if (existsSync(opts.output) && !opts.force) {
      process.stderr.write(`bulwark: ${opts.output} exists; use --force to overwrite\n`);
      process.exit(2);
    }
    const cfg: ConfigInput = {
      client: {
        token: { hmac_secret_key: randomBytes(32).toString('base64url') },
        allowed_origins: [],
      },
      http_api: { key: randomBytes(24).toString('base64url') },
      channel: {
        namespaces: [
          {
            name: 'chat',
            presence: true,
            join_leave: true,
            history_size: 100,
            history_ttl: '600s',
            force_recovery: true,
            allow_subscribe_for_client: true,
            allow_publish_for_subscriber: true,
            allow_history_for_subscriber: true,
            allow_presence_for_subscriber: true,
          },
        ],
      },
    };
    writeFileSync(opts.output, JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 });
    process.stderr.write(
      `wrote ${opts.output} (keep it secret: it holds the token secret and API key; do not commit it, list it in .gitignore)\n`,
    );
  });

program
  .command('gentoken')
  .description('sign a connection token (HS256) with the configured client.token.hmac_secret_key')
  .requiredOption('-u, --user <user>', 'user ID (sub claim)')
  .option('-c, --config <file>', 'JSON config file (default: $BULWARK_CONFIG)')
  .option('-t, --ttl <seconds>', 'lifetime in seconds', (v) => Number(v), 86400)
  .action(async (opts: { user: string; config?: string; ttl: number }) => {
    const config = load(opts);
    const secret = config.client.token.hmac_secret_key;
    if (!secret) {
      process.stderr.write('bulwark: gentoken needs client.token.hmac_secret_key\n');
      process.exit(2);
    }
    const token = await signConnectionToken({ secret, user: opts.user, ttlSeconds: opts.ttl });
    process.stdout.write(token + '\n');
  });

program
  .command('version')
  .description('print the version')
  .action(() => {
    process.stdout.write(`bulwark ${version}\n`);
  });

registerPlan(program);

await program.parseAsync(process.argv);
