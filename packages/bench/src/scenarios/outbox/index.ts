/**
 * The outbox scenario (issue 16): a backend writes its game events into an outbox table in its
 * own transactions, and Bulwark's outbox consumer (docs/OUTBOX.md) publishes them. Bulwark runs
 * on the memory engine with the consumer on PostgreSQL (a fresh table per run, dropped after);
 * a writer (writer.ts) inserts rows at a target rate over N channels, a subscriber per channel
 * (the bench's chat client) receives them. Reported: insert-to-delivery latency p50/p99, rows/s
 * delivered, the most rows waiting in the table (lag), and the check that every row arrived
 * exactly once, in order per channel.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { type FlagSpec } from '../../harness/flags.js';
import { fmt, formatTable } from '../../harness/format.js';
import { check, type Scenario } from '../../harness/scenario.js';
import { LatencyRecorder, roundSummary } from '../../harness/stats.js';
import { bulwarkAvailable, onFreshBulwark } from '../../harness/targets.js';
import { round } from '../../harness/util.js';
import { ChatClient } from '../../load/chat-client.js';
import { psql } from '../history-depth/fill.js';
import { OutboxWriter, outboxDdl } from './writer.js';

const flags = {
  rate: { name: 'rate', arg: 'N', help: 'rows inserted per second', default: 2000, quick: 200, min: 1 },
  channels: { name: 'channels', arg: 'N', help: 'channels the rows spread over', default: 20, quick: 4, min: 1 },
  duration: { name: 'duration', arg: 'S', help: 'seconds of writing', default: 20, quick: 3, min: 1 },
  tick: { name: 'tick', arg: 'MS', help: 'one transaction every MS milliseconds', default: 20, min: 1 },
  pollMs: { name: 'poll', arg: 'MS', help: 'outbox.poll_interval in ms', default: 20, min: 1 },
  batch: { name: 'batch', arg: 'N', help: 'outbox.batch_size', default: 500, min: 1 },
  pgDsn: {
    name: 'pg-dsn',
    arg: 'DSN',
    help: 'PostgreSQL holding the outbox table',
    default: 'postgresql://postgres@127.0.0.1:5432/test',
  },
} satisfies Record<string, FlagSpec>;

export const outboxScenario: Scenario = {
  name: 'outbox',
  summary:
    'Bulwark consuming an outbox table on PostgreSQL: insert-to-delivery latency, rows/s, exactly once (issue 16)',
  flags: Object.values(flags),
  async run(ctx) {
    const f = ctx.flags;
    const o = {
      rate: f.int(flags.rate),
      channels: f.int(flags.channels),
      duration: f.int(flags.duration),
      tick: f.int(flags.tick),
      poll: f.int(flags.pollMs),
      batch: f.int(flags.batch),
      dsn: f.str(flags.pgDsn),
    };
    if (!bulwarkAvailable(ctx.bulwark.bulwarkMain)) throw new Error('outbox: Bulwark is not built');
    const table = `bench_outbox_${randomBytes(4).toString('hex')}`;
    await psql(o.dsn, outboxDdl(table));
    const config = {
      outbox: { enabled: true, postgresql: { dsn: o.dsn }, table, batch_size: o.batch, poll_interval: `${o.poll}ms` },
      channel: { namespaces: [{ name: 'board', allow_subscribe_for_client: true }] },
    };
    try {
      const r = await onFreshBulwark(ctx.bulwark, config, 'outbox', ctx.log, async (server) => {
        const latency = new LatencyRecorder();
        const next = new Array<number>(o.channels).fill(1);
        let delivered = 0;
        let disorder = 0;
        let lastAt = 0;
        const clients = Array.from(
          { length: o.channels },
          (_, i) =>
            new ChatClient(server.wsUrl, `board:o${i}`, (pub, atMs) => {
              const d = pub.data as { ch: number; seq: number; ts: number };
              latency.add((atMs * 1000 - d.ts) / 1000);
              if (d.seq === next[d.ch]) next[d.ch]!++;
              else disorder++;
              delivered++;
              lastAt = atMs;
            }),
        );
        const id = { name: 'bench', version: '1' };
        await Promise.all(clients.map((c, i) => c.join({ ...id, user: `s${i}` }, server.tokenSecret)));
        const writer = new OutboxWriter(o.dsn, table, o.channels);
        const startedMs = performance.now();
        let maxWaiting = 0;
        const sampler = setInterval(() => {
          psql(o.dsn, `SELECT count(*) FROM ${table}`)
            .then((n) => (maxWaiting = Math.max(maxWaiting, Number(n))))
            .catch(() => undefined);
        }, 1000);
        try {
          const total = o.rate * o.duration;
          while (writer.written < total) {
            const due = Math.min(total, Math.round(((performance.now() - startedMs) / 1000) * o.rate));
            if (due > writer.written) writer.insert(due - writer.written);
            ctx.progress.update(
              writer.written / total,
              `${fmt(writer.written)} rows written, ${fmt(delivered)} delivered`,
            );
            await new Promise((res) => setTimeout(res, o.tick));
          }
          await writer.close();
          const deadline = performance.now() + 30_000;
          while (delivered < total && performance.now() < deadline) await new Promise((res) => setTimeout(res, 50));
        } finally {
          clearInterval(sampler);
          for (const c of clients) c.terminate();
        }
        const missing = Array.from({ length: o.channels }, (_, i) => writer.sent(i) - (next[i]! - 1)).reduce(
          (a, b) => a + b,
          0,
        );
        const seconds = (lastAt - startedMs) / 1000;
        return {
          written: writer.written,
          delivered,
          missing,
          disorder,
          seconds: round(seconds, 2),
          rowsPerSecond: round(delivered / seconds, 0),
          maxWaiting,
          latencyMs: roundSummary(latency.summary(), 2),
        };
      });
      const checks = [
        check('rows delivered', r.delivered, '==', r.written, 'rows'),
        check('rows missing', r.missing, '==', 0, 'rows'),
        check('duplicates or out of order', r.disorder, '==', 0, 'rows'),
      ];
      const rows = [
        ['rows written', 'delivered', 'rows/s', 'p50 ms', 'p99 ms', 'max ms', 'max waiting'],
        [
          fmt(r.written),
          fmt(r.delivered),
          fmt(r.rowsPerSecond),
          fmt(r.latencyMs.p50, 2),
          fmt(r.latencyMs.p99, 2),
          fmt(r.latencyMs.max, 2),
          fmt(r.maxWaiting),
        ],
      ];
      const table2 = `outbox: ${o.rate} rows/s over ${o.channels} channels for ${o.duration} s (poll ${o.poll} ms, batch ${o.batch})\n${formatTable(rows)}`;
      return { options: o, results: r, checks, charts: [], table: table2 };
    } finally {
      await psql(o.dsn, `DROP TABLE IF EXISTS ${table}`).catch((err: unknown) =>
        ctx.log(`outbox: table ${table} not dropped: ${(err as Error).message}`),
      );
    }
  },
};
