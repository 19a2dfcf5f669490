import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { configLeaves, loadConfig, redactConfig } from '../src/config/load.js';
import { BulwarkError } from '../src/errors.js';
import { formatDuration, parseDuration } from '../src/util/duration.js';

const secrets = { client: { token: { hmac_secret_key: 's3cret' } }, http_api: { key: 'k3y' } };

/** problems returns the lines of a config error, asserting its code. */
function problems(fn: () => unknown, code = 'BW_ERR_CONFIG_INVALID'): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof BulwarkError, String(err));
    assert.equal(err.code, code);
    return err.message
      .split('\n')
      .slice(1)
      .map((l) => l.trim());
  }
  assert.fail('expected a config error');
}

describe('parseDuration', () => {
  it('parses Go-style durations', () => {
    assert.equal(parseDuration('25s'), 25_000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('720h'), 2_592_000_000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('0'), 0);
    assert.equal(parseDuration('0s'), 0);
  });
  it('rejects anything else', () => {
    for (const bad of ['', '25', 's', '1x', '10 s', '-1s', '1s ']) assert.equal(parseDuration(bad), undefined, bad);
  });
  it('formats back to a parseable form', () => {
    for (const ms of [0, 500, 1000, 90_000, 3_600_000]) assert.equal(parseDuration(formatDuration(ms)), ms);
  });
});

describe('loadConfig', () => {
  it('applies defaults and parses durations', () => {
    const c = loadConfig({ object: secrets });
    assert.equal(c.http_server.port, 8000);
    assert.equal(c.client.ping_interval, 25_000);
    assert.equal(c.client.pong_timeout, 8_000);
    assert.equal(c.channel.history_meta_ttl, 720 * 3_600_000);
    assert.equal(c.engine.type, 'memory');
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.client.token));
  });

  it('refuses to start without secrets, naming each key (no silent empty secret)', () => {
    const lines = problems(() => loadConfig({ object: {} }));
    assert.ok(
      lines.some((l) => l.startsWith('client.token.hmac_secret_key: missing secret')),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => l.startsWith('http_api.key: missing secret')),
      lines.join('\n'),
    );
  });

  it('accepts an RSA/ECDSA key or insecure mode instead of an HMAC secret', () => {
    loadConfig({ object: { client: { insecure: true }, http_api: { insecure: true } } });
    loadConfig({ object: { client: { token: { rsa_public_key: 'PEM' } }, http_api: { key: 'k' } } });
  });

  it('requires a key when subscription tokens have their own section', () => {
    const lines = problems(() =>
      loadConfig({ object: { ...secrets, client: { ...secrets.client, subscription_token: { enabled: true } } } }),
    );
    assert.ok(
      lines.some((l) => l.startsWith('client.subscription_token.hmac_secret_key: missing secret')),
      lines.join('\n'),
    );
  });

  it('reports unknown keys at every depth, all at once', () => {
    const lines = problems(() =>
      loadConfig({
        object: {
          ...secrets,
          bogus: 1,
          client: { ...secrets.client, pingInterval: '1s' },
          channel: { namespaces: [{ name: 'chat', histroy_size: 5 }] },
        },
      }),
    );
    assert.ok(lines.includes('bogus: unknown key'), lines.join('\n'));
    assert.ok(lines.includes('client.pingInterval: unknown key'), lines.join('\n'));
    assert.ok(lines.includes('channel.namespaces[0].histroy_size: unknown key'), lines.join('\n'));
  });

  it('reports wrong types and bad values with the key', () => {
    const lines = problems(() =>
      loadConfig({
        object: {
          ...secrets,
          http_server: { port: '8000' },
          client: { ...secrets.client, ping_interval: '25 seconds', channel_limit: -1 },
          log: { level: 'loud' },
        },
      }),
    );
    assert.ok(
      lines.some((l) => l.startsWith('http_server.port:')),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => l.startsWith('client.ping_interval: invalid duration')),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => l.startsWith('client.channel_limit:')),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => l.startsWith('log.level:')),
      lines.join('\n'),
    );
  });

  it('checks namespace rules: names, duplicates, history pairs, recovery, regex', () => {
    const lines = problems(() =>
      loadConfig({
        object: {
          ...secrets,
          channel: {
            namespaces: [
              { name: 'a' },
              { name: 'dup' },
              { name: 'dup' },
              { name: 'h1', history_size: 10 },
              { name: 'h2', history_ttl: '10s' },
              { name: 'rec', force_recovery: true },
              { name: 're', channel_regex: '(' },
            ],
          },
        },
      }),
    );
    const has = (prefix: string) =>
      assert.ok(
        lines.some((l) => l.startsWith(prefix)),
        `${prefix}\n${lines.join('\n')}`,
      );
    has('channel.namespaces[0].name:');
    has('channel.namespaces[2].name: duplicate namespace');
    has('channel.namespaces[3].history_ttl:');
    has('channel.namespaces[4].history_size:');
    has('channel.namespaces[5].force_recovery:');
    has('channel.namespaces[6].channel_regex: invalid regular expression');
  });

  it('rejects a pong timeout not shorter than the ping interval', () => {
    const lines = problems(() =>
      loadConfig({ object: { ...secrets, client: { ...secrets.client, ping_interval: '5s', pong_timeout: '5s' } } }),
    );
    assert.ok(lines.some((l) => l.startsWith('client.pong_timeout:')));
  });

  it('reads a file and reports unreadable or malformed files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-config-'));
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ ...secrets, http_server: { port: 9001 } }));
    assert.equal(loadConfig({ file: good }).http_server.port, 9001);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ "http_api": ');
    problems(() => loadConfig({ file: bad }), 'BW_ERR_CONFIG_FILE');
    problems(() => loadConfig({ file: join(dir, 'missing.json') }), 'BW_ERR_CONFIG_FILE');
    const arr = join(dir, 'array.json');
    writeFileSync(arr, '[]');
    problems(() => loadConfig({ file: arr }), 'BW_ERR_CONFIG_FILE');
  });

  it('says where a JSON syntax error is, in lines and columns', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-config-'));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{\n  "http_api": {\n    "key": "k",\n  }\n}\n');
    assert.throws(
      () => loadConfig({ file: bad }),
      (err: BulwarkError) => /is not valid JSON at line 4, column 3/.test(err.message),
    );
  });

  it('takes map namespaces on the Redis and PostgreSQL engines, but not on a Redis Cluster yet', () => {
    const maps = { namespaces: [{ name: 'lobby', subscription_type: 'map' }] };
    const redis = loadConfig({ object: { ...secrets, channel: maps, engine: { type: 'redis' } } });
    assert.equal(redis.engine.redis.map_cleanup_interval, 1000);
    assert.equal(redis.engine.redis.map_cleanup_batch_size, 100);
    const pg = loadConfig({
      object: { ...secrets, channel: maps, engine: { type: 'postgresql', postgresql: { dsn: 'postgresql://db/x' } } },
    });
    assert.equal(pg.channel.namespaces[0]!.subscription_type, 'map');
    assert.equal(pg.engine.postgresql.map_cleanup_interval, 1000);
    assert.equal(pg.engine.postgresql.map_cleanup_batch_size, 100);
    const lines = problems(() =>
      loadConfig({
        object: {
          ...secrets,
          channel: maps,
          engine: { type: 'redis', redis: { cluster_address: ['127.0.0.1:7000'] } },
        },
      }),
    );
    assert.ok(
      lines.some((l) =>
        l.startsWith('channel.namespaces[0].subscription_type: map channels are not supported on a Redis Cluster'),
      ),
      lines.join('\n'),
    );
  });

  it('refuses an internal port equal to the public one', () => {
    const lines = problems(() =>
      loadConfig({ object: { ...secrets, http_server: { port: 9000, internal_port: 9000 } } }),
    );
    assert.ok(lines.includes('http_server.internal_port: must differ from http_server.port'), lines.join('\n'));
  });

  it('says in plain words what a key should be', () => {
    const lines = problems(() =>
      loadConfig({
        object: {
          ...secrets,
          http_server: { port: 'eight thousand' },
          engine: { type: 'postgres' },
          client: { ...secrets.client, channel_limit: -1 },
          channel: { namespaces: 'chat' },
        },
      }),
    );
    assert.ok(lines.includes('http_server.port: must be a number, got a string'), lines.join('\n'));
    assert.ok(lines.includes('engine.type: must be one of "memory", "redis", "postgresql"'), lines.join('\n'));
    assert.ok(lines.includes('client.channel_limit: must be at least 0'), lines.join('\n'));
    assert.ok(lines.includes('channel.namespaces: must be an array, got a string'), lines.join('\n'));
  });

  it('applies BULWARK_* environment overrides by key path', () => {
    const c = loadConfig({
      object: {},
      env: {
        BULWARK_HTTP_API_KEY: 'from-env',
        BULWARK_CLIENT_TOKEN_HMAC_SECRET_KEY: 'env-secret',
        BULWARK_HTTP_SERVER_PORT: '9100',
        BULWARK_CLIENT_INSECURE: 'false',
        BULWARK_CLIENT_ALLOWED_ORIGINS: 'https://a.example, https://b.example',
        BULWARK_CHANNEL_NAMESPACES: '[{"name":"chat","presence":true}]',
        BULWARK_CLIENT_PING_INTERVAL: '10s',
        BULWARK_CONFIG: '/ignored/path.json',
        PATH: '/usr/bin',
      },
    });
    assert.equal(c.http_api.key, 'from-env');
    assert.equal(c.client.token.hmac_secret_key, 'env-secret');
    assert.equal(c.http_server.port, 9100);
    assert.deepEqual(c.client.allowed_origins, ['https://a.example', 'https://b.example']);
    assert.equal(c.channel.namespaces[0]?.presence, true);
    assert.equal(c.client.ping_interval, 10_000);
  });

  it('rejects unknown BULWARK_* variables and unparseable values, naming them', () => {
    const lines = problems(
      () =>
        loadConfig({
          object: secrets,
          env: { BULWARK_HTTP_API_KYE: 'x', BULWARK_HTTP_SERVER_PORT: 'eighty', BULWARK_CLIENT_INSECURE: 'maybe' },
        }),
      'BW_ERR_CONFIG_ENV',
    );
    assert.ok(
      lines.some((l) => l.startsWith('BULWARK_HTTP_API_KYE: unknown')),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => l.startsWith('BULWARK_HTTP_SERVER_PORT (http_server.port)')),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => l.startsWith('BULWARK_CLIENT_INSECURE (client.insecure)')),
      lines.join('\n'),
    );
  });

  it('an empty secret from the environment is still a missing secret', () => {
    const lines = problems(() =>
      loadConfig({ object: { http_api: { key: 'k' } }, env: { BULWARK_CLIENT_TOKEN_HMAC_SECRET_KEY: '' } }),
    );
    assert.ok(lines.some((l) => l.startsWith('client.token.hmac_secret_key: missing secret')));
  });

  it('lists every leaf with a unique env name', () => {
    const leaves = configLeaves();
    assert.equal(new Set(leaves.map((l) => l.env)).size, leaves.length);
    assert.ok(leaves.some((l) => l.env === 'BULWARK_HTTP_API_KEY'));
  });

  it('redacts secrets when printing', () => {
    const printed = JSON.stringify(redactConfig(loadConfig({ object: secrets })));
    assert.ok(!printed.includes('s3cret') && !printed.includes('k3y'));
    assert.ok(printed.includes('<redacted>'));
  });
});
