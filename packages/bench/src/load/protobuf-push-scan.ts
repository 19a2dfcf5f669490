/**
 * The raw reader's Protobuf hot path: walks the varint-length-delimited `Reply`s of one binary
 * frame straight off the Buffer (no reader object, no allocation) and, for a Reply that is only
 * a push, finds `Push.pub.data` and its bench markers in place. Every other Reply — a ping (empty),
 * a reply with an id, an error, a connect result, a push without markers — is handed back as a
 * byte range for {@link readReplies} (protobuf-client.ts), whose decoding of those rare replies
 * is already tested against the server's own generated code.
 *
 * Why not `readReplies` for pushes too: it builds a `BinaryReader` (and its DataView) per frame
 * and goes through its method calls per field; at hundreds of thousands of deliveries per second
 * that is load-generator CPU the server's limit must not be hidden behind (issue 18).
 *
 * @module
 */
import { decodeMarkers, type PushHandler } from './lean-client.js';
import { FIELD } from './protobuf-client.js';

/** Position after the last {@link varint} read (a module variable: no tuple allocated per read). */
let after = 0;

/** Reads the varint at buf[pos…end) as a non-negative number; sets {@link after}. */
function varint(buf: Buffer, pos: number, end: number): number {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (pos >= end) throw new Error('truncated varint');
    const b = buf[pos++] as number;
    if (shift < 28) result |= (b & 0x7f) << shift;
    else result += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
    shift += 7;
    if (shift > 63) throw new Error('varint longer than 10 bytes');
  }
  after = pos;
  return result;
}

/** Position after the field of wire type `wt` whose value starts at buf[pos]; throws past `end`. */
function skipValue(buf: Buffer, pos: number, wt: number, end: number): number {
  let next: number;
  if (wt === 0) {
    varint(buf, pos, end);
    next = after;
  } else if (wt === 1) next = pos + 8;
  else if (wt === 2) next = varint(buf, pos, end) + after;
  else if (wt === 5) next = pos + 4;
  else throw new Error(`unsupported wire type ${wt}`);
  if (next > end) throw new Error('truncated message: field past its parent');
  return next;
}

/** End of the field the last {@link findBytes} found. */
let foundEnd = 0;

/** Start of the (last) length-delimited field `field` in buf[pos…end), or -1; its end in {@link foundEnd}. */
function findBytes(buf: Buffer, pos: number, end: number, field: number): number {
  let found = -1;
  while (pos < end) {
    const tag = varint(buf, pos, end);
    pos = after;
    const wt = tag & 7;
    if (tag >>> 3 === field && wt === 2) {
      const len = varint(buf, pos, end);
      found = after;
      foundEnd = after + len;
      if (foundEnd > end) throw new Error('truncated message: field past its parent');
      pos = foundEnd;
    } else {
      pos = skipValue(buf, pos, wt, end);
    }
  }
  return found;
}

/**
 * scanProtobufFrame reads every Reply of the binary frame buf[start…end): a push with the bench
 * markers goes to `onPush`; any other Reply is handed to `other` as buf[prefixStart…replyEnd)
 * (its length prefix included, ready for readReplies). Throws on a malformed frame.
 */
export function scanProtobufFrame(
  buf: Buffer,
  start: number,
  end: number,
  onPush: PushHandler | undefined,
  other: (prefixStart: number, replyEnd: number) => void,
): void {
  let pos = start;
  while (pos < end) {
    const prefixStart = pos;
    const len = varint(buf, pos, end);
    pos = after;
    const replyEnd = pos + len;
    if (replyEnd > end) throw new Error(`truncated message: reply of ${len} bytes past the frame`);
    let pushOnly = len > 0 && onPush !== undefined;
    let dataStart = -1;
    let dataEnd = 0;
    while (pushOnly && pos < replyEnd) {
      const tag = varint(buf, pos, replyEnd);
      pos = after;
      const wt = tag & 7;
      if (tag >>> 3 === FIELD.reply.push && wt === 2) {
        const pushLen = varint(buf, pos, replyEnd);
        const pushEnd = after + pushLen;
        if (pushEnd > replyEnd) throw new Error('truncated message: push past its reply');
        const pubStart = findBytes(buf, after, pushEnd, FIELD.push.pub);
        if (pubStart >= 0) {
          const pubEnd = foundEnd;
          dataStart = findBytes(buf, pubStart, pubEnd, FIELD.publication.data);
          dataEnd = foundEnd;
        }
        pos = pushEnd;
      } else if (tag >>> 3 === FIELD.reply.id && wt === 0) {
        // A push has id 0 (absent); any other id makes this a reply to a command.
        if (varint(buf, pos, replyEnd) !== 0) pushOnly = false;
        pos = after;
      } else {
        pushOnly = false;
      }
    }
    if (!(pushOnly && dataStart >= 0 && decodeMarkers(buf, dataStart, dataEnd, onPush as PushHandler))) {
      other(prefixStart, replyEnd);
    }
    pos = replyEnd;
  }
}
