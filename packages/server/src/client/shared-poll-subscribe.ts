/**
 * The subscribe command of a shared poll subscription (type 4, Centrifugo v6.8): lightweight,
 * as in Centrifugo — no history, no recovery, no broker subscription, no data until the client
 * tracks keys (shared-poll-track.ts). Authorised like any subscription (a subscription token,
 * the subscribe proxy, or the namespace's allow_subscribe_* options). The reply carries
 * `type: 4` and the channel's epoch (versionless mode), whose change tells the SDK to forget
 * the versions it holds.
 *
 * A type that does not match the namespace's subscription_type (a stream subscribe to a
 * shared_poll namespace, or type 4 to any other) is refused with 107 (bad request).
 *
 * @module
 */
import type { ResolvedChannel } from '../channel-rules.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import { ttlSeconds } from '../protocol/ttl.js';
import type { RawJSON, Reply, SubscribeRequest, SubscribeResult } from '../protocol/types.js';
import type { SessionCore } from './session-core.js';
import type { SubState } from './subscriber.js';

/** sharedPollType is the subscribe `type` of a shared poll subscription. */
export const sharedPollType = 4;

/** isSharedPollSubscribe tells whether a subscribe belongs to shared poll (its type or its namespace). */
export function isSharedPollSubscribe(rc: ResolvedChannel, req: SubscribeRequest): boolean {
  return req.type === sharedPollType || rc.options.subscription_type === 'shared_poll';
}

/** sharedPollSubscribe runs a subscribe command that {@link isSharedPollSubscribe}. */
export async function sharedPollSubscribe(
  s: SessionCore,
  rc: ResolvedChannel,
  req: SubscribeRequest,
): Promise<{ reply: Reply; after: () => void }> {
  const ctx = s.ctx;
  const sp = ctx.sharedPolls;
  if (req.type !== sharedPollType || rc.options.subscription_type !== 'shared_poll') {
    sp.metrics.reject('type_mismatch');
    throw new ProtocolError(ErrorCode.BadRequest, 'bad request: subscription type does not match the namespace');
  }
  const channel = rc.channel;
  let expireAt = 0;
  let data: RawJSON | undefined;
  let info: RawJSON | undefined;
  (s.pending ??= new Set()).add(channel);
  let epoch = '';
  try {
    if (req.token && ctx.permissions.verifiesTokens) {
      const claims = await ctx.verifySubscriptionToken(req.token, channel, s.user, s.id, 'subscribe');
      expireAt = claims.expireAt * 1000;
      data = claims.data;
      info = claims.info;
    } else {
      const target = ctx.proxies.channel('subscribe', rc.options);
      if (target !== undefined && !rc.isPrivate && ctx.rules.allowedUsers(rc) === undefined) {
        const out = await ctx.backend.subscribe(target, s.proxyConnection(), channel, req.data);
        expireAt = out.expireAt;
        data = out.data;
        info = out.info;
      } else {
        ctx.permissions.checkSubscribe(rc, s.user);
      }
    }
    // As Centrifugo: a subscription that would already be expired is refused with 110.
    if (expireAt > 0 && expireAt <= Date.now()) throw new ProtocolError(ErrorCode.Expired);
    // Versioned: versions are the backend's, valid on every node; no epoch to compare.
    if (rc.options.shared_poll.mode !== 'versioned') epoch = await sp.store.epoch(channel);
  } finally {
    s.pending?.delete(channel);
  }
  if (s.state === 'closed') throw new ProtocolError(ErrorCode.Internal);
  const state: SubState = {
    channel,
    joinLeave: false,
    positioned: false,
    recoverable: false,
    presence: false,
    joinLeaveEnabled: false,
    buffer: undefined,
    offset: 0,
    epoch,
    expireAt,
    chanInfo: info,
    subRefreshProxy: undefined,
    refreshing: false,
    filter: undefined,
    serverFilter: undefined,
  };
  s.subs.set(channel, state);
  sp.subscribe(s, channel);
  ctx.metrics.subscriptions.inc();
  const result: SubscribeResult = { type: sharedPollType };
  if (epoch !== '') result.epoch = epoch;
  if (expireAt > 0) {
    result.expires = true;
    result.ttl = ttlSeconds(expireAt);
    s.subsChanged();
  }
  if (data !== undefined) result.data = data;
  return { reply: { method: 'subscribe', result }, after: () => undefined };
}
