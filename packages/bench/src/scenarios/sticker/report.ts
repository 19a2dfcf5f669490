/**
 * The sticker report: the cache modes side by side (origin calls, what each build received,
 * latency and bytes), and the origin calls against the incident's arithmetic.
 *
 * @module
 */
import { fmt, fmtCounts, formatTable, p50p99 } from '../../harness/format.js';
import { CHANNEL } from './stickers.js';
import { CACHE_MODES, type StickerOptions, type StickerResult } from './types.js';

/** counts renders a tally, "0" when empty. */
const counts = (c: Record<string, number>): string => (Object.values(c).some((n) => n > 0) ? fmtCounts(c) : '0');

/** sharedTier renders the shared tier's counters that explain an extra origin call. */
const sharedTier = (c: Record<string, number>): string =>
  ['lockWaits', 'waitTimeouts', 'redisErrors', 'fallbacks'].map((k) => `${k} ${fmt(c[k] ?? 0)}`).join(', ');

/** stickerTable renders the per-mode table and the comparison lines. */
export function stickerTable(r: StickerResult, o: StickerOptions): string {
  const header = [
    'cache',
    'origin calls',
    'max/sticker',
    'old: text',
    'new: sticker',
    'lost',
    'post p50/p99 ms: burst',
    'after',
    'old deliv p50/p99 ms: burst',
    'after',
    'new deliv p50/p99 ms: burst',
    'after',
    'history',
  ];
  const rows = r.modes.map((x) => {
    const { old, new: fresh } = x.deliveries;
    return [
      x.mode,
      fmt(x.origin.calls),
      fmt(x.origin.maxPerSticker),
      `${fmt(old.right)}/${fmt(old.expected)}`,
      `${fmt(fresh.right)}/${fmt(fresh.expected)}`,
      fmt(old.missing + fresh.missing),
      p50p99(x.publishMs.burst),
      p50p99(x.publishMs.after),
      p50p99(old.latencyMs.burst),
      p50p99(old.latencyMs.after),
      p50p99(fresh.latencyMs.burst),
      p50p99(fresh.latencyMs.after),
      `${fmt(x.history.publications - x.history.wrong)}/${fmt(x.history.publications)} own`,
    ];
  });
  const first = r.modes[0];
  const players = first ? first.deliveries.old.clients + first.deliveries.new.clients : o.clients;
  const lines = [
    `sticker: ${o.nodes} cold Bulwark processes on Redis, ${fmt(players)} players in ${CHANNEL} ` +
      `(${first ? `${fmt(first.deliveries.old.clients)} old build 5.1.0, ${fmt(first.deliveries.new.clients)} new 5.3.0` : ''}); ` +
      `${fmt(o.stickers)} stickers × ${o.postsPerSticker} posts = ${fmt(o.stickers * o.postsPerSticker)} posts ` +
      `(${fmt(first?.burstPosts ?? 0)} in the cold burst, ${o.burstConcurrency} at once; the rest over ${o.durationSeconds} s) ` +
      `through random nodes; origin ${o.serviceMs} ms/call`,
    '',
    formatTable([header, ...rows]),
    '',
    `origin calls for ${fmt(o.stickers)} stickers: one per sticker = ${fmt(o.stickers)}; the incident's per-server cache ` +
      `= K × M = ${fmt(r.perServerCacheCalls)}; no cache = one per post = ${fmt(r.noCacheCalls)}`,
    ...r.modes.map(
      (x) =>
        `  ${x.mode.padEnd(6)} ${CACHE_MODES[x.mode]}: ${fmt(x.origin.calls)} calls; all delivered in ${fmt(x.seconds, 1)} s; ` +
        `bytes per delivery old ${fmt(x.deliveries.old.bytesPerDelivery)}, new ${fmt(x.deliveries.new.bytesPerDelivery)}; ` +
        `posts failed ${counts(x.publishErrors)} (attempts retried: ${counts(x.publishRetries)}); ` +
        `HTTP connections Bulwark closed early: ${counts(x.bulwark.httpSocketsClosed)}` +
        (x.mode === 'shared' ? `; shared tier: ${sharedTier(x.bulwark.rpcCacheShared)}` : ''),
    ),
    'latency: post = the publish API call; deliv = from the post sent to the player receiving it; burst = the cold burst',
  ];
  return lines.join('\n');
}
