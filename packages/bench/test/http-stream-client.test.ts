/**
 * The HTTP-streaming and SSE load clients against a real Bulwark: connect on the stream,
 * subscribe and publish through /emulation, publications in order, pings answered (a missed
 * pong would close the stream with 3012), and a refused subscribe rejected.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectionToken } from '../src/harness/jwt.js';
import { startServer } from '../src/harness/targets.js';
import { HttpStreamClient } from '../src/load/http-stream-client.js';
import { benchData } from '../src/load/lean-client.js';
import { waitFor } from '../src/harness/util.js';

describe('HttpStreamClient against Bulwark', () => {
  for (const transport of ['http_stream', 'sse'] as const) {
    it(`${transport}: connects, subscribes, receives publications in order and answers pings`, async () => {
      const server = await startServer('bulwark', {
        bulwarkConfig: { client: { ping_interval: '1s', pong_timeout: '500ms' } },
      });
      const base = `http://127.0.0.1:${server.port}`;
      const clients: HttpStreamClient[] = [];
      try {
        const got: number[] = [];
        const sub = new HttpStreamClient({ base, transport, onPush: (_ch, seq) => got.push(seq) });
        const pub = new HttpStreamClient({ base, transport });
        clients.push(sub, pub);
        await sub.connect(connectionToken('user-1', server.tokenSecret));
        await pub.connect(connectionToken('user-2', server.tokenSecret));
        await sub.subscribe('bench:ch0');
        // One at a time: /emulation requests on different sockets may overtake each other.
        for (let seq = 1; seq <= 20; seq++) {
          pub.publish('bench:ch0', benchData(0, seq, 1, 'pad'));
          assert.ok(await waitFor(() => pub.publishAcks === seq, 3000), `ack ${seq}: ${pub.lastError}`);
        }
        assert.ok(await waitFor(() => got.length === 20, 3000), `got ${got.length}: ${sub.lastError}`);
        assert.deepEqual(
          got,
          Array.from({ length: 20 }, (_, i) => i + 1),
        );
        assert.ok(await waitFor(() => sub.pings >= 2, 5000), 'two pings');
        assert.equal(sub.closeCode, undefined);
        assert.equal(sub.lastError, undefined);
        await assert.rejects(sub.subscribe('nonamespace:x'), /error \d+/);
      } finally {
        for (const c of clients) c.terminate();
        await server.stop();
      }
    });
  }
});
