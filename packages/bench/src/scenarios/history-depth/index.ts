/**
 * The history-depth scenario (issue 16): a team board is a record, kept for as long as its
 * namespace's retention says, and a page of it must cost the same whether the board holds ten
 * posts or ten million. Bulwark runs on the PostgreSQL engine; one channel gets one page of
 * posts (10) through the API, another 10,000,000 (written straight into the engine's tables, see
 * fill.ts), and the server API's `history` reads the same pages of both, interleaved: the
 * newest page, the oldest, and one from the middle. The verdict compares the latencies.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ServerApi } from '../../harness/api.js';
import { type FlagSpec } from '../../harness/flags.js';
import { fmt, formatTable } from '../../harness/format.js';
import { check, type Check, type Scenario } from '../../harness/scenario.js';
import { roundSummary, summarize, type LatencySummary } from '../../harness/stats.js';
import { bulwarkAvailable, onFreshBulwark } from '../../harness/targets.js';
import { round } from '../../harness/util.js';
import { dropTables, fillHistory } from './fill.js';

const flags = {
  posts: { name: 'posts', arg: 'N', help: 'posts in the deep channel', default: 10_000_000, quick: 100_000, min: 100 },
  reads: { name: 'reads', arg: 'N', help: 'reads of each page kind per channel', default: 300, quick: 40, min: 1 },
  page: { name: 'page', arg: 'N', help: 'posts per page (also the posts of the shallow channel)', default: 10, min: 1 },
  pgDsn: {
    name: 'pg-dsn',
    arg: 'DSN',
    help: 'PostgreSQL for the engine',
    default: 'postgresql://postgres@127.0.0.1:5432/test',
  },
} satisfies Record<string, FlagSpec>;

type PageKind = 'newest' | 'oldest' | 'middle';
const kinds: readonly PageKind[] = ['newest', 'oldest', 'middle'];

/** Result is what the run measured: each page kind's latencies on the shallow and the deep channel. */
interface Result {
  posts: number;
  fillSeconds: number;
  pages: Record<PageKind, { shallow: LatencySummary; deep: LatencySummary; ratioP50: number; ratioP99: number }>;
}

/** request is the API `history` body reading one kind of page of a channel of `top` posts. */
function request(channel: string, kind: PageKind, top: number, epoch: string, page: number): string {
  if (kind === 'newest') return JSON.stringify({ channel, limit: page, reverse: true });
  // The shallow channel holds one page: its "middle" page is that page.
  const offset = kind === 'oldest' || top <= page ? 0 : Math.floor(top / 2);
  return JSON.stringify({ channel, limit: page, since: { offset, epoch } });
}

export const historyDepthScenario: Scenario = {
  name: 'history-depth',
  summary:
    'Bulwark on PostgreSQL: a history page from a 10-million-post board costs what it costs on a 10-post one (issue 16)',
  flags: Object.values(flags),
  async run(ctx) {
    const f = ctx.flags;
    const o = {
      posts: f.int(flags.posts),
      reads: f.int(flags.reads),
      page: f.int(flags.page),
      dsn: f.str(flags.pgDsn),
    };
    if (!bulwarkAvailable(ctx.bulwark.bulwarkMain)) throw new Error('history-depth: Bulwark is not built');
    const prefix = `bench_hd_${randomBytes(4).toString('hex')}`;
    const config = {
      engine: { type: 'postgresql', postgresql: { dsn: o.dsn, table_prefix: prefix } },
      http_api: { history_max_limit: Math.max(1000, o.page) },
      channel: {
        namespaces: [{ name: 'board', history_size: o.posts + 1000, history_ttl: '8760h' }],
      },
    };
    try {
      const result = await onFreshBulwark(ctx.bulwark, config, 'history-depth', ctx.log, async (server) => {
        const api = new ServerApi(server);
        try {
          // Both channels answer full pages of the same posts, so only the depth differs.
          for (let i = 1; i <= o.page; i++) await api.publish('board:shallow', `{"text":"post ${i}"}`);
          await api.publish('board:deep', '{"text":"post 1"}');
          ctx.log(`history-depth: writing ${fmt(o.posts)} posts into board:deep`);
          const started = performance.now();
          await fillHistory(o.dsn, prefix, 'board:deep', 2, o.posts);
          const fillSeconds = round((performance.now() - started) / 1000, 1);
          ctx.log(`history-depth: filled in ${fillSeconds} s; reading`);
          const epochOf = async (channel: string) =>
            ((await api.call('history', JSON.stringify({ channel, limit: 0 }))) as { epoch: string }).epoch;
          const tops = { shallow: o.page, deep: o.posts };
          const epochs = { shallow: await epochOf('board:shallow'), deep: await epochOf('board:deep') };
          const samples = new Map<string, Float64Array>();
          for (const k of kinds)
            for (const c of ['shallow', 'deep'] as const) samples.set(`${k}/${c}`, new Float64Array(o.reads));
          // Interleaved, so both channels meet the same machine state (cache, other work).
          for (let i = 0; i < o.reads; i++) {
            for (const k of kinds) {
              for (const c of ['shallow', 'deep'] as const) {
                const body = request(`board:${c}`, k, tops[c], epochs[c], o.page);
                const t0 = performance.now();
                const r = (await api.call('history', body)) as { publications?: unknown[] };
                (samples.get(`${k}/${c}`) as Float64Array)[i] = performance.now() - t0;
                const want = o.page;
                if ((r.publications?.length ?? 0) !== want) {
                  throw new Error(
                    `history-depth: ${k} page of board:${c} had ${r.publications?.length ?? 0} posts, not ${want}`,
                  );
                }
              }
            }
          }
          const pages = {} as Result['pages'];
          for (const k of kinds) {
            const shallow = roundSummary(summarize(samples.get(`${k}/shallow`) as Float64Array), 3);
            const deep = roundSummary(summarize(samples.get(`${k}/deep`) as Float64Array), 3);
            pages[k] = {
              shallow,
              deep,
              ratioP50: round(deep.p50 / shallow.p50, 2),
              ratioP99: round(deep.p99 / shallow.p99, 2),
            };
          }
          return { posts: o.posts, fillSeconds, pages } satisfies Result;
        } finally {
          api.close();
        }
      });
      const checks: Check[] = kinds.map((k) =>
        check(`${k} page, deep p50 ÷ shallow p50`, result.pages[k].ratioP50, '<=', 1.5, '×'),
      );
      const rows = [['page', 'shallow p50 / p99 ms', 'deep p50 / p99 ms', 'deep ÷ shallow p50 / p99']];
      for (const k of kinds) {
        const p = result.pages[k];
        rows.push([
          k,
          `${fmt(p.shallow.p50, 2)} / ${fmt(p.shallow.p99, 2)}`,
          `${fmt(p.deep.p50, 2)} / ${fmt(p.deep.p99, 2)}`,
          `${p.ratioP50} / ${p.ratioP99}`,
        ]);
      }
      const table = `history-depth: ${fmt(result.posts)} posts vs ${o.page}, pages of ${o.page}, ${o.reads} reads each (filled in ${result.fillSeconds} s)\n${formatTable(rows)}`;
      return { options: o, results: result, checks, charts: [], table };
    } finally {
      await dropTables(o.dsn, prefix).catch((err: unknown) =>
        ctx.log(`history-depth: tables ${prefix}_* not dropped: ${(err as Error).message}`),
      );
    }
  },
};
