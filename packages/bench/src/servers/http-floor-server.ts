/**
 * The HTTP floor of the api-publish scenario (issue 18): the least a Node `http` server can do
 * to answer a publish request, so that Bulwark's `POST /api/publish` has something to be
 * measured against, as raw-ws-server.ts is for fan-out. Per request it:
 *
 * - reads the whole body and `JSON.parse`s it (as Bulwark must),
 * - checks that it is an object with a string `channel` and a `data` field (else HTTP 200 with
 *   `{"error":{"code":107,…}}`, Bulwark's answer to a bad request),
 * - counts the channel's publications and answers `{"result":{"offset":N,"epoch":"…"}}`, the
 *   shape of Bulwark's reply, with N the channel's count (so the load generator checks both
 *   servers' offsets alike), and a Content-Length (keep-alive, as Node's default).
 *
 * Nothing else: no API key, no history, no subscribers, no metrics. `GET /ready` answers 200
 * like Bulwark's readiness probe; any other path 404.
 *
 * Usage: `node http-floor-server.js --port 0 [--host 127.0.0.1] [--watch-stdin]`; prints
 * `{"listening":<port>}` on stdout; exits on SIGTERM/SIGINT and, with `--watch-stdin`, when its
 * stdin closes (the bench holds it open, so the server never outlives the bench process).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'watch-stdin': { type: 'boolean', default: false },
  },
});

/** One epoch for the process's life, as a memory-engine Bulwark has one per channel stream. */
const epoch = randomBytes(4).toString('hex');
/** Publications per channel: the offset of the next reply. */
const offsets = new Map<string, number>();

const BAD_REQUEST = '{"error":{"code":107,"message":"bad request"}}';

function answer(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(req.url === '/ready' || req.url === '/health' ? 200 : 404).end();
    return;
  }
  if (req.url !== '/api/publish') {
    answer(res, 404, '{"error":{"code":104,"message":"method not found"}}');
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let body: { channel?: unknown; data?: unknown } | null;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
    } catch {
      answer(res, 400, '{"error":{"code":107,"message":"malformed JSON body"}}');
      return;
    }
    if (typeof body !== 'object' || body === null || typeof body.channel !== 'string' || !('data' in body)) {
      answer(res, 200, BAD_REQUEST);
      return;
    }
    const offset = (offsets.get(body.channel) ?? 0) + 1;
    offsets.set(body.channel, offset);
    answer(res, 200, `{"result":{"offset":${offset},"epoch":"${epoch}"}}`);
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
