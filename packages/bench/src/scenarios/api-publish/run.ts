/**
 * One run of the api-publish scenario on a started server: K keep-alive connections in a closed
 * loop (each writes its next request as soon as the reply to the previous one arrived), as fast
 * as the server answers, publishing round robin over C channels — one publish per
 * `POST /api/publish`, or B per `POST /api/batch` in the batch run.
 *
 * Timeline: warm-up (load, not measured), then the measured window (replies counted, latency
 * recorded, server and load-generator CPU read at both ends), then the drain (no new requests;
 * the ones in flight are awaited so the offset ledger is complete). Every reply is checked
 * (requests.ts) in every phase; with --verify-subscribers one WebSocket subscriber per channel
 * counts what Bulwark delivered against what it acknowledged.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { saturation } from '../../harness/comparison.js';
import { readTreeCpuMicros } from '../../harness/proc.js';
import { watchRunQueueWait } from '../../harness/run-queue.js';
import type { Log } from '../../harness/scenario.js';
import { LatencyRecorder, roundSummary } from '../../harness/stats.js';
import type { RunningServer } from '../../harness/targets.js';
import { round, sleep, waitFor } from '../../harness/util.js';
import { ChatClient } from '../../load/chat-client.js';
import { KeepAliveConnection, postRequest, requestHead, type HttpReply } from '../../load/keepalive-http.js';
import { OffsetLedger, batchBody, channelNames, publishParams, readBatchReply, readPublishReply } from './requests.js';
import type { ApiPublishOptions, ApiRunName, ApiRunResult } from './types.js';

/** How many error messages a result keeps, as read. */
const ERROR_SAMPLES = 5;

/** The API key sent to the floor, which ignores it: the same request bytes as Bulwark's. */
const FLOOR_KEY = '0123456789abcdef0123456789abcdef';

/** RunHooks let the caller watch a run: its progress, 0..1 over warm-up and window. */
export interface RunHooks {
  log: Log;
  progress?: (fraction: number, status: string) => void;
}

/** runApiLoad makes run `run` (floor, bulwark or batch) against `server` and measures it. */
export async function runApiLoad(
  server: RunningServer,
  run: ApiRunName,
  o: ApiPublishOptions,
  hooks: RunHooks,
): Promise<ApiRunResult> {
  const batch = run === 'batch';
  const perRequest = batch ? o.batchSize : 1;
  const head = requestHead(batch ? '/api/batch' : '/api/publish', `127.0.0.1:${server.port}`, {
    'X-API-Key': server.apiKey ?? FLOOR_KEY,
    'Content-Type': 'application/json',
  });
  const pad = 'x'.repeat(o.padBytes);
  const names = channelNames(randomBytes(3).toString('hex'), o.channels);
  const ledger = new OffsetLedger(o.channels);
  const recorder = new LatencyRecorder();
  const errorSamples: string[] = [];
  let errors = 0;
  let seq = 0;
  let phase: 'warmup' | 'window' | 'drain' = 'warmup';
  let requests = 0;
  let publishes = 0;
  let windowStartMs = 0;
  const publishesBySecond: number[] = [];

  const opened = await Promise.allSettled(
    Array.from({ length: o.connections }, () => KeepAliveConnection.connect(server.port)),
  );
  const conns = opened.flatMap((x) => (x.status === 'fulfilled' ? [x.value] : []));
  const refused = opened.find((x) => x.status === 'rejected');
  if (refused) {
    // None left open behind a failed run.
    for (const c of conns) c.close();
    throw new Error(`could not open ${opened.length - conns.length} connections: ${String(refused.reason)}`);
  }
  const subscribers: ChatClient[] = [];
  const delivered = new Array<number>(o.channels).fill(0);
  try {
    if (o.verifySubscribers && server.name === 'bulwark') {
      for (let ch = 0; ch < o.channels; ch++) {
        subscribers.push(new ChatClient(server.wsUrl, names[ch] as string, () => delivered[ch]!++));
      }
      const id = (i: number) => ({ user: `sub${i}`, name: 'bench', version: '1' });
      await Promise.all(subscribers.map((s, i) => s.join(id(i), server.tokenSecret)));
    }

    const fail = (why: string) => {
      errors++;
      if (errorSamples.length < ERROR_SAMPLES) errorSamples.push(why);
    };
    const fire = (conn: KeepAliveConnection): void => {
      const channels: number[] = [];
      let body: string;
      if (batch) {
        const items: Array<[string, number]> = [];
        for (let i = 0; i < perRequest; i++, seq++) {
          items.push([names[seq % o.channels] as string, seq]);
          channels.push(seq % o.channels);
        }
        body = batchBody(items, pad, o.batchParallel);
      } else {
        channels.push(seq % o.channels);
        body = publishParams(names[seq % o.channels] as string, seq, pad);
        seq++;
      }
      const sentAt = performance.now();
      conn.send(postRequest(head, body), (err, reply) => onReply(conn, channels, sentAt, err, reply));
    };
    const onReply = (
      conn: KeepAliveConnection,
      channels: number[],
      sentAt: number,
      err: Error | undefined,
      reply: HttpReply | undefined,
    ): void => {
      const now = performance.now();
      if (err || !reply) {
        // The connection is gone: it sends no more (the run goes on with the others).
        fail(err?.message ?? 'no reply');
        return;
      }
      const read = batch ? readBatchReply(reply, perRequest) : readPublishReply(reply);
      if ('error' in read) fail(read.error);
      else {
        read.offsets.forEach((offset, i) => ledger.add(channels[i] as number, offset));
        if (phase === 'window') {
          requests++;
          publishes += channels.length;
          recorder.add(now - sentAt);
          const sec = Math.floor((now - windowStartMs) / 1000);
          publishesBySecond[sec] = (publishesBySecond[sec] ?? 0) + channels.length;
        }
      }
      if (phase !== 'drain') fire(conn);
    };

    const total = o.warmupSeconds + o.seconds;
    const started = performance.now();
    const ticker = setInterval(() => {
      const f = Math.min(1, (performance.now() - started) / 1000 / total);
      hooks.progress?.(f, `${run}: ${phase}, ${ledger.total.toLocaleString('en-US')} publishes, ${errors} errors`);
    }, 250);
    let window: { seconds: number; cpuMicros: number; own: NodeJS.CpuUsage; serverWait: number; ownWait: number };
    const loop = monitorEventLoopDelay({ resolution: 10 });
    try {
      for (const c of conns) fire(c);
      await sleep(o.warmupSeconds * 1000);
      const cpu0 = readTreeCpuMicros(server.pid);
      const own0 = process.cpuUsage();
      // Main threads only: the event loop waiting is what delays replies.
      const serverWait = watchRunQueueWait(server.pid, true);
      const ownWait = watchRunQueueWait(process.pid, true);
      windowStartMs = performance.now();
      loop.enable();
      phase = 'window';
      await sleep(o.seconds * 1000);
      phase = 'drain';
      const windowEndMs = performance.now();
      const own = process.cpuUsage(own0);
      loop.disable();
      window = {
        seconds: (windowEndMs - windowStartMs) / 1000,
        cpuMicros: readTreeCpuMicros(server.pid) - cpu0,
        own,
        serverWait: serverWait(),
        ownWait: ownWait(),
      };
    } finally {
      clearInterval(ticker);
    }
    if (!(await waitFor(() => conns.every((c) => !c.busy), 10_000))) {
      fail(`${conns.filter((c) => c.busy).length} requests unanswered 10 s after the window`);
    }
    if (subscribers.length > 0) {
      const arrived = () => delivered.every((n, ch) => n >= ledger.ackedOn(ch));
      if (!(await waitFor(arrived, 5000))) hooks.log(`  ${run}: deliveries still missing 5 s after the drain`);
    }

    const wallMicros = window.seconds * 1e6;
    const serverCpuPercent = round((window.cpuMicros / wallMicros) * 100, 1);
    const loadgenCpuPercent = round(((window.own.user + window.own.system) / wallMicros) * 100, 1);
    const result: ApiRunResult = {
      run,
      requestKind: batch ? `POST /api/batch × ${perRequest}` : 'POST /api/publish',
      connections: o.connections,
      channels: o.channels,
      publishesPerRequest: perRequest,
      seconds: round(window.seconds, 2),
      requests,
      publishes,
      requestsPerSec: round(requests / window.seconds, 0),
      publishesPerSec: round(publishes / window.seconds, 0),
      latencyMs: roundSummary(recorder.summary(), 3),
      errors,
      errorSamples,
      acknowledged: ledger.total,
      offsetMismatches: ledger.mismatches(),
      ...(subscribers.length > 0
        ? { delivered: delivered.reduce((a, b) => a + b, 0), expectedDeliveries: ledger.total }
        : {}),
      serverCpuMicros: Math.round(window.cpuMicros),
      serverCpuPercent,
      serverCpuMicrosPerPublish: round(publishes > 0 ? window.cpuMicros / publishes : Number.NaN, 2),
      publishesPerServerCpuSecond: round(window.cpuMicros > 0 ? publishes / (window.cpuMicros / 1e6) : Number.NaN, 0),
      serverRunQueueWaitPercent: window.serverWait,
      loadgenRunQueueWaitPercent: window.ownWait,
      loadgenCpuPercent,
      loadgenLoopDelayMs: { p99: round(loop.percentile(99) / 1e6, 1), max: round(loop.max / 1e6, 1) },
      saturated: saturation(serverCpuPercent, loadgenCpuPercent),
      // Whole seconds only: the last bucket holds the window's few extra milliseconds.
      publishesBySecond: Array.from(publishesBySecond, (n) => n ?? 0).slice(0, Math.floor(window.seconds)),
    };
    return result;
  } finally {
    for (const c of conns) c.close();
    for (const s of subscribers) s.terminate();
  }
}
