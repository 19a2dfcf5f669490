/**
 * Subscriptions of a session: the subscribe command (token, subscribe proxy or namespace
 * permissions), recovery from history, server-side subscribe and unsubscribe, and how a
 * subscription's expiry is prolonged (client `sub_refresh` with a token, or the sub_refresh
 * proxy).
 *
 * A subscription is indexed in the hub *before* the stream position is read, and publications
 * arriving meanwhile are buffered in its state: with the history read this leaves no gap and,
 * after filtering by offset, no duplicate.
 *
 * @module
 */
import { ChannelRules, type ResolvedChannel } from '../channel-rules.js';
import type { SubscriptionOverride, SubscriptionTokenClaims } from '../auth/token-verifier.js';
import {
  DisconnectCode,
  DisconnectError,
  ErrorCode,
  ProtocolError,
  UnsubscribeCode,
  disconnect,
} from '../protocol/codes.js';
import { ttlSeconds } from '../protocol/ttl.js';
import type {
  Publication,
  RawJSON,
  Reply,
  SubRefreshRequest,
  SubscribeRequest,
  SubscribeResult,
} from '../protocol/types.js';
import type { SubscribeOutcome } from '../proxy/backend-proxy.js';
import type { ProxyTarget } from '../proxy/proxies.js';
import { bothFilters, type CompiledFilter } from '../protocol/tags-filter.js';
import { recover } from './recovery.js';
import { requireChannel } from './command-checks.js';
import { deltaRecovered, negotiateDelta } from './delta.js';
import type { Deadlines } from './deadlines.js';
import type { SessionCore } from './session-core.js';
import { sharedPollSubRefresh } from './shared-poll-track.js';
import type { SubState } from './subscriber.js';
import { joinMapPresence, leaveMapPresence, mapKeysOf } from './map-presence.js';
import { clientFilter, serverFilter } from './tags-filters.js';

/** SubscribeOptions describes one subscription to make (client, token or API initiated). */
export interface SubscribeOptions {
  recover: boolean;
  offset: number;
  epoch: string;
  wantPositioned: boolean;
  wantRecoverable: boolean;
  wantJoinLeave: boolean;
  chanInfo?: RawJSON | undefined;
  data?: RawJSON | undefined;
  expireAt: number;
  /** Server-side subscriptions ignore the allow_* flags of clients: they were granted. */
  serverSide: boolean;
  /** Per-subscription overrides of namespace options, from a token or the subscribe proxy. */
  override?: SubscriptionOverride | undefined;
  /** Set when the backend, not the client, prolongs this subscription (sub_refresh proxy). */
  subRefreshProxy?: ProxyTarget | undefined;
  /** The client's tags filter (`tf`), compiled. */
  clientFilter?: CompiledFilter | undefined;
  /** The server-enforced tags filter (token or subscribe proxy), compiled. */
  serverFilter?: CompiledFilter | undefined;
  /** Refuse with 112 instead of subscribing with `recovered: false` (subscribe flag 2). */
  rejectUnrecovered?: boolean;
  /** Delta compression negotiated (the client's `delta` option; see delta.ts). */
  delta?: boolean;
}

/** A subscription made: its result for the reply, and `activate` to call once the reply is queued. */
export interface Made {
  result: SubscribeResult;
  activate: () => void;
}

function isPending(s: SessionCore, channel: string): boolean {
  return s.pending !== undefined && s.pending.has(channel);
}

/** Authorized is what the checks of a client subscribe found, for the subscription to make. */
export interface Authorized {
  claims: SubscriptionTokenClaims | undefined;
  proxied: SubscribeOutcome | undefined;
  subRefreshProxy: ProxyTarget | undefined;
  /** Expiry in ms since epoch; 0 never. */
  expireAt: number;
  ownFilter: CompiledFilter | undefined;
  enforced: CompiledFilter | undefined;
  delta: boolean;
}

/** checkNewSubscription refuses a subscription the session holds already (105) or one over client.channel_limit (106). */
export function checkNewSubscription(s: SessionCore, rc: ResolvedChannel): void {
  const ctx = s.ctx;
  if (s.subs.has(rc.channel) || isPending(s, rc.channel)) throw new ProtocolError(ErrorCode.AlreadySubscribed);
  const limit = ctx.config.client.channel_limit;
  if (limit > 0 && s.subs.size + (s.pending?.size ?? 0) >= limit) {
    ctx.metrics.reject('channel_limit');
    throw new ProtocolError(ErrorCode.LimitExceeded, 'channel limit exceeded');
  }
}

/**
 * authorizeSubscribe runs the checks of a new client subscription: not subscribed yet, the
 * channel limit, the options, then the token, the subscribe proxy or the namespace's
 * permissions. It throws the error to answer.
 */
export async function authorizeSubscribe(
  s: SessionCore,
  rc: ResolvedChannel,
  req: SubscribeRequest,
): Promise<Authorized> {
  const ctx = s.ctx;
  checkNewSubscription(s, rc);
  // A bad option is refused before any token check or backend call is spent on the request.
  const delta = negotiateDelta(req.delta, rc.options);
  // Before any backend call: a filter the client got wrong costs nothing but this reply.
  const ownFilter = clientFilter(s, rc, req.tf);
  let claims: SubscriptionTokenClaims | undefined;
  let proxied: SubscribeOutcome | undefined;
  let subRefreshProxy: ProxyTarget | undefined;
  if (req.token && ctx.permissions.verifiesTokens) {
    claims = await ctx.verifySubscriptionToken(req.token, rc.channel, s.user, s.id, 'subscribe');
  } else {
    // As in Centrifugo, the subscribe proxy decides for channels without their own access
    // control: private channels still need a token, user-limited ones list their users.
    const target = ctx.proxies.channel('subscribe', rc.options);
    if (target !== undefined && !rc.isPrivate && ctx.rules.allowedUsers(rc) === undefined) {
      proxied = await ctx.backend.subscribe(target, s.proxyConnection(), rc.channel, req.data);
      subRefreshProxy = ctx.proxies.channel('sub_refresh', rc.options);
    } else {
      ctx.permissions.checkSubscribe(rc, s.user);
    }
  }
  const expireAt = claims !== undefined ? claims.expireAt * 1000 : (proxied?.expireAt ?? 0);
  // As Centrifugo: a subscription that would already be expired is refused with 110.
  if (expireAt > 0 && expireAt <= Date.now()) throw new ProtocolError(ErrorCode.Expired);
  const enforced = claims
    ? serverFilter(s, rc.channel, claims.serverTagsFilter, 'token')
    : serverFilter(s, rc.channel, proxied?.serverTagsFilter, 'proxy');
  return { claims, proxied, subRefreshProxy, expireAt, ownFilter, enforced, delta };
}

/**
 * subscribe makes one subscription (see the module note on ordering). The caller queues the
 * reply and then calls `activate`, which releases the buffered publications.
 */
export async function subscribe(s: SessionCore, rc: ResolvedChannel, o: SubscribeOptions): Promise<Made> {
  const ctx = s.ctx;
  const ns = rc.options;
  const ov = o.override ?? {};
  const hasHistory = ChannelRules.hasHistory(ns);
  const forceRecovery = ov.forceRecovery ?? ns.force_recovery;
  const forcePositioning = ov.forcePositioning ?? ns.force_positioning;
  const joinLeave = ov.joinLeave ?? ns.join_leave;
  const forcePushJoinLeave = ov.forcePushJoinLeave ?? ns.force_push_join_leave;
  const presence = ov.presence ?? ns.presence;
  const recoverable = hasHistory && (forceRecovery || (ns.allow_recovery && (o.wantRecoverable || o.serverSide)));
  const positioned = recoverable || (hasHistory && (forcePositioning || (ns.allow_positioning && o.wantPositioned)));
  const joinLeaveEnabled = joinLeave || forcePushJoinLeave;
  const state: SubState = {
    channel: rc.channel,
    joinLeave: forcePushJoinLeave || (joinLeave && (o.wantJoinLeave || o.serverSide)),
    positioned,
    recoverable,
    presence,
    joinLeaveEnabled,
    buffer: [],
    offset: 0,
    epoch: '',
    expireAt: o.expireAt,
    chanInfo: o.chanInfo,
    subRefreshProxy: o.subRefreshProxy,
    refreshing: false,
    filter: bothFilters(o.serverFilter, o.clientFilter),
    serverFilter: o.serverFilter,
    // As in Centrifugo, a filtered subscription does not get deltas: it skips publications.
    delta: o.delta === true && o.serverFilter === undefined && o.clientFilter === undefined,
    deltaBase: undefined,
    mapKeys: mapKeysOf(rc, s.user),
  };
  (s.pending ??= new Set()).add(rc.channel);
  ctx.hub.addSub(rc.channel, s, state);
  const result: SubscribeResult = {};
  try {
    await ctx.nodeSubscribe(rc.channel);
    if (positioned) {
      const metaTtlMs = ctx.rules.historyMetaTtlMs(ns);
      if (recoverable && o.recover) {
        const r = { offset: o.offset, epoch: o.epoch, mode: ns.force_recovery_mode, filter: state.filter };
        state.offset = await recover(
          s,
          rc.channel,
          { ...r, rejectUnrecovered: o.rejectUnrecovered === true },
          metaTtlMs,
          result,
        );
      } else {
        const top = await ctx.broker.history(rc.channel, { limit: 0, metaTtlMs });
        result.offset = top.offset;
        result.epoch = top.epoch;
        state.offset = top.offset;
      }
      result.positioned = true;
      if (recoverable) result.recoverable = true;
      state.epoch = result.epoch ?? '';
      const pubs = result.publications;
      if (state.delta && pubs && pubs.length > 0) {
        // The client will hold the last recovered publication: live ones may follow as deltas.
        result.publications = deltaRecovered(pubs);
        state.deltaBase = (pubs[pubs.length - 1] as Publication).data;
      }
    }
    if (state.delta) result.delta = true;
    if (presence) await ctx.presence.addPresence(rc.channel, s.info(o.chanInfo), ctx.presenceTtlMs);
    if (joinLeaveEnabled) await ctx.broker.publishJoin(rc.channel, s.info(o.chanInfo));
  } catch (err) {
    s.pending?.delete(rc.channel);
    if (ctx.hub.removeSub(rc.channel, s)) await ctx.nodeUnsubscribe(rc.channel).catch(() => undefined);
    throw err;
  }
  s.pending?.delete(rc.channel);
  if (s.state === 'closed') {
    // Closed while subscribing: cleanup already ran for registered subs; undo this one.
    if (ctx.hub.removeSub(rc.channel, s)) await ctx.nodeUnsubscribe(rc.channel).catch(() => undefined);
    throw new ProtocolError(ErrorCode.Internal);
  }
  s.subs.set(rc.channel, state);
  ctx.metrics.subscriptions.inc();
  if (state.expireAt > 0) {
    // With the sub_refresh proxy the backend prolongs the subscription: the client is not told to.
    if (state.subRefreshProxy === undefined) {
      result.expires = true;
      result.ttl = ttlSeconds(state.expireAt);
    }
    s.subsChanged();
  }
  if (o.data !== undefined) result.data = o.data;
  const activate = () => {
    const buffered = state.buffer ?? [];
    state.buffer = undefined;
    for (const [pub, frame] of buffered) {
      if (pub) s.deliverPublication(state, pub, frame);
      else s.enqueue(frame as Buffer);
    }
    joinMapPresence(s, state);
  };
  return { result, activate };
}

/**
 * serverSubscribe subscribes the session from the server side (API `subscribe`) and tells the
 * client with a subscribe push. Already subscribed is a no-op.
 */
export async function serverSubscribe(
  s: SessionCore,
  channel: string,
  opts: { info?: RawJSON; data?: RawJSON; since?: { offset: number; epoch: string }; expireAt?: number },
): Promise<void> {
  if (s.state !== 'connected' || s.subs.has(channel) || isPending(s, channel)) return;
  const rc = s.ctx.rules.resolve(channel);
  const made = await subscribe(s, rc, {
    recover: opts.since !== undefined,
    offset: opts.since?.offset ?? 0,
    epoch: opts.since?.epoch ?? '',
    wantPositioned: false,
    wantRecoverable: false,
    wantJoinLeave: false,
    chanInfo: opts.info,
    data: opts.data,
    expireAt: opts.expireAt ?? 0,
    serverSide: true,
  });
  s.pushNow({ type: 'subscribe', channel, result: made.result });
  made.activate();
}

/**
 * unsubscribe removes a subscription. With `push`, the client is told (server-side
 * unsubscribe); a client's own unsubscribe needs no push.
 */
export async function unsubscribe(
  s: SessionCore,
  channel: string,
  push?: { code: number; reason: string },
): Promise<void> {
  const state = s.subs.get(channel);
  if (!state) return;
  s.subs.delete(channel);
  if (push) s.pushNow({ type: 'unsubscribe', channel, code: push.code, reason: push.reason });
  await removeSubscription(s, state);
}

/** removeSubscription undoes what subscribe did: hub index, node subscription, presence, leave. */
export async function removeSubscription(s: SessionCore, state: SubState): Promise<void> {
  const ctx = s.ctx;
  ctx.sharedPolls.release(s, state.channel);
  ctx.metrics.subscriptions.dec();
  if (ctx.hub.removeSub(state.channel, s)) await ctx.nodeUnsubscribe(state.channel);
  if (state.presence) await ctx.presence.removePresence(state.channel, s.id, s.user);
  if (state.joinLeaveEnabled) await ctx.broker.publishLeave(state.channel, s.info(state.chanInfo));
  if (state.mapKeys !== undefined) await leaveMapPresence(s, state);
}

/**
 * subRefreshCommand runs the client `sub_refresh` command (a new subscription token). As in
 * Centrifugo: not subscribed is 103; a subscription the sub_refresh proxy prolongs must not be
 * refreshed by the client (3501); a missing token is 107. With a `type`, it is a shared poll
 * track or untrack (shared-poll-track.ts).
 */
export async function subRefreshCommand(s: SessionCore, req: SubRefreshRequest): Promise<{ reply: Reply }> {
  if (req.type !== undefined && req.type !== 0) return sharedPollSubRefresh(s, req);
  const { channel, token } = req;
  requireChannel(channel);
  const state = s.subs.get(channel);
  if (!state) throw new ProtocolError(ErrorCode.PermissionDenied, 'not subscribed');
  if (state.subRefreshProxy !== undefined) throw new DisconnectError(disconnect(DisconnectCode.BadRequest));
  if (token === '') throw new ProtocolError(ErrorCode.BadRequest, 'bad request: token required');
  const claims = await s.ctx.verifySubscriptionToken(token, channel, s.user, s.id, 'sub_refresh');
  state.expireAt = claims.expireAt * 1000;
  s.subsChanged();
  const expires = state.expireAt > 0;
  return { reply: { method: 'sub_refresh', result: { expires, ttl: expires ? ttlSeconds(state.expireAt) : 0 } } };
}

/**
 * proxySubRefresh asks the backend to prolong an expired subscription (sub_refresh proxy):
 * expired → unsubscribe with 2501 (the SDK resubscribes, asking the subscribe proxy again); a
 * new expire_at prolongs it (0: never expires). A failed call keeps the subscription and asks
 * again after proxy.refresh_retry_interval.
 */
export function proxySubRefresh(s: SessionCore, sub: SubState, target: ProxyTarget): void {
  const ctx = s.ctx;
  sub.refreshing = true;
  ctx.backend
    .subRefresh(target, s.proxyConnection(), sub.channel)
    .then(
      (out) => {
        if (s.subs.get(sub.channel) !== sub) return; // unsubscribed meanwhile
        if (out.expired || (out.expireAt > 0 && out.expireAt <= Date.now())) {
          void unsubscribe(s, sub.channel, { code: UnsubscribeCode.Expired, reason: 'subscription expired' });
          return;
        }
        sub.expireAt = out.expireAt;
        if (out.info !== undefined) sub.chanInfo = out.info;
      },
      () => {
        // Already logged and counted by the proxy client: try again later.
        sub.expireAt = Date.now() + ctx.config.proxy.refresh_retry_interval;
      },
    )
    .finally(() => {
      sub.refreshing = false;
      if (s.state === 'connected') s.subsChanged();
    });
}

/**
 * subscriptionDeadlines runs the subscription deadlines due at `now`: past its expiry plus
 * `grace` (client.expired_close_delay) a subscription without a sub_refresh proxy is
 * unsubscribed (2501); an expired one with the proxy asks its backend (proxySubRefresh).
 */
export function subscriptionDeadlines(s: SessionCore, d: Deadlines, now: number, grace: number): void {
  if (d.nextSubExpiry > 0 && now >= d.nextSubExpiry + grace) {
    for (const sub of [...s.subs.values()]) {
      if (sub.expireAt > 0 && sub.expireAt <= now && sub.subRefreshProxy === undefined) {
        void unsubscribe(s, sub.channel, { code: UnsubscribeCode.Expired, reason: 'subscription expired' });
      }
    }
    d.updateSubExpiries(s.subs.values());
  }
  if (d.nextSubRefresh > 0 && now >= d.nextSubRefresh) {
    for (const sub of s.subs.values()) {
      const target = sub.subRefreshProxy;
      if (target !== undefined && !sub.refreshing && sub.expireAt > 0 && sub.expireAt <= now) {
        proxySubRefresh(s, sub, target);
      }
    }
    d.updateSubExpiries(s.subs.values());
  }
}
