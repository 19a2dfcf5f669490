/**
 * A fan-out subscriber worker: a child process of the fan-out scenario (started by
 * {@link FanoutFleet}) holding one {@link SubscriberSet} — a slice of the subscribers — and
 * answering the parent's requests over IPC (see fanout-worker-protocol.ts). It exits when told
 * to close and as soon as its parent goes away (IPC disconnect), so it never outlives a run.
 *
 * @module
 */
import { nowMicros } from '../harness/util.js';
import { SubscriberSet } from './fanout-subscribers.js';
import {
  PROGRESS_MS,
  type FanoutWorkerReply,
  type FromFanoutWorker,
  type ToFanoutWorker,
} from './fanout-worker-protocol.js';

let set: SubscriberSet | undefined;
let reported = 0;

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function send(msg: FromFanoutWorker): void {
  if (process.connected) process.send?.(msg);
}

function reply(id: number, body: FanoutWorkerReply): void {
  send({ type: 'reply', id, cpuMicros: cpuMicros(), body });
}

// Per-interval delivery counts: what arrived since the last report (nothing sent when idle).
setInterval(() => {
  if (!set || set.delivered === reported) return;
  const delivered = set.delivered - reported;
  reported = set.delivered;
  send({ type: 'progress', delivered, cpuMicros: cpuMicros() });
}, PROGRESS_MS).unref();

async function handle(msg: ToFanoutWorker): Promise<void> {
  switch (msg.type) {
    case 'open':
      set = new SubscriberSet(msg.options);
      reply(msg.id, { failures: await set.open() });
      return;
    case 'clock':
      reply(msg.id, { nowMicros: nowMicros() });
      return;
    case 'offset':
      if (set) set.clockOffsetMicros = msg.micros;
      reply(msg.id, {});
      return;
    case 'phase':
      set?.startPhase(msg.first, msg.startMicros);
      reported = 0;
      reply(msg.id, {});
      return;
    case 'finish': {
      if (!set) throw new Error('finish before open');
      const tally = await set.finishPhase(msg.publishedPer, msg.drainTimeoutMs);
      reply(msg.id, { tally });
      return;
    }
    case 'revive': {
      const r = set ? await set.revive() : { count: 0, errors: [] };
      reply(msg.id, { revived: r.count, errors: r.errors });
      return;
    }
    case 'close': {
      set?.terminate();
      process.exit(0);
    }
  }
}

process.on('message', (msg: ToFanoutWorker) => {
  handle(msg).catch((err: unknown) => {
    process.stderr.write(`fanout worker: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
});

// The parent is gone (finished, crashed or killed): never outlive it holding sockets.
process.on('disconnect', () => {
  set?.terminate();
  process.exit(0);
});

send({ type: 'ready' });
