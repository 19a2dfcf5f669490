/**
 * The child process of `churn-memory.test.ts` (run with `--expose-gc`): an in-process node on
 * the memory engine and real WebSocket connections that each connect, subscribe to one of
 * `CHANNELS` channels with presence and join/leave, and drop — as players do all launch day.
 * It churns a warm-up batch, then `n` connections twice, measures the heap after full
 * collections before and after each batch, and prints one JSON line ({@link ChurnReport}).
 * A separate process, so the test runner's own allocations do not blur the heap figures.
 */
import { getHeapStatistics } from 'node:v8';
import WebSocket from 'ws';
import { MemoryBroker } from '../../src/engine/broker-memory.js';
import { MemoryPresenceManager } from '../../src/engine/presence-memory.js';
import { sleep, startTestServer } from './server.js';

/** ChurnReport is what the child prints. */
export interface ChurnReport {
  n: number;
  /** Heap used (bytes, after full GCs) after the warm-up, after n, and after 2n departures. */
  heap: [number, number, number];
  /** Connections that churned, and how many of them were subscribed when they left. */
  total: number;
  subscribed: number;
  /** What the node still holds once everyone left. */
  hubChannels: number;
  presenceChannels: number;
  presenceQueued: number;
  brokerQueued: number;
  ms: number;
}

const CHANNELS = 500;
const PARALLEL = 50;

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? '2000');
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  const broker = new MemoryBroker();
  const presence = new MemoryPresenceManager();
  const srv = await startTestServer(
    {
      channel: {
        namespaces: [{ name: 'game', presence: true, join_leave: true, allow_subscribe_for_client: true }],
      },
      // The machine is shared with other tests: a lagging loop must not refuse the churn.
      protection: { shedding: { enabled: false } },
    },
    { broker, presence },
  );
  let next = 0;
  let subscribed = 0;

  // One user per player: a shared user would meet the per-user rate limits.
  const one = async (i: number): Promise<void> => {
    const token = await srv.token(`player${i}`);
    await new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(srv.url);
      ws.on('error', reject);
      ws.on('open', () => {
        const channel = `game:${i % CHANNELS}`;
        ws.send(
          `${JSON.stringify({ id: 1, connect: { token } })}\n` +
            JSON.stringify({ id: 2, subscribe: { channel, join_leave: true } }),
        );
      });
      ws.on('message', (data: Buffer) => {
        const text = data.toString();
        if (!text.includes('"id":2')) return;
        if (text.includes('"id":2,"subscribe"')) subscribed++;
        ws.terminate();
      });
      ws.on('close', () => resolve());
    });
  };

  const churn = async (count: number): Promise<void> => {
    const end = next + count;
    const worker = async (): Promise<void> => {
      while (next < end) await one(next++);
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    // Let the last sessions finish their asynchronous cleanup.
    await sleep(50);
  };

  const heap = async (): Promise<number> => {
    for (let i = 0; i < 3; i++) {
      await sleep(20);
      gc();
    }
    return getHeapStatistics().used_heap_size;
  };

  const started = Date.now();
  await churn(Math.min(n, 500));
  const h0 = await heap();
  await churn(n);
  const h1 = await heap();
  await churn(n);
  const h2 = await heap();
  const report: ChurnReport = {
    n,
    heap: [h0, h1, h2],
    total: next,
    subscribed,
    hubChannels: srv.node.hub.numChannels,
    presenceChannels: presence.size,
    presenceQueued: presence.queuedDeadlines,
    brokerQueued: broker.queuedDeadlines,
    ms: Date.now() - started,
  };
  await srv.close();
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

await main();
