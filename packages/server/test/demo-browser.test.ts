/**
 * The demo board in a real browser (Debian's Chromium driven by playwright-core): it goes live
 * over WebSocket and shows a post published through the API; with WebSocket broken (as by a
 * hostile proxy) it falls back to HTTP-streaming, and with that broken too to SSE, and still
 * shows live posts.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import { demoConfig } from '../src/cli/demo-config.js';
import { Node } from '../src/node.js';

const chromiumPath = '/usr/bin/chromium';
const required = process.env['BULWARK_REQUIRE_SERVICES'] === '1';
const missing = existsSync(chromiumPath) ? '' : `${chromiumPath} not installed (apt-get install chromium)`;
if (missing !== '' && !required) console.log(`# skipping browser tests: ${missing}`);

describe('demo board in Chromium', { skip: missing !== '' && !required ? missing : false }, () => {
  let node: Node;
  let base: string;
  let browser: Browser;

  before(async () => {
    node = new Node(
      { ...demoConfig(), http_server: { port: 0, address: '127.0.0.1' } },
      { logger: pino({ level: 'silent' }) },
    );
    const { port } = await node.start();
    base = `http://127.0.0.1:${port}`;
    // Flags as this machine needs them: no sandbox as root, no background network (closed network).
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await node?.shutdown();
  });

  /** openBoard opens the board, with `broken` transports' endpoints failing, and waits until it is live. */
  async function openBoard(broken: Array<'websocket' | 'http_stream'>): Promise<Page> {
    const page = await browser.newPage();
    if (broken.includes('websocket')) {
      // A proxy that breaks WebSocket: the upgrade never reaches the server and the socket closes.
      await page.routeWebSocket(/\/connection\/websocket/, (ws) => ws.close());
    }
    if (broken.includes('http_stream')) await page.route(/\/connection\/http_stream/, (route) => route.abort());
    await page.goto(`${base}/`);
    await page.waitForSelector('#status.ok', { timeout: 10_000 });
    return page;
  }

  /** postShows publishes through the server API and waits for the text on the page. */
  async function postShows(page: Page, text: string): Promise<void> {
    const res = await fetch(`${base}/api/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': node.config.http_api.key },
      body: JSON.stringify({ channel: 'board:team-red', data: { text, at: Date.now() } }),
    });
    assert.equal(res.status, 200);
    await page.waitForSelector(`#posts li:has-text("${text}")`, { timeout: 5000 });
  }

  it('shows API posts with a time and says when a post is refused', async () => {
    const page = await openBoard([]);
    try {
      const res = await fetch(`${base}/api/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': node.config.http_api.key },
        body: JSON.stringify({ channel: 'board:team-red', data: { text: 'from the backend' } }),
      });
      assert.equal(res.status, 200);
      const item = await page.waitForSelector('#posts li:has-text("from the backend")', { timeout: 5000 });
      assert.match((await item.textContent()) ?? '', /\d{1,2}:\d{2}/, 'the post shows a time');

      await node.setKillSwitch('publish', 'board', 'the board is read-only during the patch');
      await page.fill('#text', 'will this post?');
      await page.click('#post button');
      await page.waitForSelector('#posts li.system:has-text("could not post")', { timeout: 5000 });
      assert.equal(await page.inputValue('#text'), 'will this post?', 'the text is kept to try again');
      await node.removeKillSwitch('publish', 'board');
    } finally {
      await page.close();
    }
  });

  for (const [broken, transport] of [
    [[], 'websocket'],
    [['websocket'], 'http_stream'],
    [['websocket', 'http_stream'], 'sse'],
  ] as const) {
    it(`goes live over ${transport}${broken.length > 0 ? ` when ${broken.join(' and ')} is broken` : ''}`, async () => {
      const page = await openBoard([...broken]);
      try {
        assert.equal(await page.getAttribute('#status', 'data-transport'), transport);
        await postShows(page, `hello over ${transport}`);
      } finally {
        await page.close();
      }
    });
  }
});
