/**
 * The connect and refresh commands of a session: who the connection is (token, connect proxy
 * or anonymous), its server-side subscriptions, and how its expiry is prolonged (client
 * `refresh` with a token, the refresh proxy, or the server API's `refresh`).
 *
 * @module
 */
import type { ResolvedChannel } from '../channel-rules.js';
import type { ConnectTokenClaims } from '../auth/token-verifier.js';
import { DisconnectCode, DisconnectError, ErrorCode, ProtocolError, disconnect } from '../protocol/codes.js';
import { profileOf } from '../protocol/publication-variants.js';
import { ttlSeconds } from '../protocol/ttl.js';
import type { CompiledFilter } from '../protocol/tags-filter.js';
import {
  asRaw,
  type ConnectRequest,
  type ConnectResult,
  type RawJSON,
  type Reply,
  type SubscribeResult,
} from '../protocol/types.js';
import type { ProxyTarget } from '../proxy/proxies.js';
import type { Identity, SessionCore } from './session-core.js';
import { subscribe } from './subscribe.js';
import { serverFilter } from './tags-filters.js';

/** A connect's identity and what it grants: server-side subscriptions and reply data. */
interface Grant extends Identity {
  channels: string[];
  subs: ConnectTokenClaims['subs'];
  data?: RawJSON | undefined;
}

/** authenticate finds who is connecting: a verified token, the connect proxy's answer, or anonymous. */
async function authenticate(s: SessionCore, req: ConnectRequest): Promise<Grant> {
  const ctx = s.ctx;
  const cfg = ctx.config.client;
  if (req.token && ctx.permissions.verifiesTokens) {
    const claims = await ctx.verifyConnectToken(req.token);
    return {
      user: claims.user,
      expireAt: claims.expireAt * 1000,
      info: claims.info,
      meta: claims.meta,
      profile: profileOf(req.name, req.version, claims.features),
      channels: claims.channels,
      subs: claims.subs,
    };
  }
  if (ctx.proxies.connect !== undefined) {
    // No token: the backend says who this is (connect proxy), or refuses with its error/disconnect.
    const out = await ctx.backend.connect(ctx.proxies.connect, s.proxyConnection(), {
      name: req.name,
      version: req.version,
      data: req.data,
      channels: req.subs === undefined ? undefined : Object.keys(req.subs),
    });
    return {
      user: out.user,
      expireAt: out.expireAt,
      info: out.info,
      meta: out.meta === undefined ? undefined : asRaw(out.meta),
      profile: profileOf(req.name, req.version, out.features),
      channels: out.channels,
      subs: out.subs,
      data: out.data,
    };
  }
  // No credentials: Centrifugo closes with 3501 (the SDK does not reconnect), not an error reply.
  if (!ctx.permissions.anonymousAllowed(cfg.allow_anonymous_connect_without_token)) {
    throw new DisconnectError(disconnect(DisconnectCode.BadRequest));
  }
  const profile = profileOf(req.name, req.version);
  return { user: '', expireAt: 0, info: undefined, meta: undefined, profile, channels: [], subs: undefined };
}

/** connect runs the connect command: the reply, and the server-side subscriptions to activate after it. */
export async function connect(s: SessionCore, req: ConnectRequest): Promise<{ reply: Reply; after?: () => void }> {
  const ctx = s.ctx;
  const cfg = ctx.config.client;
  const grant = await authenticate(s, req);
  if (s.state !== 'connecting') throw new ProtocolError(ErrorCode.BadRequest);
  // As Centrifugo: credentials that expire before now (a past `expire_at`) are refused with 110.
  if (grant.expireAt > 0 && grant.expireAt < Date.now()) throw new ProtocolError(ErrorCode.Expired);
  const user = grant.user;
  if (cfg.user_connection_limit > 0 && user !== '' && ctx.hub.userConnectionCount(user) >= cfg.user_connection_limit) {
    ctx.metrics.reject('user_connection_limit');
    throw new DisconnectError(disconnect(DisconnectCode.ConnectionLimit));
  }
  s.becomeConnected(grant);

  // Server-side subscriptions granted by the token; the client may ask to recover them.
  const subs: Record<string, SubscribeResult> = {};
  const activations: Array<() => void> = [];
  for (const channel of grantedChannels(grant)) {
    let rc: ResolvedChannel;
    try {
      rc = ctx.rules.resolve(channel);
    } catch {
      ctx.log.warn({ client: s.id, user, channel }, 'token or connect proxy grants an invalid channel; skipped');
      continue;
    }
    const asked = req.subs?.[channel];
    const granted = grant.subs?.[channel];
    let enforced: CompiledFilter | undefined;
    try {
      enforced = serverFilter(s, channel, granted?.serverTagsFilter, 'subs');
    } catch (err) {
      if (err instanceof ProtocolError) continue; // logged: never subscribed without its filter
      throw err;
    }
    const made = await subscribe(s, rc, {
      recover: asked?.recover === true,
      offset: asked?.offset ?? 0,
      epoch: asked?.epoch ?? '',
      wantPositioned: false,
      wantRecoverable: false,
      wantJoinLeave: false,
      chanInfo: granted?.info,
      data: granted?.data,
      expireAt: 0,
      serverSide: true,
      override: granted?.override,
      serverFilter: enforced,
    });
    subs[channel] = made.result;
    activations.push(made.activate);
  }

  const result: ConnectResult = {
    client: s.id,
    version: ctx.version,
    // The protocol advertises whole seconds; a sub-second interval must not read as 0 (off).
    ping: cfg.ping_interval > 0 ? Math.max(1, Math.round(cfg.ping_interval / 1000)) : 0,
    // A unidirectional client cannot answer pings.
    pong: cfg.ping_interval > 0 && s.codec.unidirectional !== true,
    node: ctx.nodeId,
    subs,
  };
  // Over HTTP-streaming and SSE the client names its session in every /emulation request.
  const session = s.transport.session;
  if (session !== undefined) result.session = session;
  // With the refresh proxy the backend prolongs the connection: the client is not told to.
  if (grant.expireAt > 0 && ctx.proxies.refresh === undefined) {
    result.expires = true;
    result.ttl = ttlSeconds(grant.expireAt);
  }
  if (grant.data !== undefined) result.data = grant.data;
  if (cfg.connect_include_server_time) result.time = Date.now();
  // Guarded: the fields would be built (and the peer address asked of the kernel) on every connect.
  if (ctx.log.isLevelEnabled('debug'))
    ctx.log.debug({ client: s.id, user, remote: s.remoteAddress }, 'client connected');
  const reply: Reply = { method: 'connect', result };
  return activations.length === 0 ? { reply } : { reply, after: () => activations.forEach((a) => a()) };
}

/** grantedChannels lists the server-side subscriptions a grant makes, each once (most grants make none). */
function grantedChannels(grant: Grant): Iterable<string> {
  const fromSubs = grant.subs === undefined ? [] : Object.keys(grant.subs);
  if (fromSubs.length === 0 && grant.channels.length <= 1) return grant.channels;
  return new Set([...grant.channels, ...fromSubs]);
}

/**
 * refresh runs the client `refresh` command. A token for another user would switch identities
 * mid-connection: 3500. An expired one means the client cannot stay: Centrifugo closes with
 * 3005 here.
 */
export async function refresh(s: SessionCore, token: string): Promise<{ reply: Reply }> {
  const ctx = s.ctx;
  ctx.permissions.checkRefresh();
  // As Centrifugo: a refresh without a token, or while the refresh proxy prolongs this
  // connection (server-side refresh), is a broken client: 3501.
  if (token === '' || ctx.proxies.refresh !== undefined)
    throw new DisconnectError(disconnect(DisconnectCode.BadRequest));
  const claims = await ctx.verifyConnectToken(token, s.user).catch((err: unknown) => {
    if (err instanceof ProtocolError && err.code === ErrorCode.TokenExpired) {
      throw new DisconnectError(disconnect(DisconnectCode.Expired));
    }
    throw err;
  });
  if (claims.info !== undefined) s.connInfo = claims.info;
  s.setExpiry(claims.expireAt * 1000);
  const expires = s.expireAt > 0;
  const result = { client: s.id, version: ctx.version, expires, ttl: expires ? ttlSeconds(s.expireAt) : 0 };
  return { reply: { method: 'refresh', result } };
}

/**
 * proxyRefresh asks the backend to prolong this expired connection (refresh proxy): expired →
 * disconnect 3005; a new expire_at prolongs it (0: never expires). When the call fails (backend
 * down, timeout, bad answer), the connection is kept and asked about again after
 * proxy.refresh_retry_interval, so a backend outage does not disconnect everyone.
 * `done` runs when the call settled (the session clears its in-flight flag and reschedules).
 */
export function proxyRefresh(s: SessionCore, target: ProxyTarget, done: (expireAt: number) => void): void {
  const ctx = s.ctx;
  let expireAt = s.expireAt;
  ctx.backend
    .refresh(target, s.proxyConnection())
    .then(
      (out) => {
        if (s.state !== 'connected') return;
        if (out.expired || (out.expireAt > 0 && out.expireAt <= Date.now())) {
          s.disconnect(disconnect(DisconnectCode.Expired));
          return;
        }
        expireAt = out.expireAt;
        if (out.info !== undefined) s.connInfo = out.info;
      },
      () => {
        // Already logged and counted by the proxy client: try again later.
        expireAt = Date.now() + ctx.config.proxy.refresh_retry_interval;
      },
    )
    .finally(() => done(expireAt));
}

/**
 * applyRefresh changes the connection's expiry and info from the server side (API `refresh`).
 * `expireAt` in ms since epoch; 0 clears expiry. An expired connection is disconnected at once.
 */
export function applyRefresh(s: SessionCore, expireAt: number, info: RawJSON | undefined, expired: boolean): void {
  if (s.state !== 'connected') return;
  if (expired || (expireAt > 0 && expireAt <= Date.now())) {
    s.disconnect(disconnect(DisconnectCode.Expired));
    return;
  }
  if (info !== undefined) s.connInfo = info;
  s.setExpiry(expireAt);
  s.pushNow({ type: 'refresh', expires: expireAt > 0, ttl: expireAt > 0 ? ttlSeconds(expireAt) : 0 });
}
