/**
 * How the PostgreSQL map broker reads its notifications and rows back into publications. Data
 * (raw JSON) is never parsed: it travels last in a notification, or in its own text column.
 * Everything read is checked, since another program may write to the same tables.
 *
 * Notification payloads on `<prefix>_map_events` (written by map-schema.ts's
 * `<prefix>_map_change`; channel names are length-prefixed, so they may hold any character):
 * - `m\n<len>\n<channel>\n<offset>\n<epoch>\n<meta JSON>\n<data>`: a change, whole (offset 0 for
 *   an ephemeral map); meta is `{key, removed?, info?, tags?, score?}`;
 * - `n\n<len>\n<channel>\n<offset>\n<epoch>`: a change too large for NOTIFY, in the stream;
 * - `x\n<len>\n<channel>\n<id>`: an ephemeral change too large for NOTIFY, an `m` payload stored
 *   in `<prefix>_notices` under `id`.
 *
 * @module
 */
import type { Publication, RawJSON } from '../../protocol/types.js';
import { isClientInfo, MalformedRowError } from './codec.js';

/** MapNotice is one decoded map notification. */
export type MapNotice =
  | { kind: 'change'; channel: string; epoch: string; pub: Publication }
  | { kind: 'pointer'; channel: string; offset: number; epoch: string }
  | { kind: 'large'; channel: string; id: number };

/** decodeMapNotice decodes a map notification payload; throws MalformedRowError. */
export function decodeMapNotice(text: string): MapNotice {
  const kind = text[0];
  const lenEnd = text.indexOf('\n', 2);
  const len = Number(text.slice(2, lenEnd));
  if (text[1] !== '\n' || lenEnd < 0 || !Number.isSafeInteger(len) || len < 0 || text[lenEnd + 1 + len] !== '\n') {
    throw new MalformedRowError('map notification', JSON.stringify(text.slice(0, 16)));
  }
  const channel = text.slice(lenEnd + 1, lenEnd + 1 + len);
  const rest = text.slice(lenEnd + 2 + len);
  if (kind === 'x') return { kind: 'large', channel, id: count(rest) };
  const offsetEnd = rest.indexOf('\n');
  if (offsetEnd < 0) throw new MalformedRowError('map notification', 'no epoch');
  const offset = count(rest.slice(0, offsetEnd));
  if (kind === 'n') return { kind: 'pointer', channel, offset, epoch: rest.slice(offsetEnd + 1) };
  if (kind !== 'm') throw new MalformedRowError('map notification', `unknown kind ${JSON.stringify(kind)}`);
  const epochEnd = rest.indexOf('\n', offsetEnd + 1);
  const metaEnd = epochEnd < 0 ? -1 : rest.indexOf('\n', epochEnd + 1);
  if (metaEnd < 0) throw new MalformedRowError('map notification', 'no data');
  let meta: unknown;
  try {
    meta = JSON.parse(rest.slice(epochEnd + 1, metaEnd));
  } catch {
    throw new MalformedRowError('map notification', 'meta is not JSON');
  }
  if (typeof meta !== 'object' || meta === null) throw new MalformedRowError('map notification', 'bad meta');
  const m = meta as Record<string, unknown>;
  const pub = mapPublication({
    offset,
    key: m.key,
    removed: m.removed === true,
    data: rest.slice(metaEnd + 1),
    info: m.info,
    tags: m.tags,
    score: m.score,
  });
  return { kind: 'change', channel, epoch: rest.slice(offsetEnd + 1, epochEnd), pub };
}

/** MapRow is an entry or change as the map functions return it (columns r_*). */
export interface MapRow {
  offset: unknown;
  key: unknown;
  removed?: unknown;
  data: unknown;
  info: unknown;
  tags: unknown;
  score: unknown;
}

/** mapPublication checks a decoded row or notification and makes the publication a subscriber gets. */
export function mapPublication(row: MapRow): Publication {
  const { offset, key, data } = row;
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
    throw new MalformedRowError('map change', `bad offset ${String(offset)}`);
  }
  if (typeof key !== 'string') throw new MalformedRowError('map change', 'key is not text');
  if (typeof data !== 'string') throw new MalformedRowError('map change', 'data is not text');
  const pub: Publication = { offset, data: data as RawJSON, key };
  if (row.removed === true) pub.removed = true;
  if (row.info != null) {
    if (!isClientInfo(row.info)) throw new MalformedRowError('map change', 'bad info');
    pub.info = row.info;
  }
  if (row.tags != null) {
    const tags = row.tags;
    if (typeof tags !== 'object' || Array.isArray(tags) || !Object.values(tags).every((v) => typeof v === 'string')) {
      throw new MalformedRowError('map change', 'bad tags');
    }
    pub.tags = tags as Record<string, string>;
  }
  if (row.score != null) {
    if (typeof row.score !== 'number') throw new MalformedRowError('map change', 'bad score');
    if (row.score !== 0) pub.score = row.score;
  }
  return pub;
}

function count(text: string): number {
  const n = Number(text);
  if (text === '' || !Number.isSafeInteger(n) || n < 0) throw new MalformedRowError('map notification', 'bad number');
  return n;
}
