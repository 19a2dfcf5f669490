/**
 * What travels on a channel subject of the NATS broker: one line of JSON header, a newline,
 * then the publication's data as is (RawJSON, never parsed or re-encoded on the way). The
 * header says the kind (`p` publication, `j` join, `l` leave) and, for a publication, its
 * offset, epoch, info, tags, time, variants and whether it was published with delta. The
 * header is JSON.stringify output, which never holds a raw newline, so the first newline ends
 * it whatever the data holds. Control messages travel as their bytes alone on the control
 * subject.
 *
 * @module
 */
import { BulwarkError } from '../../errors.js';
import type { ClientInfo, Publication, PublicationVariant, RawJSON } from '../../protocol/types.js';
import type { FanoutEvent } from '../fanout.js';

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

/** malformed makes the error of a message on a Bulwark subject that Bulwark did not write. */
function malformed(subject: string, why: string): BulwarkError {
  return new BulwarkError('BW_ERR_NATS_MALFORMED', `malformed NATS message on ${subject}: ${why}; skipped`);
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

/** decodeEvent reads one channel event; throws BW_ERR_NATS_MALFORMED. */
export function decodeEvent(subject: string, text: string): FanoutEvent {
  const nl = text.indexOf('\n');
  if (nl < 0) throw malformed(subject, 'no header line');
  let h: Header;
  try {
    h = JSON.parse(text.slice(0, nl)) as Header;
  } catch {
    throw malformed(subject, 'header is not JSON');
  }
  if (h === null || typeof h !== 'object') throw malformed(subject, 'header is not an object');
  if (h.k === 'j' || h.k === 'l') {
    if (h.i === null || typeof h.i !== 'object') throw malformed(subject, 'join/leave without info');
    return { kind: h.k === 'j' ? 'join' : 'leave', info: h.i };
  }
  if (h.k !== 'p' || !Number.isSafeInteger(h.o) || (h.o as number) < 0 || typeof h.e !== 'string') {
    throw malformed(subject, 'bad publication header');
  }
  const data = text.slice(nl + 1) as RawJSON;
  if (data === '') throw malformed(subject, 'publication without data');
  const pub: Publication = { offset: h.o as number, data };
  if (h.i !== undefined) pub.info = h.i;
  if (h.g !== undefined) pub.tags = h.g;
  if (h.t !== undefined) pub.time = h.t;
  if (h.v !== undefined) pub.variants = h.v;
  return { kind: 'publication', pub, epoch: h.e, delta: h.d === 1 };
}
