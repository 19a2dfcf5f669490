import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { pino } from 'pino';
import { demoConfig } from '../src/cli/demo-config.js';
import { Node } from '../src/node.js';

// The demo board is what `npm start` shows first: its page, the SDK bundle it loads and the token
// endpoint must work, and a token from that endpoint must let two clients see each other's posts.
describe('demo bulletin board', () => {
  let node: Node;
  let base: string;
  before(async () => {
    node = new Node(
      { ...demoConfig(), http_server: { port: 0, address: '127.0.0.1' } },
      { logger: pino({ level: 'silent' }) },
    );
    const { port } = await node.start();
    base = `http://127.0.0.1:${port}`;
  });
  after(() => node.shutdown());

  it('serves the page and the centrifuge browser bundle', async () => {
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script src="\/demo\/centrifuge.js"><\/script>/);
    const bundle = await fetch(`${base}/demo/centrifuge.js`);
    assert.equal(bundle.status, 200);
    assert.match(bundle.headers.get('content-type') ?? '', /javascript/);
    assert.match(await bundle.text(), /Centrifuge/);
  });

  it('rejects bad demo user names', async () => {
    assert.equal((await fetch(`${base}/demo/token?user=`)).status, 400);
    assert.equal((await fetch(`${base}/demo/token?user=${encodeURIComponent('<script>')}`)).status, 400);
  });

  it('signs tokens with which two clients see each other on the board', async (t) => {
    const token = async (user: string) =>
      ((await (await fetch(`${base}/demo/token?user=${user}`)).json()) as { token: string }).token;
    const url = base.replace('http', 'ws') + '/connection/websocket';
    const alice = new Centrifuge(url, { websocket: WebSocket, getToken: () => token('alice') });
    const bob = new Centrifuge(url, { websocket: WebSocket, getToken: () => token('bob') });
    t.after(() => {
      alice.disconnect();
      bob.disconnect();
    });
    const aliceSub = alice.newSubscription('board:team-red');
    const bobSub = bob.newSubscription('board:team-red');
    const got = new Promise<{ data: unknown; user: string | undefined }>((resolve) =>
      bobSub.on('publication', (ctx) => resolve({ data: ctx.data, user: ctx.info?.user })),
    );
    aliceSub.subscribe();
    bobSub.subscribe();
    alice.connect();
    bob.connect();
    await Promise.all([aliceSub.ready(3000), bobSub.ready(3000)]);
    await aliceSub.publish({ text: 'raid at 8' });
    assert.deepEqual(await got, { data: { text: 'raid at 8' }, user: 'alice' });
  });
});
