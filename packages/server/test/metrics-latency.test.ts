/**
 * The latency histograms and the stock process metrics on a live node's /metrics: every client
 * command and server API call is observed by method (errors included), and prom-client's
 * process and Node.js metrics carry their usual names, so stock dashboards find them.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { rawClient, startTestServer } from './helpers/server.js';

/** sample reads one series' value from a /metrics text (labels in any order). */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    if (Object.entries(labels).every(([k, v]) => body.includes(`${k}="${v}"`))) return Number(line.split(' ').pop());
  }
  return undefined;
}

it('observes client commands and API calls by method, and exports process metrics under stock names', async (t) => {
  const srv = await startTestServer();
  t.after(() => srv.close());
  const c = await rawClient(srv.url);
  assert.ok((await c.connect(await srv.token('alice'))).connect);
  assert.ok((await c.call('subscribe', { channel: 'chat:m' })).subscribe);
  // A refused command is observed too.
  assert.ok((await c.call('subscribe', { channel: 'nope:x' })).error);
  await srv.api('publish', { channel: 'chat:m', data: { n: 1 } });
  await srv.api('publish', { channel: 'chat:m', data: { n: 2 } });
  await srv.api('history', { channel: 'chat:m' });

  const text = await (await fetch(`${srv.httpUrl}/metrics`)).text();
  const count = (name: string, method: string) => sample(text, `${name}_count`, { method });
  assert.equal(count('bulwark_client_command_duration_seconds', 'connect'), 1);
  assert.equal(count('bulwark_client_command_duration_seconds', 'subscribe'), 2);
  assert.equal(count('bulwark_api_command_duration_seconds', 'publish'), 2);
  assert.equal(count('bulwark_api_command_duration_seconds', 'history'), 1);
  const le = sample(text, 'bulwark_api_command_duration_seconds_bucket', { method: 'publish', le: '+Inf' });
  assert.equal(le, 2);
  for (const stock of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds']) {
    assert.match(text, new RegExp(`^# TYPE ${stock} `, 'm'), stock);
  }
  assert.doesNotMatch(text, /bulwark_process_|bulwark_nodejs_/);
});

it('re-reads the connection-sized process metrics at most every 10 s, however often it is scraped', async (t) => {
  const srv = await startTestServer();
  t.after(() => srv.close());
  const scrape = async () => sample(await (await fetch(`${srv.httpUrl}/metrics`)).text(), 'process_open_fds', {});
  const first = await scrape();
  assert.ok(first !== undefined && first > 0, 'process_open_fds is exported');
  const clients = await Promise.all(Array.from({ length: 20 }, () => rawClient(srv.url)));
  t.after(() => clients.forEach((c) => c.close()));
  // Twenty more sockets are open, but the reading is the one taken moments ago.
  assert.equal(await scrape(), first);
});
