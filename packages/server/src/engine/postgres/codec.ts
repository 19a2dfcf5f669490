/**
 * How the PostgreSQL engine writes notifications and publication rows, and reads them back.
 * Data (raw JSON) is never parsed: it travels last in a notification, or in its own text
 * column, and comes back as the same string. Everything read is checked, since another program
 * (or another Bulwark version) may write to the same tables.
 *
 * Notification payloads on `<prefix>_events` (channel names are length-prefixed, so they may
 * hold any character):
 * - `h\n<len>\n<channel>\n<offset>\n<epoch>`: a publication with history was committed at `offset`;
 *   receivers read the rows they have not delivered (the notification carries no data, so a
 *   publication of any size travels the same way, and a lost one is found by the poll);
 * - `p\n<len>\n<channel>\n<meta JSON or empty>\n<data>`: a publication without history;
 * - `j\n<len>\n<channel>\n<ClientInfo JSON>`, `l\n…`: a join, a leave;
 * - `c\n<data>`: a control message for every node;
 * - `x\n<len>\n<channel>\n<id>`: one of the above too large for NOTIFY (8000 bytes), stored
 *   in `<prefix>_notices` under `id` (channel empty for a control message).
 *
 * @module
 */
import type { ClientInfo, Publication, PublicationVariant, RawJSON } from '../../protocol/types.js';

/** MalformedRowError is a notification or row the engine cannot decode. */
export class MalformedRowError extends Error {
  constructor(what: string, detail: string) {
    super(`postgresql engine: malformed ${what}: ${detail}`);
    this.name = 'MalformedRowError';
  }
}

/** Notice is one decoded notification. */
export type Notice =
  | { kind: 'history'; channel: string; offset: number; epoch: string }
  | { kind: 'publication'; channel: string; pub: Publication }
  | { kind: 'join' | 'leave'; channel: string; info: ClientInfo }
  | { kind: 'control'; data: RawJSON }
  | { kind: 'large'; channel: string; id: number };

/** PublicationMeta is what a publication carries beside its offset and data. */
export type PublicationMeta = Pick<Publication, 'info' | 'tags' | 'time' | 'variants'>;

const kinds = { h: 'history', p: 'publication', j: 'join', l: 'leave', x: 'large' } as const;

function withChannel(kind: string, channel: string, rest: string): string {
  return `${kind}\n${channel.length}\n${channel}\n${rest}`;
}

/** historyNotice says that `channel` has a publication at `offset` of `epoch`. */
export function historyNotice(channel: string, offset: number, epoch: string): string {
  return withChannel('h', channel, `${offset}\n${epoch}`);
}

/** publicationNotice carries a publication without history. */
export function publicationNotice(channel: string, meta: PublicationMeta, data: RawJSON): string {
  return withChannel('p', channel, `${encodeMeta(meta)}\n${data}`);
}

/** joinLeaveNotice carries a join or a leave. */
export function joinLeaveNotice(kind: 'join' | 'leave', channel: string, info: ClientInfo): string {
  return withChannel(kind === 'join' ? 'j' : 'l', channel, JSON.stringify(info));
}

/** controlNotice carries a control message. */
export function controlNotice(data: RawJSON): string {
  return `c\n${data}`;
}

/** largeNotice points at a notice stored in the notices table. */
export function largeNotice(channel: string, id: number): string {
  return withChannel('x', channel, String(id));
}

/** decodeNotice decodes a notification payload; throws MalformedRowError. */
export function decodeNotice(text: string): Notice {
  if (text.startsWith('c\n')) return { kind: 'control', data: text.slice(2) as RawJSON };
  const kind = kinds[text[0] as keyof typeof kinds];
  const lenEnd = text.indexOf('\n', 2);
  const len = Number(text.slice(2, lenEnd));
  if (kind === undefined || text[1] !== '\n' || lenEnd < 0 || !Number.isSafeInteger(len) || len < 0) {
    throw new MalformedRowError('notification', JSON.stringify(text.slice(0, 16)));
  }
  const channel = text.slice(lenEnd + 1, lenEnd + 1 + len);
  const rest = text.slice(lenEnd + 2 + len);
  if (text[lenEnd + 1 + len] !== '\n') throw new MalformedRowError('notification', 'channel length');
  switch (kind) {
    case 'history':
    case 'large': {
      const end = kind === 'history' ? rest.indexOf('\n') : rest.length;
      const n = Number(rest.slice(0, end));
      if (end <= 0 || !Number.isSafeInteger(n) || n < 0) throw new MalformedRowError('notification', 'bad number');
      return kind === 'history' ? { kind, channel, offset: n, epoch: rest.slice(end + 1) } : { kind, channel, id: n };
    }
    case 'publication': {
      const metaEnd = rest.indexOf('\n');
      if (metaEnd < 0) throw new MalformedRowError('notification', 'no data');
      const meta = metaEnd === 0 ? {} : parse('publication meta', rest.slice(0, metaEnd));
      return { kind, channel, pub: toPublication(0, rest.slice(metaEnd + 1), meta) };
    }
    default:
      return { kind, channel, info: decodeClientInfo(rest) };
  }
}

/** encodeMeta is the JSON of a publication's info/tags/time/variants, or '' when it has none. */
export function encodeMeta(meta: PublicationMeta): string {
  const out: PublicationMeta = {};
  if (meta.info !== undefined) out.info = meta.info;
  if (meta.tags !== undefined) out.tags = meta.tags;
  if (meta.time !== undefined) out.time = meta.time;
  if (meta.variants !== undefined && meta.variants.length > 0) out.variants = meta.variants;
  return Object.keys(out).length === 0 ? '' : JSON.stringify(out);
}

/** PublicationRow is a row of `<prefix>_publications` as the driver returns it. */
export interface PublicationRow {
  offset: number;
  data: string;
  info: unknown;
  tags: unknown;
  time: number | null;
  variants: unknown;
  delta?: boolean;
}

/** PUBLICATION_COLUMNS are the columns {@link rowToPublication} reads, in SELECT form. */
export const PUBLICATION_COLUMNS = '"offset", data, info, tags, time, variants, delta';

/** rowToPublication decodes a publication row; throws MalformedRowError. */
export function rowToPublication(row: PublicationRow): Publication {
  return toPublication(row.offset, row.data, row);
}

function toPublication(offset: unknown, data: unknown, meta: unknown): Publication {
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
    throw new MalformedRowError('publication', `bad offset ${String(offset)}`);
  }
  if (typeof data !== 'string') throw new MalformedRowError('publication', 'data is not text');
  if (!isRecord(meta)) throw new MalformedRowError('publication meta', 'not an object');
  const pub: Publication = { offset, data: data as RawJSON };
  if (meta.info != null) {
    if (!isClientInfo(meta.info)) throw new MalformedRowError('publication', 'bad info');
    pub.info = meta.info;
  }
  if (meta.tags != null) {
    if (!isRecord(meta.tags) || !Object.values(meta.tags).every((v) => typeof v === 'string')) {
      throw new MalformedRowError('publication', 'bad tags');
    }
    pub.tags = meta.tags as Record<string, string>;
  }
  if (meta.time != null) {
    if (typeof meta.time !== 'number') throw new MalformedRowError('publication', 'bad time');
    pub.time = meta.time;
  }
  if (meta.variants != null) {
    if (!Array.isArray(meta.variants) || !meta.variants.every(isVariant)) {
      throw new MalformedRowError('publication', 'bad variants');
    }
    if (meta.variants.length > 0) pub.variants = meta.variants;
  }
  return pub;
}

const conditionKeys = new Set(['name', 'version_below', 'version_at_least', 'has', 'lacks']);

function isVariant(v: unknown): v is PublicationVariant {
  return (
    isRecord(v) &&
    typeof v.data === 'string' &&
    isRecord(v.when) &&
    Object.entries(v.when).every(([k, c]) => conditionKeys.has(k) && typeof c === 'string')
  );
}

/** decodeClientInfo parses ClientInfo JSON (join, leave, presence entry); throws MalformedRowError. */
export function decodeClientInfo(text: string): ClientInfo {
  const info = parse('client info', text);
  if (!isClientInfo(info)) throw new MalformedRowError('client info', 'user and client must be strings');
  return info;
}

/** isClientInfo tells whether `v` is a ClientInfo (user and client strings, optional string infos). */
export function isClientInfo(v: unknown): v is ClientInfo {
  return (
    isRecord(v) &&
    typeof v.user === 'string' &&
    typeof v.client === 'string' &&
    (v.conn_info === undefined || typeof v.conn_info === 'string') &&
    (v.chan_info === undefined || typeof v.chan_info === 'string')
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parse(what: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new MalformedRowError(what, 'not JSON');
  }
}
