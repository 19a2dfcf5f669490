/**
 * How the Redis engine writes publications, joins, leaves and presence entries into Redis, and
 * reads them back. Data (raw JSON) is never parsed: it travels last in a message, or in its own
 * stream field, and comes back as the same string. Everything read from Redis is checked, since
 * another program (or another Bulwark version) may write under the same prefix.
 *
 * Pub/sub message formats, one per event, on the channel's pub/sub channel:
 * - publication: `p\n<offset>\n<epoch>\n<meta JSON or empty>\n<data>` (written by the publish
 *   script, or directly for a publication without history: offset 0, epoch empty);
 * - publication with its previous one's data (delta compression, published with `delta`):
 *   `d\n<offset>\n<epoch>\n<meta JSON or empty>\n<previous data as a JSON string>\n<data>`;
 * - join: `j\n<ClientInfo JSON>`; leave: `l\n<ClientInfo JSON>`.
 *
 * @module
 */
import type { ClientInfo, Publication, PublicationVariant, RawJSON } from '../../protocol/types.js';

/** MalformedMessageError is a message or entry read from Redis that the engine cannot decode. */
export class MalformedMessageError extends Error {
  constructor(what: string, detail: string) {
    super(`redis engine: malformed ${what}: ${detail}`);
    this.name = 'MalformedMessageError';
  }
}

/** PublicationMeta is what a publication carries beside its data and offset. */
type PublicationMeta = Pick<Publication, 'info' | 'tags' | 'time' | 'variants'>;

/** BrokerEvent is one decoded pub/sub message of a channel. */
export type BrokerEvent =
  | { kind: 'publication'; pub: Publication; epoch: string; prev?: Publication | undefined }
  | { kind: 'join' | 'leave'; info: ClientInfo };

/**
 * encodeMeta returns the JSON of a publication's info/tags/time/variants, or '' when it has
 * none. A variant's data is raw JSON text, so it travels as a JSON string.
 */
export function encodeMeta(meta: PublicationMeta): string {
  const out: PublicationMeta = {};
  if (meta.info !== undefined) out.info = meta.info;
  if (meta.tags !== undefined) out.tags = meta.tags;
  if (meta.time !== undefined) out.time = meta.time;
  if (meta.variants !== undefined && meta.variants.length > 0) out.variants = meta.variants;
  return out.info === undefined && out.tags === undefined && out.time === undefined && out.variants === undefined
    ? ''
    : JSON.stringify(out);
}

/** encodePublication is the pub/sub message of a publication published without the script. */
export function encodePublication(offset: number, epoch: string, meta: string, data: RawJSON): string {
  return `p\n${offset}\n${epoch}\n${meta}\n${data}`;
}

/** encodeJoinLeave is the pub/sub message of a join or leave. */
export function encodeJoinLeave(kind: 'join' | 'leave', info: ClientInfo): string {
  return `${kind === 'join' ? 'j' : 'l'}\n${JSON.stringify(info)}`;
}

/** decodeEvent decodes a channel's pub/sub message; throws MalformedMessageError. */
export function decodeEvent(message: string): BrokerEvent {
  const kind = message.slice(0, 2);
  if (kind === 'j\n' || kind === 'l\n') {
    return { kind: kind === 'j\n' ? 'join' : 'leave', info: decodeClientInfo(message.slice(2)) };
  }
  if (kind !== 'p\n' && kind !== 'd\n') {
    throw new MalformedMessageError('message', `unknown kind ${JSON.stringify(message.slice(0, 8))}`);
  }
  const offsetEnd = message.indexOf('\n', 2);
  const epochEnd = offsetEnd < 0 ? -1 : message.indexOf('\n', offsetEnd + 1);
  const metaEnd = epochEnd < 0 ? -1 : message.indexOf('\n', epochEnd + 1);
  const prevEnd = kind === 'p\n' ? metaEnd : metaEnd < 0 ? -1 : message.indexOf('\n', metaEnd + 1);
  if (prevEnd < 0) throw new MalformedMessageError('publication', 'missing header lines');
  const offsetText = message.slice(2, offsetEnd);
  const pub = decodePublication(offsetText, message.slice(prevEnd + 1), message.slice(epochEnd + 1, metaEnd));
  const epoch = message.slice(offsetEnd + 1, epochEnd);
  if (kind === 'p\n') return { kind: 'publication', pub, epoch };
  const prevData = parse('previous publication', message.slice(metaEnd + 1, prevEnd));
  if (typeof prevData !== 'string') throw new MalformedMessageError('previous publication', 'not a JSON string');
  return { kind: 'publication', pub, epoch, prev: { offset: pub.offset - 1, data: prevData as RawJSON } };
}

/**
 * decodeStreamEntry decodes one history stream entry, `[id, [field, value, …]]` as XRANGE
 * returns it, into a publication. The entry ID is `<offset>-0`.
 */
export function decodeStreamEntry(entry: unknown): Publication {
  if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !Array.isArray(entry[1])) {
    throw new MalformedMessageError('stream entry', 'not [id, fields]');
  }
  const fields: unknown[] = entry[1];
  let data: unknown;
  let meta: unknown = '';
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'd') data = fields[i + 1];
    else if (fields[i] === 'm') meta = fields[i + 1];
  }
  if (typeof data !== 'string' || typeof meta !== 'string') throw new MalformedMessageError('stream entry', 'no data');
  return decodePublication(entry[0].slice(0, entry[0].indexOf('-')), data, meta);
}

/**
 * decodePublication builds a publication from its offset text, data and meta JSON ('' when
 * none) as the scripts store and publish them; throws MalformedMessageError.
 */
export function decodePublication(offsetText: string, data: string, metaText: string): Publication {
  const offset = Number(offsetText);
  if (offsetText === '' || !Number.isSafeInteger(offset) || offset < 0) {
    throw new MalformedMessageError('publication', `bad offset ${JSON.stringify(offsetText)}`);
  }
  const pub: Publication = { offset, data: data as RawJSON };
  if (metaText === '') return pub;
  const meta = parse('publication meta', metaText);
  if (!isRecord(meta)) throw new MalformedMessageError('publication meta', 'not an object');
  if (meta.info !== undefined) {
    if (!isClientInfo(meta.info)) throw new MalformedMessageError('publication meta', 'bad info');
    pub.info = meta.info;
  }
  if (meta.tags !== undefined) {
    if (!isRecord(meta.tags) || !Object.values(meta.tags).every((v) => typeof v === 'string')) {
      throw new MalformedMessageError('publication meta', 'bad tags');
    }
    pub.tags = meta.tags as Record<string, string>;
  }
  if (meta.time !== undefined) {
    if (typeof meta.time !== 'number') throw new MalformedMessageError('publication meta', 'bad time');
    pub.time = meta.time;
  }
  // Map changes (map-broker-redis.ts) carry their key, removal flag and score in the meta.
  if (meta.key !== undefined) {
    if (typeof meta.key !== 'string') throw new MalformedMessageError('publication meta', 'bad key');
    pub.key = meta.key;
  }
  if (meta.removed !== undefined) {
    if (meta.removed !== true) throw new MalformedMessageError('publication meta', 'bad removed');
    pub.removed = true;
  }
  if (meta.score !== undefined) {
    if (typeof meta.score !== 'number') throw new MalformedMessageError('publication meta', 'bad score');
    pub.score = meta.score;
  }
  if (meta.variants !== undefined) {
    if (!Array.isArray(meta.variants) || !meta.variants.every(isVariant)) {
      throw new MalformedMessageError('publication meta', 'bad variants');
    }
    pub.variants = meta.variants;
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

/** decodeClientInfo parses ClientInfo JSON (join, leave, presence entry); throws MalformedMessageError. */
export function decodeClientInfo(text: string): ClientInfo {
  const info = parse('client info', text);
  if (!isClientInfo(info)) throw new MalformedMessageError('client info', 'user and client must be strings');
  return info;
}

function isClientInfo(v: unknown): v is ClientInfo {
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
    throw new MalformedMessageError(what, 'not JSON');
  }
}
