/**
 * protection.publication_max_size: a publication whose data is larger is refused with error
 * 106 (limit exceeded), from a client and from the server API alike, and nothing is stored
 * or delivered; data at the limit passes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectClient } from './helpers/protection.js';
import { sleep, startTestServer } from './helpers/server.js';

describe('protection.publication_max_size', () => {
  it('client and API publications over the limit get 106; at the limit they pass', async (t) => {
    const limit = 1000;
    const srv = await startTestServer({ protection: { publication_max_size: limit } });
    t.after(() => srv.close());
    const a = await connectClient(srv, 'alice', 'chat:room');
    // JSON of a string is the text plus two quotes: `limit - 2` characters is exactly the limit.
    const atLimit = 'x'.repeat(limit - 2);
    const over = 'x'.repeat(limit - 1);
    // Multi-byte characters count as their UTF-8 bytes: 400 × 3 bytes = 1202 bytes.
    const overInBytes = '€'.repeat(400);

    for (const data of [over, overInBytes]) {
      const reply = await a.call('publish', { channel: 'chat:room', data });
      assert.equal(reply.error?.code, 106, JSON.stringify(reply.error));
      assert.match(reply.error?.message ?? '', /publication_max_size \(1000 bytes\)/);
      const api = await srv.api('publish', { channel: 'chat:room', data });
      assert.equal(api.body.error?.code, 106);
    }
    const ok = await a.call('publish', { channel: 'chat:room', data: atLimit });
    assert.equal(ok.error, undefined, JSON.stringify(ok.error));
    await a.waitFor((m) => m.push?.pub?.data === atLimit);
    await sleep(50);
    assert.equal(a.messages.filter((m) => m.push?.pub !== undefined).length, 0, 'nothing over the limit was delivered');
    const history = await srv.api('history', { channel: 'chat:room', limit: 10 });
    assert.equal(history.body.result.publications.length, 1, 'only the publication at the limit is stored');
  });
});
