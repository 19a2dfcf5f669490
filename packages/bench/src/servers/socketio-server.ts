/**
 * The Socket.IO reference server: what a typical Node.js realtime stack does for the same job
 * as the raw-ws reference server, written the idiomatic Socket.IO 4 way (rooms, acks,
 * `io.to(room).emit`), so the bench can put Bulwark beside the most common alternative.
 *
 * Same semantics as `raw-ws-server.ts`:
 *
 * - WebSocket transport only (no HTTP long-polling, no upgrade dance), no per-message deflate,
 *   no HTTP compression: clients connect to `/socket.io/?EIO=4&transport=websocket`.
 * - `emit('sub', channel, token, ack)` joins the room `channel` and acks `channel`. With
 *   `--jwt-secret`, the first subscribe of a connection must carry a valid HS256 token
 *   (verified with the same {@link verifyHs256} as the raw server); an invalid token is acked
 *   `{"error":"invalid token"}` and the connection is closed.
 * - `emit('pub', channel, data)` broadcasts `emit('push', channel, data)` to the room: on the
 *   wire `42["push","<channel>",<data>]`. Socket.IO re-serialises `data` (JSON.parse then
 *   JSON.stringify), which keeps the bench markers first and in order, so the load generator's
 *   byte search still finds them. The room broadcast encodes the packet (and even the
 *   WebSocket frame) once for all members: Socket.IO's own fast path.
 * - `GET /ready` (and `/health`) answers 200 from the HTTP server Socket.IO attaches to.
 *
 * Socket.IO's defaults are kept otherwise (notably its heartbeat: a ping every 25 s that the
 * client must answer within 20 s), as a Socket.IO deployment would run.
 *
 * Usage: `node socketio-server.js --port 0 [--host 127.0.0.1] [--jwt-secret S] [--watch-stdin]`;
 * prints `{"listening":<port>}` on stdout; exits on SIGTERM/SIGINT and, with `--watch-stdin`,
 * when its stdin closes.
 *
 * @module
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Server } from 'socket.io';
import { verifyHs256 } from '../harness/jwt.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'jwt-secret': { type: 'string' },
    'watch-stdin': { type: 'boolean', default: false },
  },
});
const secret = values['jwt-secret'];

// Engine.IO takes over the `request` listeners and hands everything outside /socket.io/ back here.
const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/ready' || req.url === '/health' ? 200 : 404).end();
});
const io = new Server(server, {
  transports: ['websocket'],
  allowUpgrades: false,
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
});

type Ack = (reply: unknown) => void;

io.on('connection', (socket) => {
  let authed = secret === undefined;
  socket.on('sub', (channel: unknown, token: unknown, ack: unknown) => {
    // A client may omit the token (no --jwt-secret): the ack is then the second argument.
    const reply: Ack | undefined =
      typeof ack === 'function' ? (ack as Ack) : typeof token === 'function' ? (token as Ack) : undefined;
    if (typeof channel !== 'string') {
      reply?.({ error: 'bad request' });
      return;
    }
    if (!authed) {
      if (!secret || !verifyHs256(token, secret)) {
        reply?.({ error: 'invalid token' });
        // Close after the ack is written: disconnect(true) closes the underlying connection.
        setImmediate(() => socket.disconnect(true));
        return;
      }
      authed = true;
    }
    void socket.join(channel);
    reply?.(channel);
  });
  socket.on('pub', (channel: unknown, data: unknown) => {
    if (typeof channel === 'string') io.to(channel).emit('push', channel, data);
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
