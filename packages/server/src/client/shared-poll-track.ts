/**
 * Track and untrack, the `sub_refresh` commands of a shared poll subscription (Centrifugo
 * v6.8): `type: 1` tracks the items of one or more signed batches (and may untrack keys the
 * client dropped since the signature was made), `type: 2` untracks keys.
 *
 * A track is checked whole before anything changes, cheapest check first: a key empty, longer
 * than shared_poll.max_key_length or holding a NUL byte → 107; more keys than the namespace's
 * max_keys_per_connection → 106; more tracked pairs than shared_poll.max_tracked_items_per_node
 * → 106; a batch whose signature does not verify → 103, or expired past its grace → 109 (the
 * SDK then asks for a new signature). The reply carries the items this node knows newer values
 * of than the client's versions, and the signatures' earliest expiry (`expires`, `ttl`).
 *
 * @module
 */
import { verifyTrackSignature } from '../auth/shared-poll-signature.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import type { Reply, SubRefreshRequest } from '../protocol/types.js';
import { requireChannel } from './command-checks.js';
import type { SessionCore } from './session-core.js';

const trackType = 1;
const untrackType = 2;

/** sharedPollSubRefresh runs a track or untrack (a sub_refresh with `type`). */
export async function sharedPollSubRefresh(s: SessionCore, req: SubRefreshRequest): Promise<{ reply: Reply }> {
  requireChannel(req.channel);
  const ctx = s.ctx;
  const sp = ctx.sharedPolls;
  const channel = req.channel;
  if (!s.subs.has(channel) || !sp.isSubscribed(s, channel)) {
    throw new ProtocolError(ErrorCode.PermissionDenied, 'not subscribed');
  }
  const untrack = req.untrack ?? [];
  if (req.type === untrackType) {
    if (untrack.length === 0) throw bad(s, 'bad request: untrack needs keys');
    sp.untrack(s, channel, untrack);
    return { reply: { method: 'sub_refresh', result: { expires: false, ttl: 0 } } };
  }
  if (req.type !== trackType || req.track === undefined || req.track.length === 0) {
    throw bad(s, 'bad request: track needs signed batches');
  }
  const opts = ctx.rules.resolve(channel).options.shared_poll;
  const limits = ctx.config.shared_poll;
  // Last batch wins for a key in several: its version and its signature's expiry.
  const flat = new Map<string, { version: number; batch: number }>();
  req.track.forEach((b, batch) => {
    for (const it of b.items) {
      const bytes = Buffer.byteLength(it.key);
      if (bytes === 0 || bytes > limits.max_key_length || it.key.includes('\u0000')) {
        sp.metrics.reject('bad_key');
        throw new ProtocolError(ErrorCode.BadRequest, 'bad request: bad key');
      }
      flat.set(it.key, { version: it.version, batch });
    }
  });
  if (flat.size === 0) throw bad(s, 'bad request: track needs items');
  const dropped = new Set(untrack);
  let added = 0;
  for (const key of flat.keys()) if (!dropped.has(key)) added++;
  // Keys already tracked take no new slot (their version is updated).
  added -= [...flat.keys()].filter((k) => !dropped.has(k) && sp.holds(s, channel, k)).length;
  if (sp.keyCount(s, channel) + added > opts.max_keys_per_connection) {
    sp.metrics.reject('connection_limit');
    throw new ProtocolError(ErrorCode.LimitExceeded, 'limit exceeded: max_keys_per_connection');
  }
  if (sp.trackedPairs + added > limits.max_tracked_items_per_node) {
    sp.metrics.reject('node_limit');
    throw new ProtocolError(ErrorCode.LimitExceeded, 'limit exceeded: max_tracked_items_per_node');
  }
  const secrets = {
    current: limits.hmac_secret_key,
    previous: limits.hmac_previous_secret_key,
    previousValidUntil: limits.hmac_previous_secret_key_valid_until,
  };
  const expiries: number[] = [];
  for (const b of req.track) {
    const keys = b.items.map((i) => i.key);
    const verdict = verifyTrackSignature(secrets, b.signature, s.user, channel, keys);
    if (!verdict.ok) {
      if (verdict.reason === 'expired') {
        sp.metrics.reject('signature_expired');
        throw new ProtocolError(ErrorCode.TokenExpired);
      }
      sp.metrics.reject('signature_invalid');
      throw new ProtocolError(ErrorCode.PermissionDenied, 'permission denied: bad signature');
    }
    expiries.push(verdict.exp);
  }
  const items = [...flat]
    .filter(([key]) => !dropped.has(key))
    .map(([key, f]) => ({ key, version: f.version, expireAt: (expiries[f.batch] ?? 0) * 1000 }));
  const pubs = await sp.track(s, channel, items);
  // Unsubscribed (or disconnected) while the stored values were read: nothing was tracked.
  if (pubs === undefined) throw new ProtocolError(ErrorCode.PermissionDenied, 'not subscribed');
  if (dropped.size > 0) sp.untrack(s, channel, [...dropped]);
  const expiring = expiries.filter((e) => e > 0);
  const result: { expires: boolean; ttl: number; items?: typeof pubs } = { expires: false, ttl: 0 };
  if (expiring.length > 0) {
    result.expires = true;
    result.ttl = Math.max(0, Math.min(...expiring) - Math.floor(Date.now() / 1000));
  }
  if (pubs.length > 0) result.items = pubs;
  return { reply: { method: 'sub_refresh', result } };
}

function bad(s: SessionCore, message: string): ProtocolError {
  s.ctx.sharedPolls.metrics.reject('bad_request');
  return new ProtocolError(ErrorCode.BadRequest, message);
}
