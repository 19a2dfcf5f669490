/**
 * The router (http/server.ts), which no longer awaits every route (issue 18): routes are tried
 * in order whether they answer synchronously or through a promise; `false`, returned either
 * way, passes a request on; a route that throws or rejects is answered 500 and logged; a
 * request no route takes is 404; and the socket watch hears of every request's start and end.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { HttpServer, type SocketWatch } from '../src/http/server.js';
import { sendJson } from '../src/http/respond.js';
import { sleep, waitUntil } from './helpers/server.js';

describe('HttpServer routing', () => {
  const logged: Array<{ msg: string; path?: string }> = [];
  const events: string[] = [];
  let base = '';
  let server: HttpServer;

  before(async () => {
    const log = pino(
      { level: 'error' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          logged.push(JSON.parse(chunk.toString('utf8')) as { msg: string; path?: string });
          done();
        },
      }),
    );
    const watch: SocketWatch = {
      connected: () => events.push('connected'),
      requestStarted: (_s: Socket) => events.push('started'),
      requestEnded: (s: Socket) => events.push(s.destroyed ? 'ended destroyed' : 'ended'),
      timedOut: () => events.push('timed out'),
    };
    server = new HttpServer(log, {
      headersTimeout: 5000,
      requestTimeout: 10_000,
      keepAliveTimeout: 5000,
      sockets: watch,
    })
      .route('/sync', (_req, res) => sendJson(res, 200, { route: 'sync' }))
      .route('/pass', () => false)
      .route('/pass', async () => {
        await sleep(5);
        return false;
      })
      .route('/pass', (_req, res) => sendJson(res, 200, { route: 'third' }))
      .route('/async', async (_req, res) => {
        await sleep(5);
        sendJson(res, 200, { route: 'async' });
      })
      .route('/throws', () => {
        throw new Error('sync failure');
      })
      .route('/rejects', async () => {
        await sleep(5);
        throw new Error('async failure');
      })
      .route('/prefix/*', (_req, res, url) => sendJson(res, 200, { route: url.pathname }));
    const { port } = await server.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${port}`;
  });
  after(() => server.close());

  const get = async (path: string): Promise<[number, unknown]> => {
    const res = await fetch(`${base}${path}`);
    return [res.status, await res.json()];
  };

  it('answers from synchronous and asynchronous routes, in registration order', async () => {
    assert.deepEqual(await get('/sync'), [200, { route: 'sync' }]);
    assert.deepEqual(await get('/async'), [200, { route: 'async' }]);
    assert.deepEqual(await get('/pass'), [200, { route: 'third' }], 'false, sync then async, passes on');
    assert.deepEqual(await get('/prefix/a/b?q=1'), [200, { route: '/prefix/a/b' }]);
    assert.deepEqual(await get('/nowhere'), [404, { error: 'not found' }]);
  });

  it('answers a route that throws or rejects with 500, logged with its path', async () => {
    assert.deepEqual(await get('/throws'), [500, { error: 'internal server error' }]);
    assert.deepEqual(await get('/rejects'), [500, { error: 'internal server error' }]);
    assert.deepEqual(
      logged.map((l) => [l.msg, l.path]),
      [
        ['http handler failed', '/throws'],
        ['http handler failed', '/rejects'],
      ],
    );
  });

  it('tells the socket watch when each request starts and when its response was sent', async () => {
    events.length = 0;
    await get('/sync');
    await get('/async');
    await waitUntil(() => events.filter((e) => e === 'ended').length === 2, 2000, 'two responses sent');
    assert.deepEqual(
      events.filter((e) => e !== 'connected'),
      ['started', 'ended', 'started', 'ended'],
    );
  });
});
