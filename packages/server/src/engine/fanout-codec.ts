/**
 * What a fan-out (NATS subject, Redis pub/sub channel) carries for one channel event: one line
 * of JSON header, a newline, then the publication's data as is (RawJSON, never parsed or
 * re-encoded on the way). The header says the kind (`p` publication, `j` join, `l` leave)
 * and, for a publication, its offset, epoch, info, tags, time, variants and whether it was
 * published with delta. The header is JSON.stringify output, which never holds a raw newline,
 * so the first newline ends it whatever the data holds. Control messages travel as their bytes
 * alone on the control subject or channel. Both fan-outs share it, so the format is one.
 *
 * @module
 */
import type { ClientInfo, Publication, PublicationVariant, RawJSON } from '../protocol/types.js';
import type { FanoutEvent } from './fanout.js';

interface Header {
  k: 'p' | 'j' | 'l';
  o?: number;
  e?: string;
  i?: ClientInfo;
  g?: Record<string, string>;
  t?: number;
  v?: PublicationVariant[];
  d?: 1;
}

/**
 * MalformedEventError is a message on a fan-out subject or channel that Bulwark did not write;
 * each fan-out turns it into its own coded error (BW_ERR_NATS_MALFORMED, BW_ERR_REDIS_FANOUT_MALFORMED).
 */
export class MalformedEventError extends Error {
  constructor(readonly why: string) {
    super(why);
    this.name = 'MalformedEventError';
  }
}

function malformed(why: string): MalformedEventError {
  return new MalformedEventError(why);
}

/** encodeEvent writes one channel event. */
export function encodeEvent(event: FanoutEvent): string {
  if (event.kind !== 'publication') {
    return `${JSON.stringify({ k: event.kind === 'join' ? 'j' : 'l', i: event.info } satisfies Header)}\n`;
  }
  const { pub } = event;
  const h: Header = { k: 'p', o: pub.offset, e: event.epoch };
  if (pub.info !== undefined) h.i = pub.info;
  if (pub.tags !== undefined) h.g = pub.tags;
  if (pub.time !== undefined) h.t = pub.time;
  if (pub.variants !== undefined && pub.variants.length > 0) h.v = pub.variants;
  if (event.delta) h.d = 1;
  return `${JSON.stringify(h)}\n${pub.data}`;
}

/** decodeEvent reads one channel event; throws a {@link MalformedEventError}. */
export function decodeEvent(text: string): FanoutEvent {
  const nl = text.indexOf('\n');
  if (nl < 0) throw malformed('no header line');
  let h: Header;
  try {
    h = JSON.parse(text.slice(0, nl)) as Header;
  } catch {
    throw malformed('header is not JSON');
  }
  if (h === null || typeof h !== 'object') throw malformed('header is not an object');
  if (h.k === 'j' || h.k === 'l') {
    if (h.i === null || typeof h.i !== 'object') throw malformed('join/leave without info');
    return { kind: h.k === 'j' ? 'join' : 'leave', info: h.i };
  }
  if (h.k !== 'p' || !Number.isSafeInteger(h.o) || (h.o as number) < 0 || typeof h.e !== 'string') {
    throw malformed('bad publication header');
  }
  const data = text.slice(nl + 1) as RawJSON;
  if (data === '') throw malformed('publication without data');
  const pub: Publication = { offset: h.o as number, data };
  if (h.i !== undefined) pub.info = h.i;
  if (h.g !== undefined) pub.tags = h.g;
  if (h.t !== undefined) pub.time = h.t;
  if (h.v !== undefined) pub.variants = h.v;
  return { kind: 'publication', pub, epoch: h.e, delta: h.d === 1 };
}
