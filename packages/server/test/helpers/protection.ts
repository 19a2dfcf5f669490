/**
 * Helpers of the protection tests (admission, shedding, kill switches, drain): upgrade
 * attempts that report a refusal, the rejections metric, and connected subscribers.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { rawClient, withTimeout, type RawClient, type TestServer } from './server.js';

/** Attempt is the outcome of one upgrade attempt. */
export interface Attempt {
  status: number;
  retryAfter: string | undefined;
  headers: IncomingMessage['headers'];
  body: string;
}

/** upgradeAttempt tries a WebSocket upgrade and reports the refusal (or 101, closing the socket). */
export function upgradeAttempt(url: string): Promise<Attempt> {
  return withTimeout(
    new Promise<Attempt>((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.on('error', reject);
      ws.once('open', () => {
        ws.terminate();
        resolve({ status: 101, retryAfter: undefined, headers: {}, body: '' });
      });
      ws.once('unexpected-response', (_req, res) => {
        const retry = res.headers['retry-after'];
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: Array.isArray(retry) ? retry[0] : retry,
            headers: res.headers,
            body,
          });
          ws.terminate();
        });
      });
    }),
    5000,
    'upgrade attempt',
  );
}

/** rejectionsMetric reads bulwark_rejections_total{reason} from GET /metrics (0 when absent). */
export async function rejectionsMetric(httpUrl: string, reason: string): Promise<number> {
  const res = await fetch(`${httpUrl}/metrics`);
  return rejectionsIn(await res.text(), reason);
}

/** rejectionsIn reads bulwark_rejections_total{reason} from the text of a /metrics scrape (0 when absent). */
export function rejectionsIn(metrics: string, reason: string): number {
  const m = new RegExp(`^bulwark_rejections_total\\{[^}]*reason="${reason}"[^}]*\\} (\\d+)$`, 'm').exec(metrics);
  return m ? Number(m[1]) : 0;
}

/** connectClient opens a raw client, connects it as `user` and subscribes it to `channel`. */
export async function connectClient(srv: TestServer, user: string, channel: string): Promise<RawClient> {
  const c = await rawClient(srv.url);
  const reply = await c.connect(await srv.token(user));
  assert.ok(reply.connect, JSON.stringify(reply));
  const sub = await c.call('subscribe', { channel });
  assert.ok(sub.subscribe, JSON.stringify(sub));
  return c;
}

/** assertAllReceive publishes from `from` to `channel` and checks every client gets the publication. */
export async function assertAllReceive(
  clients: RawClient[],
  from: RawClient,
  channel: string,
  text: string,
): Promise<void> {
  const reply = await from.call('publish', { channel, data: { text } });
  assert.ok(reply.publish !== undefined && !reply.error, JSON.stringify(reply));
  await Promise.all(
    clients.map((c) =>
      c.waitFor((m) => m.push?.channel === channel && (m.push.pub?.data as { text?: string })?.text === text),
    ),
  );
}

/** assertRetryAfterIn checks an attempt is a 503 with a whole-second Retry-After in [lo, hi]. */
export function assertRetryAfterIn(a: Attempt, lo: number, hi: number): number {
  assert.equal(a.status, 503);
  assert.match(a.retryAfter ?? '', /^\d+$/, 'Retry-After in whole seconds');
  const s = Number(a.retryAfter);
  assert.ok(s >= lo && s <= hi, `Retry-After ${s} not in [${lo}, ${hi}]`);
  return s;
}
