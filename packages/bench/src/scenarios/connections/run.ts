/**
 * The idle-connections scenario: open many connections, each authenticating with its own
 * HS256 JWT and subscribing to one channel, then leave them idle. Reports the connect rate,
 * the server's CPU time per completed connect+subscribe, and the server's resident memory per
 * idle connection.
 *
 * @module
 */
import type { Log } from '../../harness/scenario.js';
import {
  bulwarkClients,
  makeSessionClient,
  type BulwarkClientName,
  type SessionClient,
} from '../../load/session-clients.js';
import { connectionToken } from '../../harness/jwt.js';
import {
  diffKernelNetCounters,
  readCpuMicros,
  readKernelNetCounters,
  readRssBytes,
  type KernelNetCounters,
} from '../../harness/proc.js';
import { LatencyRecorder, roundSummary, type LatencySummary } from '../../harness/stats.js';
import { type RunningServer } from '../../harness/targets.js';
import { mapLimit, round, sleep } from '../../harness/util.js';

/** ConnectionsOptions size the idle-connections scenario. */
export interface ConnectionsOptions {
  /** Bulwark's client kinds (--format), each measured on a fresh server: one column each. */
  formats: BulwarkClientName[];
  connections: number;
  /** Channels the connections spread over (connection i subscribes to channel i % channels). */
  channels: number;
  /**
   * Channels each connection subscribes to: i % channels, then the next ones (Bulwark only
   * beyond 1: the reference servers speak one subscription per connection).
   */
  subscriptions?: number;
  /** Connects in flight at once. */
  concurrency: number;
  /** Idle time before the baseline RSS reading. */
  baselineSettleMs: number;
  /** Idle time after the last connect before the RSS reading. */
  settleMs: number;
  /**
   * Source addresses to spread connections over (127.0.0.1 … 127.0.0.N); 1 means let the
   * kernel choose (one address has ~28k ephemeral ports, plenty for 10k).
   */
  sourceIps: number;
}

/** ConnectionsResult is the scenario's outcome for one server. */
export interface ConnectionsResult {
  target: string;
  /** What the clients spoke: Bulwark's client kind ("WebSocket, Protobuf"), else the protocol. */
  clients: string;
  requested: number;
  connected: number;
  failed: number;
  firstError?: string;
  connectSeconds: number;
  /** Completed connect+subscribe per second. */
  connectRate: number;
  /** Time from opening the socket to the subscribe confirmation, per connection. */
  handshakeMs: LatencySummary;
  serverCpuMicros: number;
  /** Server CPU time per completed connect+subscribe, µs (TCP accept, upgrade, JWT, subscribe). */
  serverCpuMicrosPerConnect: number;
  /** Subscriptions each connection made. */
  subscriptionsPerConnection: number;
  serverCpuPercent: number;
  loadgenCpuPercent: number;
  rssBaselineBytes: number;
  rssAfterBytes: number;
  /** (RSS after settle − RSS before connecting) / connected. */
  rssPerConnectionBytes: number;
  /** Connections the server closed during the settle period. */
  closedDuringSettle: number;
  /** Machine-wide TCP retransmissions and listen-queue drops while connecting. */
  kernel: KernelNetCounters;
}

/**
 * runConnections runs the idle-connections scenario against a started server; on Bulwark the
 * connections are clients of kind `kind` (see load/session-clients.ts: adding a transport there
 * adds it here).
 */
export async function runConnections(
  server: RunningServer,
  opts: ConnectionsOptions,
  log: Log,
  kind: BulwarkClientName = 'json',
): Promise<ConnectionsResult> {
  const n = opts.connections;
  const subscriptions = opts.subscriptions ?? 1;
  if (subscriptions > 1 && server.protocol !== 'centrifugo') {
    throw new Error(`--subscriptions ${subscriptions}: ${server.name} speaks one subscription per connection`);
  }
  // Sign every token up front so the connect loop measures connecting, not our HMACs.
  const tokens = Array.from({ length: n }, (_, i) => connectionToken(`user-${i}`, server.tokenSecret));
  const clients: SessionClient[] = [];
  const established: SessionClient[] = [];
  const recorder = new LatencyRecorder();
  const errors: string[] = [];
  let connected = 0;
  try {
    await sleep(opts.baselineSettleMs);
    const rss0 = readRssBytes(server.pid);
    const cpu0 = readCpuMicros(server.pid);
    const net0 = readKernelNetCounters();
    const own0 = process.cpuUsage();
    const t0 = performance.now();
    let lastLog = t0;
    await mapLimit(
      n,
      opts.concurrency,
      async (i) => {
        const h0 = performance.now();
        const client = makeSessionClient(
          server,
          kind,
          opts.sourceIps > 1 ? { localAddress: `127.0.0.${1 + (i % opts.sourceIps)}` } : {},
        );
        clients.push(client);
        await client.open();
        const channel = `bench:idle${i % opts.channels}`;
        if (server.protocol === 'centrifugo') {
          await client.connect(tokens[i] as string);
          await client.subscribe(channel);
          for (let k = 1; k < subscriptions; k++) await client.subscribe(`bench:idle${(i + k) % opts.channels}`);
        } else {
          await client.subscribe(channel, tokens[i]);
        }
        recorder.add(performance.now() - h0);
        established.push(client);
        connected++;
        const now = performance.now();
        if (now - lastLog > 2000) {
          lastLog = now;
          log(`  … ${connected}/${n} connected`);
        }
      },
      (_i, err) => {
        errors.push((err as Error).message);
      },
    );
    const t1 = performance.now();
    // A few failures are a result worth reporting; many mean the numbers measure failures.
    if (errors.length > n * 0.01) {
      throw new Error(`${errors.length}/${n} connections failed; first: ${errors[0]}`);
    }
    // Read CPU right away: the server's connect work is done once the last reply is sent.
    const cpu1 = readCpuMicros(server.pid);
    const own = process.cpuUsage(own0);
    const kernel = diffKernelNetCounters(net0, readKernelNetCounters());
    const wallMicros = (t1 - t0) * 1000;
    log(`  ${connected}/${n} connected in ${((t1 - t0) / 1000).toFixed(2)} s; settling ${opts.settleMs} ms`);
    // RSS is read after a settle: no forced GC is possible from outside, so the delta includes
    // whatever garbage the server's heap still holds. Both servers get the same treatment.
    await sleep(opts.settleMs);
    const rss1 = readRssBytes(server.pid);
    const closedDuringSettle = established.filter((c) => c.closeCode !== undefined).length;
    const cpu = cpu1 - cpu0;
    return {
      target: server.name,
      clients: server.name === 'bulwark' ? bulwarkClients[kind].label : server.protocol,
      requested: n,
      connected,
      failed: n - connected,
      ...(errors.length ? { firstError: errors[0] } : {}),
      connectSeconds: round((t1 - t0) / 1000, 3),
      connectRate: round(connected / ((t1 - t0) / 1000), 0),
      handshakeMs: roundSummary(recorder.summary(), 2),
      serverCpuMicros: Math.round(cpu),
      serverCpuMicrosPerConnect: round(connected > 0 ? cpu / connected : Number.NaN, 1),
      subscriptionsPerConnection: subscriptions,
      serverCpuPercent: round((cpu / wallMicros) * 100, 1),
      loadgenCpuPercent: round(((own.user + own.system) / wallMicros) * 100, 1),
      rssBaselineBytes: rss0,
      rssAfterBytes: rss1,
      rssPerConnectionBytes: connected > 0 ? Math.round((rss1 - rss0) / connected) : Number.NaN,
      closedDuringSettle,
      kernel,
    };
  } finally {
    for (const c of clients) c.terminate();
  }
}
