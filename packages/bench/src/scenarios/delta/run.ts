/**
 * The delta scenario: what delta compression (Fossil) saves and costs on a board-like channel —
 * each channel's state is a board of ~2 KB JSON, and each publication is that whole state after
 * one small edit (a cell's votes, owner or text), as a game backend publishes a team board.
 *
 * For each format (JSON, Protobuf) two runs, each on a fresh Bulwark with the same config (the
 * `board` namespace: history, forced recovery, `allowed_delta_types: ["fossil"]`), the same
 * subscribers (subscriber i on channel i mod channels) and the same publications (a fixed
 * rate, round-robin over the channels, from one JSON client): once with full payloads, once
 * with every subscriber asking for `delta: "fossil"`. Measured over the fixed-rate window:
 * WebSocket bytes the subscribers received per delivery (payload and frame header), and the
 * server's CPU time per delivery. The tests (packages/server/test/delta.test.ts) check that
 * the SDK reconstructs every publication; here only the counts are checked.
 *
 * @module
 */
import type { Log } from '../../harness/scenario.js';
import { connectionToken } from '../../harness/jwt.js';
import { readTreeCpuMicros } from '../../harness/proc.js';
import { type ScenarioReport } from '../../harness/report.js';
import {
  bulwarkAvailable,
  onFreshBulwark,
  ServerRunError,
  type RunningServer,
  type StartOptions,
} from '../../harness/targets.js';
import { mapLimit, round, sleep, waitFor } from '../../harness/util.js';
import { BoardSubscriber, type BoardFormat } from '../../load/board-subscriber.js';
import { LeanClient } from '../../load/lean-client.js';
import type { DeltaComparison, DeltaOptions, DeltaResult, DeltaRun } from './types.js';

const channelName = (ch: number) => `board:ch${ch}`;

/** The namespace both runs use: only the subscribers' `delta` option differs. */
export const boardNamespace = {
  name: 'board',
  history_size: 10,
  history_ttl: '60s',
  force_recovery: true,
  allow_subscribe_for_client: true,
  allow_publish_for_client: true,
  allowed_delta_types: ['fossil'],
};

/** Board is one channel's state: `cells` cells, one of which each edit changes a little. */
export class Board {
  private readonly cells: Array<{ id: string; owner: string; text: string; votes: number; tags: string[] }>;
  private step = 0;

  constructor(
    private readonly channel: number,
    cells: number,
  ) {
    this.cells = Array.from({ length: cells }, (_, i) => ({
      id: `cell-${i}`,
      owner: `player-${(i * 7) % 13}`,
      text: `Raid at dawn, bring potions and scrolls: meet at gate ${i}`,
      votes: i,
      tags: ['raid', 'guild', i % 2 ? 'east' : 'west'],
    }));
  }

  /** edit changes one cell and returns the whole board as JSON. */
  edit(): string {
    this.step++;
    const cell = this.cells[(this.step * 5) % this.cells.length] as Board['cells'][number];
    if (this.step % 3 === 0) cell.owner = `player-${this.step % 17}`;
    else if (this.step % 3 === 1) cell.votes += this.step;
    else cell.text = `Edit ${this.step}: meet at the east gate at dawn`;
    return JSON.stringify({ board: this.channel, step: this.step, cells: this.cells });
  }
}

/** runOnce measures one run on a started server. */
async function runOnce(
  server: RunningServer,
  opts: DeltaOptions,
  format: BoardFormat,
  delta: boolean,
  log: Log,
): Promise<Omit<DeltaRun, 'label'>> {
  const subs: BoardSubscriber[] = [];
  const boards = Array.from({ length: opts.channels }, (_, ch) => new Board(ch, opts.cells));
  const publisher = new LeanClient({ url: server.wsUrl, protocol: 'centrifugo' });
  try {
    const failures: string[] = [];
    await mapLimit(
      opts.subscribers,
      opts.connectConcurrency,
      async (i) => {
        const s = new BoardSubscriber(server.wsUrl, format);
        subs.push(s);
        await s.start(connectionToken(`user-${i}`, server.tokenSecret), channelName(i % opts.channels), delta);
      },
      (_i, err) => failures.push((err as Error).message),
    );
    if (failures.length > 0) throw new Error(`${failures.length} subscribers failed; first: ${failures[0]}`);
    await publisher.open();
    await publisher.connect(connectionToken('bench-publisher', server.tokenSecret));
    await sleep(300);

    const perChannel = opts.subscribers / opts.channels;
    const phase = async (seconds: number) => {
      const pubs0 = subs.reduce((a, s) => a + s.pubs, 0);
      const bytes0 = subs.reduce((a, s) => a + s.bytes, 0);
      const deltas0 = subs.reduce((a, s) => a + s.deltas, 0);
      const cpu0 = readTreeCpuMicros(server.pid);
      const own0 = process.cpuUsage();
      const start = performance.now();
      const total = Math.max(1, Math.round(opts.rate * seconds));
      let sent = 0;
      let dataBytes = 0;
      while (sent < total) {
        const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * opts.rate) + 1);
        for (; sent < due; sent++) {
          const ch = sent % opts.channels;
          const data = (boards[ch] as Board).edit();
          dataBytes += data.length;
          publisher.publish(channelName(ch), data);
        }
        await sleep(1);
      }
      const expected = pubs0 + sent * perChannel;
      await waitFor(() => subs.reduce((a, s) => a + s.pubs, 0) >= expected, opts.drainTimeoutMs, 5);
      const wallMicros = (performance.now() - start) * 1000;
      const cpu = readTreeCpuMicros(server.pid) - cpu0;
      const own = process.cpuUsage(own0);
      const delivered = subs.reduce((a, s) => a + s.pubs, 0) - pubs0;
      const bytes = subs.reduce((a, s) => a + s.bytes, 0) - bytes0;
      return {
        published: sent,
        dataBytes: round(dataBytes / sent, 0),
        expectedDeliveries: sent * perChannel,
        delivered,
        deltaDeliveries: format === 'json' ? subs.reduce((a, s) => a + s.deltas, 0) - deltas0 : -1,
        wireBytesPerDelivery: round(bytes / Math.max(1, delivered), 1),
        serverCpuMicrosPerDelivery: round(cpu / Math.max(1, delivered), 3),
        serverCpuPercent: round((cpu / wallMicros) * 100, 1),
        loadgenCpuPercent: round(((own.user + own.system) / wallMicros) * 100, 1),
        disconnects: subs.filter((s) => s.closed).length,
      };
    };
    if (opts.warmupSeconds > 0) await phase(opts.warmupSeconds);
    const r = await phase(opts.seconds);
    log(
      `  ${r.delivered}/${r.expectedDeliveries} delivered, ${r.wireBytesPerDelivery} B/delivery on the wire ` +
        `(data ${r.dataBytes} B), server ${r.serverCpuMicrosPerDelivery} µs/delivery (${r.serverCpuPercent}% CPU)`,
    );
    return { format, delta, ...r };
  } finally {
    publisher.terminate();
    for (const s of subs) s.terminate();
  }
}

/** compare puts each format's delta run against its full run. */
function compare(runs: DeltaRun[]): DeltaComparison[] {
  const out: DeltaComparison[] = [];
  for (const format of new Set(runs.map((r) => r.format))) {
    const full = runs.find((r) => r.format === format && !r.delta);
    const delta = runs.find((r) => r.format === format && r.delta);
    if (!full || !delta) continue;
    out.push({
      format,
      bytesRatio: round(delta.wireBytesPerDelivery / full.wireBytesPerDelivery, 3),
      cpuRatio: round(delta.serverCpuMicrosPerDelivery / full.serverCpuMicrosPerDelivery, 2),
    });
  }
  return out;
}

/** runDelta runs full and delta for every format, each on a fresh Bulwark started with `start`. */
export async function runDelta(
  start: StartOptions,
  opts: DeltaOptions,
  log: Log,
): Promise<ScenarioReport<DeltaResult>['results']> {
  if (!bulwarkAvailable(start.bulwarkMain)) return { bulwark: { skipped: 'Bulwark is not built' } };
  // Shedding off: connecting the subscribers of a run on a busy machine must not be refused
  // (503); what is measured is the fan-out once they are in.
  const config = { channel: { namespaces: [boardNamespace] }, protection: { shedding: { enabled: false } } };
  try {
    const runs: DeltaRun[] = [];
    for (const format of opts.formats) {
      for (const delta of [false, true]) {
        const label = `${format === 'json' ? 'JSON' : 'Protobuf'}, ${delta ? 'delta' : 'full'}`;
        const r = await onFreshBulwark(start, config, `delta / ${label}`, log, (s) =>
          runOnce(s, opts, format, delta, log),
        );
        runs.push({ label, ...r });
      }
    }
    return { bulwark: { result: { runs, comparisons: compare(runs) } } };
  } catch (err) {
    log(`delta: ERROR: ${(err as Error).message}`);
    return {
      bulwark: {
        error: (err as Error).message,
        ...(err instanceof ServerRunError ? { serverLog: err.serverLog } : {}),
      },
    };
  }
}
