/**
 * Delivery of a publication to one subscription: in order, exactly once. A subscription whose
 * subscribe is in flight buffers what arrives (the subscribe releases it after its reply); a
 * positioned one drops what its subscribe reply already carried, and one that finds a gap, or
 * a new epoch, has lost its place and is told to resubscribe (2500, insufficient state) — its
 * SDK then recovers what it missed from history. A subscription with a tags filter is handed
 * only the publications that match it (the shared frame is still encoded once per format).
 *
 * @module
 */
import { UnsubscribeCode } from '../protocol/codes.js';
import { matches } from '../protocol/tags-filter.js';
import type { Publication } from '../protocol/types.js';
import type { SessionCore } from './session-core.js';
import { unsubscribe } from './subscribe.js';
import { DeltaFrames } from './delta-frames.js';
import type { PublicationFrame, SubState } from './subscriber.js';

/**
 * deliverPublication hands a publication (and its shared frame) to subscription `state` of `s`:
 * true when it is queued (or buffered until the subscribe reply), false when this subscription
 * does not take it.
 */
export function deliverPublication(
  s: SessionCore,
  state: SubState,
  pub: Publication,
  frame: PublicationFrame,
  epoch: string,
): boolean {
  if (state.buffer) {
    state.buffer.push([pub, frame]);
    return true;
  }
  if (state.positioned && pub.offset > 0) {
    // Another epoch: the stream was lost and began anew (Redis restarted without its data).
    // Offsets restarted at 1, so comparing them would drop these publications as old.
    if (epoch !== '' && epoch !== state.epoch) {
      checkPosition(s, state, pub.offset, epoch);
      return false;
    }
    if (pub.offset <= state.offset) return false; // already delivered (e.g. in the subscribe reply)
    if (pub.offset !== state.offset + 1) {
      // A gap: this subscriber lost its place.
      checkPosition(s, state, pub.offset - 1, state.epoch);
      return false;
    }
    state.offset = pub.offset;
  }
  // Filtered after the position moved: a publication this subscriber does not get is no gap.
  if (state.filter !== undefined && !matches(state.filter, pub.tags)) return false;
  s.enqueue(frame instanceof DeltaFrames ? deltaFrame(s, state, frame) : frame);
  return true;
}

/**
 * deltaFrame picks a delta subscription's frame: a delta when the client's base is exactly the
 * data of the publication just before this one, else the full payload. Either way the client
 * then holds this publication's data: its next base (see delta.ts). Only positioned
 * subscriptions keep one.
 */
function deltaFrame(s: SessionCore, state: SubState, frames: DeltaFrames): Buffer {
  const base = state.deltaBase;
  const delta = base === undefined ? undefined : frames.delta(s.codec, base);
  state.deltaBase = state.positioned ? frames.data : undefined;
  return delta ?? frames.full(s.codec);
}

/**
 * checkPosition compares a positioned subscription with the stream's position (top offset
 * and epoch). Behind it, or in another epoch, the subscriber missed publications (a gap in
 * delivery, or the engine was unreachable for a while): it is unsubscribed with 2500
 * (insufficient state), and its SDK resubscribes at once, recovering from history.
 * Returns true when the subscriber lost its place.
 */
export function checkPosition(s: SessionCore, state: SubState, offset: number, epoch: string): boolean {
  if (!state.positioned || state.buffer !== undefined) return false;
  if (state.epoch === epoch && state.offset >= offset) return false;
  s.ctx.log.info({ client: s.id, channel: state.channel }, 'insufficient state');
  void unsubscribe(s, state.channel, { code: UnsubscribeCode.InsufficientState, reason: 'insufficient state' });
  return true;
}
