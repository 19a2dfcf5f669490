/**
 * Reading a stream position from a history reply without JSON.parse, for pollers that ask
 * only for what is new (`history {channel, limit, since: {offset, epoch}}`), the cheap way for
 * clients that can only poll. Bulwark encodes the result as
 * `{"publications":[{"data":…,"offset":K},…],"epoch":"E","offset":T}`: every publication's
 * offset, then the stream's epoch and top offset last (the offset is left out while it is 0).
 * Safe as long as publication data contains no `"offset":` or `"epoch":"` (the bench's posts
 * do not).
 *
 * @module
 */

/** HistoryPosition is where a poller continues from, and what the reply held. */
export interface HistoryPosition {
  epoch: string;
  /** The stream's top offset. */
  top: number;
  /** Publications in the reply. */
  publications: number;
  /**
   * Where the next poll continues: the highest publication offset in the reply (a full page
   * may not reach the top), or the top when the reply held none.
   */
  next: number;
}

const OFFSET = Buffer.from('"offset":');
const EPOCH = Buffer.from('"epoch":"');

function uintAt(buf: Buffer, pos: number, end: number): number {
  let n = 0;
  let digits = 0;
  for (; pos < end; pos++, digits++) {
    const c = buf[pos] as number;
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
  }
  return digits === 0 ? -1 : n;
}

/**
 * parseHistoryPosition reads the {@link HistoryPosition} of the history reply in
 * buf[start…end); undefined when the reply has no epoch (not a history result).
 */
export function parseHistoryPosition(buf: Buffer, start = 0, end = buf.length): HistoryPosition | undefined {
  const e = buf.lastIndexOf(EPOCH, end - EPOCH.length);
  if (e < start) return undefined;
  const close = buf.indexOf(0x22, e + EPOCH.length);
  if (close === -1 || close >= end) return undefined;
  const epoch = buf.toString('latin1', e + EPOCH.length, close);
  // Offsets before the epoch are the publications'; one after it is the top.
  let maxPub = -1;
  let publications = 0;
  let top = 0;
  for (let pos = buf.indexOf(OFFSET, start); pos !== -1 && pos < end; pos = buf.indexOf(OFFSET, pos + 1)) {
    const v = uintAt(buf, pos + OFFSET.length, end);
    if (v < 0) continue;
    if (pos < e) {
      publications++;
      if (v > maxPub) maxPub = v;
    } else top = v;
  }
  return { epoch, top, publications, next: publications > 0 ? maxPub : top };
}
