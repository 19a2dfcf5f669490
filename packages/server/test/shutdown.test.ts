import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rawClient, startTestServer } from './helpers/server.js';

describe('shutdown', () => {
  it('also closes connections that never sent connect, without waiting for their stale timeout', async () => {
    const srv = await startTestServer({ client: { stale_close_delay: '10s' }, drain: { window: '100ms' } });
    const idle = await rawClient(srv.url);
    const started = Date.now();
    const stopping = srv.node.shutdown();
    const closed = await idle.waitClose(3000);
    assert.equal(closed.code, 3001);
    await stopping;
    assert.ok(Date.now() - started < 3000, 'shutdown did not wait for the 10 s stale timeout');
    await srv.close();
  });
});
