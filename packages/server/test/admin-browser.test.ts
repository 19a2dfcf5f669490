/**
 * The operator console in a real browser (Debian's Chromium driven by playwright-core): log in,
 * read the overview, switch connections off with a kill switch (a client is refused) and on
 * again (it gets in), find a channel, read its history — where a payload carrying markup is
 * shown as text and never runs — publish to it (a real SDK subscriber receives it), look a
 * player up, and drain the node (the subscriber is disconnected with 3001). Screenshots go to a
 * temporary folder, or to docs/admin/ with BULWARK_UPDATE_SCREENSHOTS=1 (how the committed
 * ones were made).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Centrifuge } from 'centrifuge';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import WebSocket from 'ws';
import { signConnectionToken } from '../src/auth/token-signer.js';
import { Node } from '../src/node.js';

const chromiumPath = '/usr/bin/chromium';
const required = process.env['BULWARK_REQUIRE_SERVICES'] === '1';
const missing = existsSync(chromiumPath) ? '' : `${chromiumPath} not installed (apt-get install chromium)`;
if (missing !== '' && !required) console.log(`# skipping browser tests: ${missing}`);

const password = 'launch-day-password';
const secret = randomBytes(24).toString('hex');
const updating = process.env['BULWARK_UPDATE_SCREENSHOTS'] === '1';
const shots = updating
  ? fileURLToPath(new URL('../../../../docs/admin/', import.meta.url))
  : mkdtempSync(join(tmpdir(), 'bulwark-admin-shots-'));

/** wsStatus opens a WebSocket to the node and resolves with 101 (open) or the refusal's status. */
function wsStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => undefined);
  });
}

describe('admin console in Chromium', { skip: missing !== '' && !required ? missing : false }, () => {
  let node: Node;
  let base: string;
  let wsUrl: string;
  let browser: Browser;
  let page: Page;
  let player: Centrifuge;
  const received: unknown[] = [];
  let disconnectCode = 0;

  before(async () => {
    node = new Node(
      {
        http_server: { port: 0, address: '127.0.0.1' },
        client: { token: { hmac_secret_key: secret } },
        http_api: { key: randomBytes(16).toString('hex') },
        admin: { enabled: true, password, secret: randomBytes(32).toString('hex') },
        drain: { window: '200ms' },
        channel: {
          namespaces: [
            { name: 'chat', history_size: 50, history_ttl: '300s', presence: true, allow_subscribe_for_client: true },
          ],
        },
      },
      { logger: pino({ level: 'silent' }) },
    );
    const { port } = await node.start();
    base = `http://127.0.0.1:${port}`;
    wsUrl = `ws://127.0.0.1:${port}/connection/websocket`;
    player = new Centrifuge(wsUrl, {
      websocket: WebSocket,
      token: await signConnectionToken({ secret, user: 'mira' }),
      minReconnectDelay: 60_000,
    });
    player.on('disconnected', (ctx) => (disconnectCode = ctx.code));
    const sub = player.newSubscription('chat:lobby');
    sub.on('publication', (ctx) => received.push(ctx.data));
    const subscribed = new Promise((resolve) => sub.once('subscribed', resolve));
    sub.subscribe();
    player.connect();
    await subscribed;
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('dialog', (d) => void d.accept());
    mkdirSync(shots, { recursive: true });
  });
  after(async () => {
    player?.disconnect();
    await browser?.close();
    await node?.shutdown();
  });

  it('logs in and shows the live overview', async () => {
    await page.goto(`${base}/admin`);
    await page.fill('#password', 'not the password');
    await page.click('#login-form button');
    await page.waitForSelector('#login-error:has-text("wrong password")');
    await page.fill('#password', password);
    await page.click('#login-form button');
    await page.waitForSelector('#app:not([hidden])');
    await page.waitForSelector('#ov-connections:text-is("1")');
    await page.waitForSelector(`#nodes tbody tr td:has-text("${node.name}")`);
    // A few points on the live charts (one a second) for the committed screenshots; a test
    // run's screenshots go to a temporary folder, and waiting would only make it slower.
    if (updating) await page.waitForTimeout(5000);
    await page.screenshot({ path: join(shots, 'overview.png') });
  });

  it('switches connections off and on again with a kill switch', async () => {
    await page.click('nav button[data-page="controls"]');
    await page.selectOption('#switch-kind', 'connect');
    await page.fill('#switch-reason', 'patch deploying');
    await page.click('#switch-form button');
    await page.waitForSelector('#switches li:has-text("patch deploying")');
    assert.equal(await wsStatus(wsUrl), 503, 'a new client is refused');
    await page.screenshot({ path: join(shots, 'controls.png') });
    await page.click('#switches li button');
    await page.waitForSelector('#switches li:has-text("No kill switch is set")');
    assert.equal(await wsStatus(wsUrl), 101, 'and served again');
  });

  it('shows history as text, publishes to a channel, and finds a player', async () => {
    const evil = '<img src=x onerror=window.__xss=1>';
    const api = (method: string, params: object) =>
      fetch(`${base}/api/${method}`, {
        method: 'POST',
        headers: { 'x-api-key': node.config.http_api.key },
        body: JSON.stringify(params),
      });
    await api('publish', { channel: 'chat:lobby', data: { text: evil } });
    await page.click('nav button[data-page="channels"]');
    await page.fill('#channel-pattern', 'chat:*');
    await page.click('#channels-form button');
    await page.click('#channels tbody tr:has-text("chat:lobby") button');
    await page.waitForSelector('#history li');
    assert.ok((await page.textContent('#history'))?.includes(evil), 'the markup is shown as text');
    assert.equal(await page.locator('#history img').count(), 0, 'and never becomes an element');
    assert.equal(await page.evaluate('window.__xss'), undefined);

    await page.fill('#publish-data', '{"text": "raid in 5 minutes"}');
    await page.click('#publish-form button');
    await page.waitForSelector('#history li:has-text("raid in 5 minutes")');
    await page.screenshot({ path: join(shots, 'channels.png') });
    assert.deepEqual(received.at(-1), { text: 'raid in 5 minutes' }, 'the subscriber received the console post');

    await page.click('nav button[data-page="player"]');
    await page.fill('#player-user', 'mira');
    await page.click('#player-form button');
    await page.waitForSelector('#player-connections li:has-text("chat:lobby")');
  });

  it('fits a phone screen', async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
    await phone.goto(`${base}/admin`);
    await phone.fill('#password', password);
    await phone.click('#login-form button');
    await phone.waitForSelector('#ov-connections:text-is("1")');
    const overflow = (await phone.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number;
    assert.ok(overflow <= 1, `no sideways scrolling (${overflow}px)`);
    await phone.screenshot({ path: join(shots, 'phone.png') });
    await phone.close();
  });

  it('drains the node: clients are disconnected with 3001', async () => {
    await page.click('nav button[data-page="controls"]');
    await page.fill('#drain-window', '200');
    await page.click('#drain-form button');
    await page.waitForSelector('#status:has-text("Draining")');
    // Until the player is disconnected: 3001 lets the SDK reconnect, so it reports "connecting",
    // not "disconnected", and only a terminal code would set disconnectCode.
    const deadline = Date.now() + 5000;
    while (disconnectCode === 0 && player.state === 'connected' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(node.draining, true);
    assert.ok(disconnectCode === 3001 || player.state !== 'connected', `disconnected (${disconnectCode})`);
  });
});
