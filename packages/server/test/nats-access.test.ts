/**
 * Token authentication and TLS to NATS (`broker.nats.token` / `.tls`, `consumers.jetstream.token`
 * / `.tls`), against a private `nats-server` that requires both — TLS with a client certificate
 * (mutual TLS) and a token — with JetStream on: two nodes fan out through it, the JetStream
 * consumer reads a stream through it, and each wrong setting fails naming the key to check.
 * Needs `nats-server`, `openssl` and Redis (the engine of the broker's nodes); skipped
 * without them, unless BULWARK_REQUIRE_SERVICES=1.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { loadConfig, redactConfig } from '../src/config/load.js';
import type { ConfigInput } from '../src/config/schema.js';
import { natsAccessOptions, type NatsAccess } from '../src/engine/nats/access.js';
import { NatsFanout } from '../src/engine/nats/fanout-nats.js';
import { opensslMissing, selfSigned } from './helpers/certs.js';
import { NatsServer, natsServerMissing, uniqueNatsPrefix } from './helpers/nats.js';
import { describeIf, redisAvailable, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';
import { connected, startTestServer, waitUntil, type TestServer } from './helpers/server.js';
import { track } from './helpers/tracked.js';

const missing = [natsServerMissing(), opensslMissing(), await redisAvailable()].filter((m) => m !== undefined);

describeIf('NATS with a token and mutual TLS', missing.length > 0 ? missing.join('; ') : undefined, () => {
  const token = 'nats-test-token';
  let server: NatsServer;
  let access: NatsAccess;
  let storeDir: string;
  const serverCert = () => selfSigned('nats-server');
  const clientCert = () => selfSigned('nats-client');
  let certs: { server: { cert: string; key: string }; client: { cert: string; key: string } };

  before(async () => {
    certs = { server: serverCert(), client: clientCert() };
    storeDir = mkdtempSync(join(tmpdir(), 'bulwark-nats-js-'));
    server = await NatsServer.start(undefined, [
      '--tls',
      '--tlscert',
      certs.server.cert,
      '--tlskey',
      certs.server.key,
      '--tlsverify',
      '--tlscacert',
      certs.client.cert,
      '--auth',
      token,
      '-js',
      '-sd',
      storeDir,
    ]);
    access = {
      token,
      tls: {
        enabled: true,
        server_ca_pem_file: certs.server.cert,
        cert_pem_file: certs.client.cert,
        key_pem_file: certs.client.key,
        insecure_skip_verify: false,
      },
    };
  });
  after(async () => {
    await server?.kill();
    if (storeDir !== undefined) rmSync(storeDir, { recursive: true, force: true });
  });

  /** fanout starts a bare NATS fan-out with `over` changes to the working access; resolves to its error, if any. */
  const fanoutError = async (over: Partial<NatsAccess['tls']> & { token?: string }): Promise<string | undefined> => {
    const { token: t = access.token, ...tls } = over;
    const fanout = new NatsFanout({
      url: server.url,
      prefix: uniqueNatsPrefix(),
      dialTimeoutMs: 1000,
      reconnectMaxDelayMs: 100,
      pingIntervalMs: 1000,
      access: { token: t, tls: { ...access.tls, ...tls } },
    });
    try {
      await fanout.start({ onEvent: () => {}, onControl: () => {}, onStateChange: () => {}, onError: () => {} });
      return undefined;
    } catch (err) {
      const cause = (err as Error).cause as Error | undefined;
      return cause?.message ?? (err as Error).message;
    } finally {
      await fanout.close();
    }
  };

  it('two nodes fan out through it: a publication on one reaches a subscriber of the other', async () => {
    const redisPrefix = uniquePrefix();
    const prefix = uniqueNatsPrefix();
    const cfg: ConfigInput = {
      client: { insecure: true },
      engine: { type: 'redis', redis: { address: [redisUrl], prefix: redisPrefix } },
      broker: { enabled: true, type: 'nats', nats: { url: server.url, prefix, ...access } },
    };
    const nodes: TestServer[] = [];
    try {
      nodes.push(await startTestServer(cfg), await startTestServer(cfg));
      const [a, b] = nodes as [TestServer, TestServer];
      const client = await connected(b.url);
      const t = await track(client, 'open:tls');
      for (let n = 1; n <= 3; n++)
        assert.equal((await a.api('publish', { channel: 'open:tls', data: { n } })).status, 200);
      await waitUntil(() => t.received.length === 3, 3000, 'three publications through NATS');
      assert.deepEqual(t.received, [1, 2, 3]);
      client.disconnect();
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
      await removeKeys(redisPrefix);
    }
  });

  it('the JetStream consumer reads a stream through it', async () => {
    const id = uniquePrefix().replace(/[^a-z0-9]/gi, '');
    const stream = `BWTLS${id}`;
    const subject = `bwtls.${id}`;
    const nc = await connect({ servers: server.url, ...natsAccessOptions(access, 'test') });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`${subject}.>`] });
    const node = await startTestServer({
      client: { insecure: true },
      consumers: {
        jetstream: {
          enabled: true,
          url: server.url,
          stream_name: stream,
          durable_consumer_name: `bw_${id}`,
          deliver_policy: 'all',
          retry_interval: '100ms',
          ...access,
        },
      },
    });
    try {
      const client = await connected(node.url);
      const t = await track(client, 'open:js');
      await jetstream(nc).publish(
        `${subject}.x`,
        JSON.stringify({ method: 'broadcast', payload: { channels: ['open:js', 'open:js2'], data: { n: 7 } } }),
      );
      await waitUntil(() => t.received.length === 1, 5000, 'the stream message');
      assert.deepEqual(t.received, [7]);
      client.disconnect();
    } finally {
      await node.close();
      await jsm.streams.delete(stream).catch(() => undefined);
      await nc.close();
    }
  });

  it('a wrong token, an untrusted server or an unreadable file each name the key; no client certificate fails', async () => {
    assert.equal(await fanoutError({}), undefined, 'the working settings connect');
    assert.match((await fanoutError({ token: 'wrong' })) ?? '', /Authorization Violation.*check broker\.nats\.token/);
    // The server drops a connection without a client certificate; whether the client sees the
    // TLS alert or only a timeout depends on timing, so only the failure itself is certain.
    assert.notEqual(await fanoutError({ cert_pem_file: '', key_pem_file: '' }), undefined);
    assert.match((await fanoutError({ server_ca_pem_file: '' })) ?? '', /certificate.*check broker\.nats\.tls/);
    assert.match(
      (await fanoutError({ server_ca_pem_file: '/nonexistent/ca.pem' })) ?? '',
      /broker\.nats\.tls\.server_ca_pem_file: cannot read \/nonexistent\/ca\.pem/,
    );
  });
});

it('config: mutual TLS needs both files, TLS files need tls.enabled, and tokens are redacted', () => {
  const problems = (nats: object): string => {
    try {
      loadConfig({
        object: {
          client: { insecure: true },
          http_api: { insecure: true },
          engine: { type: 'redis' },
          broker: { enabled: true, nats },
        },
      });
      return '';
    } catch (err) {
      return (err as Error).message;
    }
  };
  assert.match(problems({ tls: { enabled: true, cert_pem_file: 'c.pem' } }), /broker\.nats\.tls\.key_pem_file.*both/);
  assert.match(problems({ tls: { server_ca_pem_file: 'ca.pem' } }), /broker\.nats\.tls\.enabled.*set it to true/);
  assert.equal(problems({ token: 't', tls: { enabled: true, server_ca_pem_file: 'ca.pem' } }), '');
  const cfg = loadConfig({
    object: {
      client: { insecure: true },
      http_api: { insecure: true },
      consumers: { jetstream: { enabled: true, stream_name: 'S', token: 'very-secret' } },
    },
  });
  assert.equal(
    (redactConfig(cfg) as { consumers: { jetstream: { token: string } } }).consumers.jetstream.token,
    '<redacted>',
  );
});
