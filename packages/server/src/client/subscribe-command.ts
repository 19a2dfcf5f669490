/**
 * The client `subscribe` command: a stream subscription (subscribe.ts), a map subscription
 * (map-subscribe.ts) or a shared poll subscription (shared-poll-subscribe.ts), as the
 * request's `type` and the channel's namespace say.
 *
 * @module
 */
import { ChannelRules } from '../channel-rules.js';
import type { Reply, SubscribeRequest } from '../protocol/types.js';
import { requireChannel, resolveClientChannel } from './command-checks.js';
import { mapSubscribeCommand } from './map-subscribe.js';
import { rejectUnrecoveredFlag } from './recovery.js';
import type { SessionCore } from './session-core.js';
import { isSharedPollSubscribe, sharedPollSubscribe } from './shared-poll-subscribe.js';
import { authorizeSubscribe, checkNewSubscription, subscribe } from './subscribe.js';

/** subscribeCommand runs the client `subscribe` command. */
export async function subscribeCommand(
  s: SessionCore,
  req: SubscribeRequest,
): Promise<{ reply: Reply; after: () => void }> {
  requireChannel(req.channel);
  const rc = resolveClientChannel(s.ctx.rules, req.channel);
  if (isSharedPollSubscribe(rc, req)) {
    checkNewSubscription(s, rc);
    return sharedPollSubscribe(s, rc, req);
  }
  if ((req.type ?? 0) !== 0 || ChannelRules.isMap(rc.options)) return mapSubscribeCommand(s, rc, req);
  const a = await authorizeSubscribe(s, rc, req);
  const made = await subscribe(s, rc, {
    recover: req.recover === true,
    offset: req.offset ?? 0,
    epoch: req.epoch ?? '',
    wantPositioned: req.positioned === true,
    wantRecoverable: req.recoverable === true,
    wantJoinLeave: req.join_leave === true,
    chanInfo: a.claims?.info ?? a.proxied?.info,
    data: a.claims?.data ?? a.proxied?.data,
    expireAt: a.expireAt,
    serverSide: false,
    override: a.claims?.override ?? a.proxied?.override,
    subRefreshProxy: a.subRefreshProxy,
    clientFilter: a.ownFilter,
    serverFilter: a.enforced,
    rejectUnrecovered: ((req.flag ?? 0) & rejectUnrecoveredFlag) !== 0,
    delta: a.delta,
  });
  return { reply: { method: 'subscribe', result: made.result }, after: made.activate };
}
