/**
 * The sticker scenario's flags (each declared once with its default, quick value and help) and
 * the options they resolve to.
 *
 * @module
 */
import { type FlagSpec } from '../../harness/flags.js';
import type { ScenarioContext } from '../../harness/scenario.js';
import { CACHE_MODES, type CacheMode, type StickerOptions } from './types.js';

export const flags = {
  nodes: { name: 'nodes', arg: 'M', help: 'Bulwark processes on one Redis', default: 3, min: 1 },
  clients: { name: 'clients', arg: 'N', help: 'players in the chat, over all nodes', default: 600, quick: 150, min: 2 },
  oldPercent: { name: 'old-percent', arg: 'P', help: 'players on the old build', default: 50, min: 0 },
  stickers: { name: 'stickers', arg: 'K', help: 'unique stickers', default: 100, quick: 30, min: 1 },
  postsPerSticker: {
    name: 'posts-per-sticker',
    arg: 'N',
    help: 'posts of each sticker (the first of each, once per node, in the cold burst)',
    default: 8,
    quick: 5,
    min: 1,
  },
  burstConcurrency: {
    name: 'burst-concurrency',
    arg: 'N',
    help: 'publish calls in flight at once in the cold burst',
    default: 32,
    min: 1,
  },
  duration: {
    name: 'duration',
    arg: 'S',
    help: 'seconds the posts after the burst are spread over',
    default: 15,
    quick: 4,
    min: 0,
  },
  settleSeconds: {
    name: 'settle-seconds',
    arg: 'S',
    help: 'bound on waiting for the last deliveries',
    default: 15,
    min: 1,
  },
  historySample: {
    name: 'history-sample',
    arg: 'N',
    help: 'clients of each kind that read the history at the end',
    default: 6,
    min: 0,
  },
  serviceMs: { name: 'service-ms', arg: 'MS', help: 'origin service time per call', default: 20, min: 0 },
  slackPercent: {
    name: 'slack-percent',
    arg: 'P',
    help: 'origin calls allowed over K (shared), M × K (local), for races',
    default: 2,
    min: 0,
  },
  caches: {
    name: 'caches',
    arg: 'LIST',
    help: 'cache modes to run, of shared,local,none',
    default: 'shared,local,none',
  },
  redisUrl: { name: 'redis-url', arg: 'URL', help: 'Redis for the engine', default: 'redis://127.0.0.1:6379' },
  shedding: { name: 'shedding', help: 'keep load shedding on', defaultText: 'off: it would measure the machine' },
} satisfies Record<string, FlagSpec>;

/** parseModes reads `--caches` ("shared,local"), refusing unknown names and empty lists. */
export function parseModes(text: string): CacheMode[] {
  const out: CacheMode[] = [];
  for (const n of text.split(',').map((s) => s.trim())) {
    if (n === '') continue;
    if (!(n in CACHE_MODES)) {
      throw new Error(`--caches: unknown mode "${n}" (known: ${Object.keys(CACHE_MODES).join(', ')})`);
    }
    if (!out.includes(n as CacheMode)) out.push(n as CacheMode);
  }
  if (out.length === 0) throw new Error('--caches: name at least one mode');
  return out;
}

export function options(ctx: ScenarioContext): StickerOptions {
  const f = ctx.flags;
  const oldPercent = f.num(flags.oldPercent);
  if (oldPercent > 100) throw new Error('--old-percent must be at most 100');
  return {
    nodes: f.int(flags.nodes),
    clients: f.int(flags.clients),
    oldPercent,
    stickers: f.int(flags.stickers),
    postsPerSticker: f.int(flags.postsPerSticker),
    burstConcurrency: f.int(flags.burstConcurrency),
    durationSeconds: f.num(flags.duration),
    settleSeconds: f.num(flags.settleSeconds),
    historySample: f.int(flags.historySample),
    serviceMs: f.num(flags.serviceMs),
    slack: f.num(flags.slackPercent) / 100,
    modes: parseModes(f.str(flags.caches)),
    redisUrl: f.str(flags.redisUrl),
    shedding: f.bool(flags.shedding),
    connectConcurrency: 50,
  };
}
