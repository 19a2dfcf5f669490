/**
 * A connection worker: a child process of the load generator (started by {@link ConnFleet})
 * that opens a slice of the idle connections — each with its own JWT and one subscription —
 * holds them, and reports over IPC. One process holds at most ~18,000 sockets because the
 * open-file limit (20,000 here) is per process.
 *
 * Messages: see conn-worker-protocol.ts. The worker exits when told to close, and also as soon
 * as its parent goes away (IPC disconnect), so no worker outlives a crashed or killed run.
 *
 * @module
 */
import { connectionToken } from '../harness/jwt.js';
import { mapLimit, sleep } from '../harness/util.js';
import { LeanClient } from './lean-client.js';
import {
  errorKind,
  sourceEndpoint,
  type ConnWorkerStart,
  type FromConnWorker,
  type ToConnWorker,
} from './conn-worker-protocol.js';

const PROGRESS_EVERY_MS = 250;

/** Every client ever created here (failed ones included), so `close` destroys them all. */
const clients: LeanClient[] = [];
/** The clients whose subscribe was confirmed. */
const established: LeanClient[] = [];
let closedAfterEstablished = 0;
const closeCodes: Record<string, number> = {};

// Counts since the last progress message.
let connected = 0;
let failed = 0;
let rejected = 0;
let handshakeMs: number[] = [];
let errors: Record<string, number> = {};

function send(msg: FromConnWorker): void {
  if (process.connected) process.send?.(msg);
}

function flush(done: boolean): void {
  send({ type: 'progress', connected, failed, rejected, handshakeMs, errors, done });
  connected = 0;
  failed = 0;
  rejected = 0;
  handshakeMs = [];
  errors = {};
}

/** destroyAll destroys every socket at once (FIN to the server; no close handshake to wait for). */
function destroyAll(): number {
  const t0 = performance.now();
  for (const c of clients) c.terminate();
  return performance.now() - t0;
}

/** openOne opens connection i: socket, connect with its JWT, subscribe; retries HTTP 503. */
async function openOne(start: ConnWorkerStart, i: number): Promise<void> {
  const token = connectionToken(`user-${i}`, start.tokenSecret);
  let source = sourceEndpoint(start.sourcePrefix, start.sourceIps, i);
  for (let attempt = 0; ; attempt++) {
    let isEstablished = false;
    const h0 = performance.now();
    const client = new LeanClient({
      url: start.url,
      protocol: 'centrifugo',
      ...source,
      onClose: (code) => {
        if (!isEstablished) return;
        closedAfterEstablished++;
        closeCodes[code] = (closeCodes[code] ?? 0) + 1;
      },
    });
    clients.push(client);
    try {
      await client.open();
    } catch (err) {
      const message = (err as Error).message;
      // The assigned port is taken (a listener on 0.0.0.0, a socket of an earlier run with the
      // same --source-prefix): let the kernel choose one on the same address.
      if (source && source.localPort !== 0 && /EADDRINUSE/.test(message)) {
        source = { localAddress: source.localAddress, localPort: 0 };
        attempt--;
        continue;
      }
      // Admission refused the upgrade (overload, limit): back off and try again, as a client would.
      if (attempt < start.retries && /server response: 503/.test(message)) {
        rejected++;
        await sleep(500 + Math.random() * 1000 * (attempt + 1));
        continue;
      }
      throw err;
    }
    try {
      await client.connect(token, start.timeoutMs);
      await client.subscribe(`bench:idle${i % start.channels}`, undefined, start.timeoutMs);
    } catch (err) {
      client.terminate();
      throw err;
    }
    handshakeMs.push(performance.now() - h0);
    isEstablished = true;
    established.push(client);
    connected++;
    return;
  }
}

async function run(start: ConnWorkerStart): Promise<void> {
  const timer = setInterval(() => flush(false), PROGRESS_EVERY_MS);
  await mapLimit(
    start.to - start.from,
    start.concurrency,
    (k) => openOne(start, start.from + k),
    (_k, err) => {
      failed++;
      const kind = errorKind((err as Error).message);
      errors[kind] = (errors[kind] ?? 0) + 1;
    },
  );
  clearInterval(timer);
  flush(true);
}

process.on('message', (msg: ToConnWorker) => {
  if (msg.type === 'start') {
    void run(msg);
  } else if (msg.type === 'snapshot') {
    let open = 0;
    let pinged = 0;
    let pings = 0;
    for (const c of established) {
      if (c.closeCode === undefined) open++;
      if (c.pings > 0) pinged++;
      pings += c.pings;
    }
    send({ type: 'snapshot', id: msg.id, open, closed: closedAfterEstablished, closeCodes, pinged, pings });
  } else if (msg.type === 'close') {
    const ms = destroyAll();
    // Exit once the message is written; the destroyed sockets need no more work from us.
    const exit = () => process.exit(0);
    if (process.connected && process.send) process.send({ type: 'closed', ms } satisfies FromConnWorker, exit);
    else exit();
    setTimeout(exit, 1000).unref();
  }
});

// The parent is gone (finished, crashed or killed): never outlive it holding sockets.
process.on('disconnect', () => {
  destroyAll();
  process.exit(0);
});

send({ type: 'ready' });
