/**
 * The raw-`ws` reference broadcast server: the floor Bulwark is measured against. It does the
 * least a pub/sub server can do on `ws` and no more:
 *
 * - `{"sub":"ch","token":"<jwt>"}` subscribes the socket to `ch` and is answered `{"sub":"ch"}`.
 *   With `--jwt-secret`, the first subscribe of a connection must carry a valid HS256 token
 *   (verified with node:crypto: the same per-connection work as a real server's JWT check);
 *   an invalid token closes the socket with 3500.
 * - `{"pub":"ch","data":…}` builds one string `{"push":{"channel":"ch","pub":{"data":…}}}`
 *   (the Centrifugo push shape, so the load generator decodes both servers alike) and sends
 *   that same string to every subscriber: `for (const ws of subs) ws.send(sameString)`.
 * - `GET /ready` answers 200, like Bulwark's readiness probe.
 *
 * Fault mode, for the tests of the simulator's own measurements (a server whose misbehaviour is
 * known exactly, so measured loss and latency can be checked against it); off by default, and
 * then the publish path is the plain one above (it is what the bench measures):
 * - `--drop-every N`: the Nth, 2Nth, 3Nth … publication of each channel (counted per channel
 *   from the server's start, whether or not it has subscribers) is dropped: sent to nobody.
 * - `--delay-ms D`: every publication is held D ms before it is broadcast (timers of equal
 *   delay fire in order, so per-channel order is kept).
 *
 * Usage: `node raw-ws-server.js --port 0 [--host 127.0.0.1] [--jwt-secret S] [--watch-stdin]
 * [--drop-every N] [--delay-ms D]`; prints `{"listening":<port>}` on stdout; exits on
 * SIGTERM/SIGINT and, with `--watch-stdin`, when its stdin closes (the bench uses that so the
 * server never outlives the bench process).
 *
 * @module
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { WebSocketServer, type WebSocket } from 'ws';
import { verifyHs256 } from '../harness/jwt.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'jwt-secret': { type: 'string' },
    'watch-stdin': { type: 'boolean', default: false },
    'drop-every': { type: 'string', default: '0' },
    'delay-ms': { type: 'string', default: '0' },
  },
});
const secret = values['jwt-secret'];

/** A flag that must be a whole number ≥ 0 (0: off); anything else stops the server at once. */
function count(name: 'drop-every' | 'delay-ms'): number {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`--${name} must be an integer ≥ 0, got "${values[name]}"\n`);
    process.exit(2);
  }
  return n;
}
const dropEvery = count('drop-every');
const delayMs = count('delay-ms');
const faulty = dropEvery > 0 || delayMs > 0;
/** Publications seen per channel (fault mode only). */
const published = new Map<string, number>();

const channels = new Map<string, Set<WebSocket>>();

/** broadcast sends one publication to the channel's current subscribers. */
function broadcast(channel: string, data: unknown): void {
  const subs = channels.get(channel);
  if (!subs) return;
  const out = JSON.stringify({ push: { channel, pub: { data } } });
  for (const sub of subs) sub.send(out);
}

/** publishFaulty applies --drop-every and --delay-ms to one publication. */
function publishFaulty(channel: string, data: unknown): void {
  const n = (published.get(channel) ?? 0) + 1;
  published.set(channel, n);
  if (dropEvery > 0 && n % dropEvery === 0) return;
  if (delayMs > 0) setTimeout(() => broadcast(channel, data), delayMs);
  else broadcast(channel, data);
}

const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/ready' || req.url === '/health' ? 200 : 404).end();
});
const wss = new WebSocketServer({ server, perMessageDeflate: false, clientTracking: false });

wss.on('connection', (ws) => {
  let authed = secret === undefined;
  const mine: string[] = [];
  ws.on('error', () => ws.terminate());
  ws.on('message', (raw) => {
    let msg: { sub?: unknown; pub?: unknown; token?: unknown; data?: unknown };
    try {
      msg = JSON.parse(String(raw)) as typeof msg;
    } catch {
      ws.close(3501, 'bad request');
      return;
    }
    if (typeof msg.pub === 'string') {
      if (faulty) publishFaulty(msg.pub, msg.data);
      else broadcast(msg.pub, msg.data);
    } else if (typeof msg.sub === 'string') {
      if (!authed) {
        if (!secret || !verifyHs256(msg.token, secret)) {
          ws.close(3500, 'invalid token');
          return;
        }
        authed = true;
      }
      let subs = channels.get(msg.sub);
      if (!subs) channels.set(msg.sub, (subs = new Set()));
      subs.add(ws);
      mine.push(msg.sub);
      ws.send(JSON.stringify({ sub: msg.sub }));
    }
  });
  ws.on('close', () => {
    for (const ch of mine) {
      const subs = channels.get(ch);
      subs?.delete(ws);
      if (subs?.size === 0) channels.delete(ch);
    }
  });
});

server.listen(Number(values.port), values.host, () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ listening: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
});

const exit = () => process.exit(0);
// With --watch-stdin the parent holds our stdin open: when it dies, stdin closes and so do we.
if (values['watch-stdin']) process.stdin.on('end', exit).on('close', exit).resume();
process.on('SIGTERM', exit).on('SIGINT', exit);
