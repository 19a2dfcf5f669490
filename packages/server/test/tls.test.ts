/**
 * TLS in process (`http_server.tls`): the real `centrifuge` SDK connects over `wss://` with a
 * self-signed certificate made by `openssl` for the test, receives what the API publishes (on
 * the plain internal port); a reload (SIGHUP's action) serves a new certificate to new
 * connections; unreadable or mismatched files are refused with BW_ERR_TLS. Skipped without
 * `openssl`, unless BULWARK_REQUIRE_SERVICES=1.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, it } from 'node:test';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/load.js';
import type { BulwarkError } from '../src/errors.js';
import { Node } from '../src/node.js';
import { describeIf, freePort } from './helpers/redis.js';
import { opensslMissing, selfSigned } from './helpers/certs.js';
import { startBulwark, writeConfigFile } from './helpers/process.js';
import { newCentrifuge, nextEvent, startTestServer, waitUntil } from './helpers/server.js';

const dir = mkdtempSync(join(tmpdir(), 'bulwark-tls-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** peerCommonName opens a TLS connection trusting `ca` and returns the server certificate's CN. */
function peerCommonName(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      resolve(String(socket.getPeerCertificate().subject.CN));
      socket.end();
    });
    socket.on('error', reject);
  });
}

describeIf('TLS in process', opensslMissing(), () => {
  it('serves wss:// to the real SDK, and a reload serves a new certificate to new connections', async (t) => {
    const first = selfSigned('bulwark-one');
    const internalPort = await freePort();
    const srv = await startTestServer({
      http_server: {
        internal_port: internalPort,
        internal_address: '127.0.0.1',
        tls: { enabled: true, cert_pem_file: first.cert, key_pem_file: first.key },
      },
    });
    t.after(() => srv.close());
    const port = srv.port;
    const ca = readFileSync(first.cert);
    // The SDK takes a WebSocket class: this one trusts the test's certificate.
    class TrustingWebSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { ca });
      }
    }
    const client = newCentrifuge(`wss://localhost:${port}/connection/websocket`, {
      token: await srv.token('alice'),
      websocket: TrustingWebSocket,
    });
    t.after(() => client.disconnect());
    const sub = client.newSubscription('chat:secure');
    const got = new Promise((resolve) => sub.on('publication', (ctx) => resolve(ctx.data)));
    const subscribed = nextEvent(sub, 'subscribed', 3000);
    sub.subscribe();
    client.connect();
    await subscribed;
    const res = await fetch(`http://127.0.0.1:${internalPort}/api/publish`, {
      method: 'POST',
      headers: { 'x-api-key': srv.apiKey },
      body: JSON.stringify({ channel: 'chat:secure', data: { over: 'tls' } }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await got, { over: 'tls' });

    // Plain HTTP to the TLS port gets nothing useful.
    await assert.rejects(fetch(`http://127.0.0.1:${port}/connection/websocket`));

    assert.equal(await peerCommonName(port, ca), 'bulwark-one');
    const second = selfSigned('bulwark-two');
    writeFileSync(first.cert, readFileSync(second.cert));
    writeFileSync(first.key, readFileSync(second.key));
    srv.node.reloadTls();
    assert.equal(await peerCommonName(port, readFileSync(second.cert)), 'bulwark-two');
    assert.equal(client.state, 'connected', 'open connections keep their session');

    // A broken file on reload throws and leaves the certificate in use.
    writeFileSync(first.cert, 'not a certificate');
    assert.throws(
      () => srv.node.reloadTls(),
      (err: BulwarkError) => err.code === 'BW_ERR_TLS',
    );
    assert.equal(await peerCommonName(port, readFileSync(second.cert)), 'bulwark-two');
  });

  it('bulwark start reloads the certificate on SIGHUP without a restart', async (t) => {
    const one = selfSigned('hup-one');
    const two = selfSigned('hup-two');
    const cert = join(dir, 'live.crt');
    const key = join(dir, 'live.key');
    writeFileSync(cert, readFileSync(one.cert));
    writeFileSync(key, readFileSync(one.key));
    const cfg = writeConfigFile({
      http_server: { address: '127.0.0.1', tls: { enabled: true, cert_pem_file: cert, key_pem_file: key } },
      client: { insecure: true },
      http_api: { insecure: true },
      log: { level: 'info' },
    });
    t.after(() => cfg.remove());
    const proc = await startBulwark(cfg.path, {}, t);
    assert.equal(await peerCommonName(proc.port, readFileSync(one.cert)), 'hup-one');
    writeFileSync(cert, readFileSync(two.cert));
    writeFileSync(key, readFileSync(two.key));
    process.kill(proc.pid, 'SIGHUP');
    await waitUntil(() => proc.stdout.includes('tls certificate reloaded'), 5000, 'the reload log line');
    assert.equal(await peerCommonName(proc.port, readFileSync(two.cert)), 'hup-two');
  });

  it('refuses missing, non-PEM and mismatched files with BW_ERR_TLS naming them', () => {
    const a = selfSigned('bulwark-a');
    const b = selfSigned('bulwark-b');
    const cfg = (cert: string, key: string) =>
      loadConfig({
        object: {
          client: { insecure: true },
          http_api: { insecure: true },
          http_server: { tls: { enabled: true, cert_pem_file: cert, key_pem_file: key } },
        },
      });
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'hello');
    const cases: [string, string, RegExp][] = [
      [join(dir, 'missing.crt'), a.key, /cannot read http_server\.tls\.cert_pem_file .*missing\.crt/],
      [a.cert, garbage, /http_server\.tls\.key_pem_file .*garbage\.pem is not a PEM file/],
      [a.cert, b.key, /are not a usable certificate and key/],
    ];
    for (const [cert, key, message] of cases) {
      assert.throws(
        () => new Node(cfg(cert, key)),
        (err: BulwarkError) => err.code === 'BW_ERR_TLS' && message.test(err.message),
        message.source,
      );
    }
  });
});
