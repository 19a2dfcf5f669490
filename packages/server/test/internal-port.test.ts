/**
 * `http_server.internal_port`: the server API, /metrics and the probes move to a port of their
 * own, so the public port (behind the internet-facing load balancer) serves only what clients
 * use; without it everything stays on the public port.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { freePort } from './helpers/redis.js';
import { connectedAs, startTestServer } from './helpers/server.js';

it('serves the API, metrics and probes on the internal port only, and clients on the public port', async (t) => {
  const internalPort = await freePort();
  const srv = await startTestServer({ http_server: { internal_port: internalPort, internal_address: '127.0.0.1' } });
  t.after(() => srv.close());
  assert.deepEqual(srv.node.internalAddress, { port: internalPort, address: '127.0.0.1' });
  const internal = `http://127.0.0.1:${internalPort}`;
  const post = (base: string, method: string, body: unknown) =>
    fetch(`${base}/api/${method}`, {
      method: 'POST',
      headers: { 'x-api-key': srv.apiKey, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  for (const path of ['/metrics', '/health', '/ready']) {
    assert.equal((await fetch(`${srv.httpUrl}${path}`)).status, 404, `public ${path}`);
    assert.equal((await fetch(`${internal}${path}`)).status, 200, `internal ${path}`);
  }
  assert.equal((await post(srv.httpUrl, 'info', {})).status, 404, 'no API on the public port');

  // A client on the public port receives what the API on the internal port publishes.
  const client = await connectedAs(srv, t, 'alice');
  const sub = client.newSubscription('chat:x');
  const got = new Promise((resolve) => sub.on('publication', (ctx) => resolve(ctx.data)));
  sub.subscribe();
  await new Promise((resolve) => sub.once('subscribed', resolve));
  const res = await post(internal, 'publish', { channel: 'chat:x', data: { hello: 1 } });
  assert.equal(res.status, 200);
  assert.deepEqual(await got, { hello: 1 });
  assert.equal(
    (await fetch(`${internal}/connection/websocket`)).status,
    404,
    'no client endpoint on the internal port',
  );
});

it('without an internal port everything is on the public port', async (t) => {
  const srv = await startTestServer();
  t.after(() => srv.close());
  assert.equal(srv.node.internalAddress, undefined);
  assert.equal((await fetch(`${srv.httpUrl}/metrics`)).status, 200);
  assert.equal((await srv.api('info', {})).status, 200);
});
