/**
 * The sticker verdict, per cache mode: every client got its own build's payload of every post
 * (old builds the upgrade text, never the sticker; new builds the sticker, never the text),
 * nothing lost or doubled, history reads give each reader its own variant — and the origin saw
 * about one call per sticker for the whole cluster.
 *
 * The margin on origin calls (`--slack-percent`, 2 % by default): the shared tier locks each
 * sticker in Redis in the same step as it reads it, so concurrent misses on different nodes
 * make one call; a second call for a sticker happens only when a node waits longer than
 * `proxy.cache.shared_wait` (5 s) for another's load, or a lock outlives its 5 s — a stalled
 * process on an overloaded machine. The margin absorbs that without hiding a tier that does
 * not share (which costs M × K, 200 % over for 3 nodes).
 *
 * @module
 */
import { check, type Check } from '../../harness/scenario.js';
import type { ModeResult, StickerOptions } from './types.js';

/** originLimit is the most origin calls a mode may make: K (shared) or M × K (local) plus the margin; undefined: not judged. */
export function originLimit(mode: ModeResult['mode'], o: StickerOptions): number | undefined {
  const base = mode === 'shared' ? o.stickers : mode === 'local' ? o.nodes * o.stickers : undefined;
  return base === undefined ? undefined : base + Math.ceil(base * o.slack);
}

/** judgeSticker turns each mode's result into checks. */
export function judgeSticker(results: readonly ModeResult[], o: StickerOptions): Check[] {
  const checks: Check[] = [];
  for (const r of results) {
    const m = r.mode;
    const errors = Object.values(r.publishErrors).reduce((a, b) => a + b, 0);
    checks.push(check(`${m}: posts refused or failed`, errors, '==', 0, 'posts'));
    checks.push(check(`${m}: posts with a wrong offset`, r.offsetAnomalies, '==', 0, 'posts'));
    const { old, new: fresh } = r.deliveries;
    checks.push(check(`${m}: old builds given the upgrade text`, old.right, '==', old.expected, 'deliveries'));
    checks.push(check(`${m}: old builds shown the sticker`, old.otherKind, '==', 0, 'deliveries'));
    checks.push(check(`${m}: new builds given the sticker`, fresh.right, '==', fresh.expected, 'deliveries'));
    checks.push(check(`${m}: new builds shown the upgrade text`, fresh.otherKind, '==', 0, 'deliveries'));
    checks.push(check(`${m}: deliveries lost`, old.missing + fresh.missing, '==', 0, 'deliveries'));
    const extra = old.duplicates + fresh.duplicates + old.unexpected + fresh.unexpected;
    checks.push(check(`${m}: deliveries doubled or unexpected`, extra, '==', 0, 'deliveries'));
    const dropped = Object.values(r.disconnects).reduce((a, b) => a + b, 0);
    checks.push(check(`${m}: players disconnected`, dropped, '==', 0, 'clients'));
    if (r.history.clients > 0) {
      checks.push(check(`${m}: history: another build's payload`, r.history.wrong, '==', 0, 'publications'));
      checks.push(check(`${m}: history: reads short or failed`, r.history.short, '==', 0, 'reads'));
    }
    // Bulwark's own count must agree with what the clients saw (live deliveries; history reads are not counted).
    const counted = r.bulwark.variantDeliveries['0'];
    if (counted !== undefined) {
      checks.push(check(`${m}: Bulwark's count of upgrade-text deliveries`, counted, '==', old.expected, 'deliveries'));
    }
    const limit = originLimit(m, o);
    if (limit !== undefined) checks.push(check(`${m}: origin calls`, r.origin.calls, '<=', limit, 'calls'));
  }
  return checks;
}
