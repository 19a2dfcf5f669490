/**
 * Reading the bench markers (`{"bch":channel,"bseq":seq,"bts":micros,…}`, see `benchData` in
 * the lean client) of every publication in a reply that carries many of them, such as a history
 * page, without JSON.parse: a poller reads one page every few seconds, and the load generator
 * must spend far less on it than the server spends building it.
 *
 * Safe for the same reason as the lean client's push decoding: the bench writes the data, the
 * three markers come first and adjacent in a fixed order, hold unsigned integers, and no other
 * text of a publication contains `"bch":`. Bulwark embeds publication data as raw JSON.
 *
 * Why not the lean client's push decoding: a push carries one publication, so it finds the
 * first `"bch":` and then each later marker wherever it is; in a page of many publications,
 * some without markers, that search could pair one publication's `"bch":` with the next one's
 * sequence number. Here the three markers must be adjacent, and the scan goes on after each.
 *
 * @module
 */
import type { BenchPush } from './lean-client.js';

/** BenchMarker is one publication's markers: channel index, sequence number, send time (µs). */
export type BenchMarker = BenchPush;

const M_CH = Buffer.from('"bch":');
const M_SEQ = Buffer.from(',"bseq":');
const M_TS = Buffer.from(',"bts":');

/** Reads the unsigned integer at buf[pos…end): [value, position after it], or [-1, pos] without a digit. */
function uintAt(buf: Buffer, pos: number, end: number): [number, number] {
  let n = 0;
  const from = pos;
  while (pos < end) {
    const c = buf[pos] as number;
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
    pos++;
  }
  return pos === from ? [-1, pos] : [n, pos];
}

/** Whether buf[pos…) starts with `token` (within end). */
function startsWith(buf: Buffer, pos: number, end: number, token: Buffer): boolean {
  return pos + token.length <= end && buf.compare(token, 0, token.length, pos, pos + token.length) === 0;
}

/**
 * scanBenchMarkers returns the markers of every publication in buf[start…end), in the order they
 * appear. A `"bch":` not followed at once by `,"bseq":N,"bts":N` is skipped, not guessed at.
 */
export function scanBenchMarkers(buf: Buffer, start = 0, end = buf.length): BenchMarker[] {
  const out: BenchMarker[] = [];
  let pos = start;
  for (;;) {
    const at = buf.indexOf(M_CH, pos);
    if (at === -1 || at + M_CH.length > end) return out;
    pos = at + M_CH.length;
    const [channel, afterCh] = uintAt(buf, pos, end);
    if (channel < 0 || !startsWith(buf, afterCh, end, M_SEQ)) continue;
    const [seq, afterSeq] = uintAt(buf, afterCh + M_SEQ.length, end);
    if (seq < 0 || !startsWith(buf, afterSeq, end, M_TS)) continue;
    const [sentAtMicros, afterTs] = uintAt(buf, afterSeq + M_TS.length, end);
    if (sentAtMicros < 0) continue;
    out.push({ channel, seq, sentAtMicros });
    pos = afterTs;
  }
}

/** countOccurrences counts the non-overlapping occurrences of `needle` in buf[start…end). */
export function countOccurrences(buf: Buffer, needle: Buffer, start = 0, end = buf.length): number {
  let n = 0;
  let pos = start;
  for (;;) {
    const at = buf.indexOf(needle, pos);
    if (at === -1 || at + needle.length > end) return n;
    n++;
    pos = at + needle.length;
  }
}
