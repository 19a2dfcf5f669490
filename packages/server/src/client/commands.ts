/**
 * The commands of a connected session beside connect and subscribe: publish, unsubscribe,
 * presence, presence_stats, history, rpc and send. Each checks permissions and kill switches
 * before it costs the engine or the backend anything.
 *
 * @module
 */
import { ChannelRules } from '../channel-rules.js';
import { killSwitchError } from '../protection/kill-switch-error.js';
import { DisconnectCode, DisconnectError, ErrorCode, ProtocolError, disconnect } from '../protocol/codes.js';
import { forProfileAll } from '../protocol/publication-variants.js';
import { matches } from '../protocol/tags-filter.js';
import { asRaw, type HistoryRequest, type PublishRequest, type RawJSON, type Reply } from '../protocol/types.js';
import type { ProxyTarget } from '../proxy/proxies.js';
import { requireChannel, resolveClientChannel } from './command-checks.js';
import { mapPublish } from './map-publish.js';
import type { SessionCore } from './session-core.js';
import { unsubscribe } from './subscribe.js';

/** checkKillSwitch throws the kill switch's error (108, with its reason) when one refuses `kind` for `target`. */
function checkKillSwitch(s: SessionCore, kind: 'publish' | 'read' | 'rpc', target: string): void {
  const ctx = s.ctx;
  const off = ctx.killSwitches.find(kind, target);
  if (off === undefined) return;
  ctx.metrics.reject(`kill_switch_${kind}`);
  ctx.burstLog.warn(
    `kill_switch.${kind}`,
    { kind, target: off.target, reason: off.reason },
    'refused by a kill switch',
  );
  throw killSwitchError(off);
}

/**
 * publish runs the client `publish` command (through the publish proxy where one is set); a
 * keyed publish (`type: 1`) writes a map channel (map-publish.ts).
 */
export async function publish(s: SessionCore, req: PublishRequest): Promise<{ reply: Reply }> {
  const { channel, data } = req;
  requireChannel(channel);
  const ctx = s.ctx;
  const rc = resolveClientChannel(ctx.rules, channel);
  if ((req.type ?? 0) !== 0 || ChannelRules.isMap(rc.options)) {
    checkKillSwitch(s, 'publish', rc.namespace);
    return mapPublish(s, rc, req);
  }
  // With the publish proxy the backend decides instead of the allow_publish_* options.
  const target = ctx.proxies.channel('publish', rc.options);
  if (target === undefined) ctx.permissions.checkPublish(rc, s.user, s.subs.has(channel));
  // Kill switch before the backend call: a switched-off namespace costs the backend nothing.
  checkKillSwitch(s, 'publish', rc.namespace);
  const info = s.info(s.subs.get(channel)?.chanInfo);
  if (target === undefined) {
    await ctx.publishFromClient(rc, asRaw(data), info);
    return { reply: { method: 'publish' } };
  }
  const out = await ctx.backend.publish(target, s.proxyConnection(), channel, data);
  await ctx.publishFromClient(rc, out.data ?? asRaw(data), info, { skipHistory: out.skipHistory, tags: out.tags });
  return { reply: { method: 'publish' } };
}

/** presence runs `presence` (every entry) or, with `statsOnly`, `presence_stats` (counts). */
export async function presence(s: SessionCore, channel: string, statsOnly: boolean): Promise<{ reply: Reply }> {
  requireChannel(channel);
  const ctx = s.ctx;
  const rc = resolveClientChannel(ctx.rules, channel);
  if (!rc.options.presence) throw new ProtocolError(ErrorCode.NotAvailable);
  ctx.permissions.checkRead('presence', rc, s.user, s.subs.has(rc.channel));
  checkKillSwitch(s, 'read', rc.namespace);
  if (statsOnly) {
    const st = await ctx.presence.presenceStats(channel);
    return { reply: { method: 'presence_stats', result: { num_clients: st.numClients, num_users: st.numUsers } } };
  }
  return { reply: { method: 'presence', result: await ctx.presence.presence(channel) } };
}

/** history runs `history`; a limit below 0 or over client.history_max_publication_limit reads that maximum. */
export async function history(s: SessionCore, req: HistoryRequest): Promise<{ reply: Reply }> {
  requireChannel(req.channel);
  const ctx = s.ctx;
  const rc = resolveClientChannel(ctx.rules, req.channel);
  if (!ChannelRules.hasHistory(rc.options)) throw new ProtocolError(ErrorCode.NotAvailable);
  ctx.permissions.checkRead('history', rc, s.user, s.subs.has(rc.channel));
  checkKillSwitch(s, 'read', rc.namespace);
  const max = ctx.config.client.history_max_publication_limit;
  const asked = req.limit ?? 0;
  const limit = asked < 0 || asked > max ? max : asked;
  const h = await ctx.broker.history(req.channel, {
    since: req.since,
    limit,
    reverse: req.reverse === true,
    metaTtlMs: ctx.rules.historyMetaTtlMs(rc.options),
  });
  // A server-enforced tags filter holds for this client's reads of the channel too (Bulwark's own).
  const enforced = s.subs.get(rc.channel)?.serverFilter;
  if (enforced !== undefined) h.publications = h.publications.filter((p) => matches(enforced, p.tags));
  return { reply: { method: 'history', result: { ...h, publications: forProfileAll(h.publications, s.profile) } } };
}

/**
 * rpc runs `rpc`: a handler registered in-process (node.rpc) wins over the RPC proxy of the
 * method's namespace; proxied methods go through the protected cache (proxy.cache.rpc). Without
 * a route, as Centrifugo answers: 108 when the node has no RPC at all (no handler, no RPC proxy)
 * or the method's RPC namespace has its proxy off; 104 when the method's RPC namespace is not
 * configured, or when only handlers exist and none is this method's.
 */
export async function rpc(s: SessionCore, method: string, data: unknown): Promise<{ reply: Reply }> {
  const ctx = s.ctx;
  const handler = ctx.rpcHandlers.get(method);
  let target: ProxyTarget | undefined;
  if (handler === undefined) {
    if (!ctx.proxies.rpcProxying) {
      throw new ProtocolError(ctx.rpcHandlers.size > 0 ? ErrorCode.MethodNotFound : ErrorCode.NotAvailable);
    }
    const route = ctx.proxies.rpc(method);
    if (route === 'unknown_namespace') throw new ProtocolError(ErrorCode.MethodNotFound);
    if (route === 'not_enabled') throw new ProtocolError(ErrorCode.NotAvailable);
    target = route;
  }
  checkKillSwitch(s, 'rpc', method);
  if (handler) {
    const out = await handler(data, s.rpcContext());
    return { reply: { method: 'rpc', result: { data: out === undefined ? undefined : asRaw(out) } } };
  }
  const out: RawJSON | undefined = await ctx.rpcCache.call(method, s.user, data, () =>
    ctx.backend.rpc(target as ProxyTarget, s.proxyConnection(), method, data),
  );
  return { reply: { method: 'rpc', result: { data: out } } };
}

/** unsubscribeCommand runs the client `unsubscribe` command (also when not subscribed). */
export async function unsubscribeCommand(s: SessionCore, channel: string): Promise<{ reply: Reply }> {
  requireChannel(channel);
  await unsubscribe(s, channel);
  return { reply: { method: 'unsubscribe' } };
}

/**
 * send hands a client's fire-and-forget message to the node's message handler (no reply).
 * Without a handler the connection is closed with 3508, as Centrifugo does: `send` has no reply,
 * so a disconnect is the only way the client can learn the server does not take messages.
 */
export async function send(s: SessionCore, data: unknown): Promise<undefined> {
  const handler = s.ctx.messageHandler;
  if (handler === undefined) throw new DisconnectError(disconnect(DisconnectCode.NotAvailable));
  await handler(data, s.rpcContext());
  return undefined;
}
