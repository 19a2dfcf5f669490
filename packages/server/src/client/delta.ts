/**
 * Delta compression (Fossil), as Centrifugo and its SDKs do it: a subscriber that asked for
 * `delta: "fossil"` in a namespace whose `allowed_delta_types` lists it gets each publication's
 * data as a Fossil delta against the previous publication *it received*, or in full where it
 * holds none or a delta would not be smaller. What makes a delta safe to send:
 *
 * - Each subscription remembers the data its client holds (`deltaBase`: what it received
 *   last), and a delta is sent only when that is exactly the data of the stream's publication
 *   N − 1, the delta's base. So a client never gets a delta against data it does not hold.
 * - The broker delivers N − 1 with N (it reads it from history in the same atomic step), so
 *   every node can make the delta, even one that never saw N − 1 itself.
 * - Only positioned subscriptions keep a base: their delivery checks offsets (delivery.ts), so
 *   N reaches one only right after N − 1; a gap or a new epoch ends the subscription (2500).
 * - A subscription starts without a base: its first publication, live or recovered, is sent in
 *   full. A recovery that returns no publication sends nothing, so the next is full too,
 *   whatever the client may still hold from an earlier subscription.
 * - A publication without an offset (one published without history), or a publication
 *   variant (the client's payload differs from the stream's), becomes the client's base and
 *   does not equal the next one's N − 1: that one goes in full.
 * - Nothing may skip a publication of a delta subscription while moving its offset past it
 *   (a publication filter would): the base would no longer be what the client received.
 *
 * The delta is made once per publication per node and encoded once per format (delta-frames.ts);
 * only recovered publications in a subscribe reply are encoded per subscriber.
 *
 * @module
 */
import { isUtf8 } from 'node:buffer';
import { createDelta } from 'fossil-delta';
import type { ChannelOptions } from '../config/sections/channel.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import type { Publication, RawJSON } from '../protocol/types.js';

/** The delta types Bulwark knows, as Centrifugo names them. */
const knownTypes: ReadonlySet<string> = new Set(['fossil']);

/**
 * negotiateDelta checks the subscribe option `delta` against the namespace: true when delta
 * compression is on for the subscription. An unknown type is refused with 107 (bad request);
 * a known type the namespace does not allow subscribes with full payloads (the reply has no
 * `delta: true`), as Centrifugo does: turning `allowed_delta_types` off must not cut off the
 * clients built to ask for deltas.
 */
export function negotiateDelta(
  requested: string | undefined,
  ns: Pick<ChannelOptions, 'allowed_delta_types'>,
): boolean {
  if (requested === undefined || requested === '') return false;
  // The client's string is echoed only in part: an error message is no place for 64 KiB of it.
  const shown = requested.length > 32 ? `${requested.slice(0, 32)}…` : requested;
  if (!knownTypes.has(requested)) throw new ProtocolError(ErrorCode.BadRequest, `unknown delta type "${shown}"`);
  return (ns.allowed_delta_types as readonly string[]).includes(requested);
}

/**
 * makeDelta returns the Fossil delta from `prev` to `next` (both JSON text, as UTF-8 bytes), or
 * undefined when it would not be smaller than `next` — or would not be valid UTF-8 (a copy
 * boundary inside a multi-byte character): the JSON format carries it as a string, which
 * could not hold those bytes, and both formats send the same choice.
 */
export function makeDelta(prev: RawJSON, next: Buffer): Buffer | undefined {
  const delta = Buffer.from(createDelta(Buffer.from(prev, 'utf8'), next));
  return delta.length < next.length && isUtf8(delta) ? delta : undefined;
}

/** fullPayload is a publication as a delta subscription receives it in full. */
export function fullPayload(pub: Publication): Publication {
  return { ...pub, payload: Buffer.from(pub.data, 'utf8') };
}

/**
 * deltaRecovered prepares recovered publications (consecutive offsets) for a delta
 * subscription: the first in full, each next one as a delta against the one before it.
 */
export function deltaRecovered(pubs: readonly Publication[]): Publication[] {
  const out: Publication[] = [];
  let prev: Publication | undefined;
  for (const pub of pubs) {
    const full = fullPayload(pub);
    const delta = prev === undefined ? undefined : makeDelta(prev.data, full.payload as Buffer);
    out.push(delta === undefined ? full : { ...pub, payload: delta, delta: true });
    prev = pub;
  }
  return out;
}
