/**
 * Recovery at subscribe: what a subscriber that comes back with a position (`recover`,
 * `offset`, `epoch`) is given, in the namespace's `force_recovery_mode`.
 *
 * - `stream` (the default): every publication after the position, when the stream still
 *   continues from it (same epoch, nothing trimmed in between, at most
 *   client.recovery_max_publication_limit of them); otherwise `recovered: false`.
 * - `cache`: only the latest publication (the channel as a key-value store), as Centrifugo's
 *   cache recovery mode: `recovered: true` when there is one (or the client already holds the
 *   top), whatever was missed before it.
 *
 * A subscription's tags filter applies to what is returned: continuity is judged on the whole
 * stream, then only matching publications are sent (cache: the latest matching one). A
 * subscribe that asked to be refused when it cannot recover (flag 2, the SDK's getState flow)
 * gets 112 instead of `recovered: false`. Each publication returned is the subscriber's variant
 * (publication-variants.ts).
 *
 * @module
 */
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import { forProfileAll } from '../protocol/publication-variants.js';
import { matches, type CompiledFilter } from '../protocol/tags-filter.js';
import type { Publication, SubscribeResult } from '../protocol/types.js';
import type { SessionCore } from './session-core.js';

/** The subscribe flag bit the SDK sets with getState: refuse (112) instead of `recovered: false`. */
export const rejectUnrecoveredFlag = 2;

/** RecoveryRequest is the client's position and how to recover from it. */
export interface RecoveryRequest {
  offset: number;
  epoch: string;
  mode: 'stream' | 'cache';
  filter: CompiledFilter | undefined;
  rejectUnrecovered: boolean;
}

/**
 * recover fills `result` with what the subscriber missed, or says it cannot. It returns the
 * stream offset the subscription is at once the reply is delivered (the last publication read,
 * matching the filter or not), from which live delivery continues.
 */
export async function recover(
  s: SessionCore,
  channel: string,
  r: RecoveryRequest,
  metaTtlMs: number,
  result: SubscribeResult,
): Promise<number> {
  const ctx = s.ctx;
  result.was_recovering = true;
  const at =
    r.mode === 'cache'
      ? await recoverCache(s, channel, r, metaTtlMs, result)
      : await recoverStream(s, channel, r, metaTtlMs, result);
  ctx.metrics.recoveries.inc({ result: result.recovered ? 'recovered' : 'not_recovered' });
  if (!result.recovered && r.rejectUnrecovered) {
    throw new ProtocolError(ErrorCode.UnrecoverablePosition);
  }
  return at;
}

async function recoverStream(
  s: SessionCore,
  channel: string,
  r: RecoveryRequest,
  metaTtlMs: number,
  result: SubscribeResult,
): Promise<number> {
  const ctx = s.ctx;
  const max = ctx.config.client.recovery_max_publication_limit;
  try {
    const h = await ctx.broker.history(channel, {
      since: { offset: r.offset, epoch: r.epoch },
      // One more than allowed tells "too many to recover" apart from "exactly the limit".
      limit: max > 0 ? max + 1 : -1,
      metaTtlMs,
    });
    const all = h.publications;
    const first = all[0];
    const recovered =
      (max === 0 || all.length <= max) &&
      (r.epoch === '' || r.epoch === h.epoch) &&
      (first ? first.offset === r.offset + 1 : h.offset === r.offset);
    result.epoch = h.epoch;
    result.recovered = recovered;
    result.offset = h.offset;
    if (!recovered) return h.offset;
    const pubs = r.filter === undefined ? all : all.filter((p) => matches(r.filter as CompiledFilter, p.tags));
    if (pubs.length > 0) {
      // The position recovered from; each recovered publication moves the client past it.
      result.offset = r.offset;
      result.publications = forProfileAll(pubs, s.profile) as Publication[];
    }
    return all.length > 0 ? (all[all.length - 1] as Publication).offset : h.offset;
  } catch (err) {
    if (!(err instanceof ProtocolError && err.code === ErrorCode.UnrecoverablePosition)) throw err;
    const top = await ctx.broker.history(channel, { limit: 0, metaTtlMs });
    result.offset = top.offset;
    result.epoch = top.epoch;
    result.recovered = false;
    return top.offset;
  }
}

async function recoverCache(
  s: SessionCore,
  channel: string,
  r: RecoveryRequest,
  metaTtlMs: number,
  result: SubscribeResult,
): Promise<number> {
  const ctx = s.ctx;
  // Newest first: without a filter the latest is the one; with one, the newest that matches,
  // looked for as far back as a stream recovery would read.
  const max = ctx.config.client.recovery_max_publication_limit;
  const h = await ctx.broker.history(channel, {
    limit: r.filter === undefined ? 1 : max > 0 ? max : -1,
    reverse: true,
    metaTtlMs,
  });
  const latest =
    r.filter === undefined
      ? h.publications[0]
      : h.publications.find((p) => matches(r.filter as CompiledFilter, p.tags));
  result.epoch = h.epoch;
  if (latest !== undefined) {
    result.recovered = true;
    // As after a stream recovery: the position recovered from, which the publication moves.
    result.offset = latest.offset - 1;
    result.publications = forProfileAll([latest], s.profile) as Publication[];
  } else {
    // Nothing to give: recovered only when the client already holds the top of this stream.
    result.recovered = r.epoch === h.epoch && r.offset === h.offset && h.offset > 0;
    result.offset = h.offset;
  }
  return h.offset;
}
