/**
 * BackendProxy: the proxy events as a session sees them. Each method builds the request body
 * Centrifugo v6 documents for its event (`client`, `transport`, `protocol`, `encoding`, then
 * the event's fields), sends it through the {@link HttpProxyClient}, and turns the validated
 * result into Bulwark's types (encoded JSON, milliseconds, flattened overrides).
 *
 * @module
 */
import type { SubscriptionOverride, TokenSubscribeOptions } from '../auth/token-verifier.js';
import { asRaw, type RawJSON } from '../protocol/types.js';
import type { HttpProxyClient } from './http-proxy-client.js';
import {
  mapPublishOutcome,
  mapPublishResultSchema,
  mapRemoveOutcome,
  mapRemoveResultSchema,
  type MapPublishOutcome,
  type MapRemoveOutcome,
} from './map-proxy.js';
import type { ProxyTarget } from './proxies.js';
import {
  connectResultSchema,
  publishResultSchema,
  refreshResultSchema,
  rpcResultSchema,
  subRefreshResultSchema,
  subscribeResultSchema,
  type proxyOverrideSchema,
} from './proxy-protocol.js';
import {
  refreshOutcome,
  sharedPollRefreshResultSchema,
  type RefreshItemRequest,
  type SharedPollRefreshOutcome,
} from './shared-poll-refresh.js';
import type { z } from 'zod';

/** ProxyConnection is what a proxy request says about the connection it is for. */
export interface ProxyConnection {
  readonly client: string;
  /** Transport name ("websocket"). */
  readonly transport: string;
  readonly user: string;
  /** Connection meta (connect proxy result or token `meta`), sent when the proxy includes it. */
  readonly meta: RawJSON | undefined;
  /** The client's upgrade request headers this node kept (lower-case names). */
  readonly headers: Readonly<Record<string, string>> | undefined;
}

/** ConnectProxyRequest is what the client sent in its connect command. */
export interface ConnectProxyRequest {
  name?: string | undefined;
  version?: string | undefined;
  data?: unknown;
  /** Channels the client asks to recover (keys of its connect `subs`). */
  channels?: readonly string[] | undefined;
}

/** ConnectOutcome is an accepted connect: who the user is and what the connection gets. */
export interface ConnectOutcome {
  user: string;
  /** Expiry in ms since epoch; 0 means never. */
  expireAt: number;
  info?: RawJSON | undefined;
  /** Data for the client, in the connect reply. */
  data?: RawJSON | undefined;
  channels: string[];
  subs: Record<string, TokenSubscribeOptions>;
  meta?: Record<string, unknown> | undefined;
  /** What the client can render (Bulwark's `features`), for publication variants. */
  features?: string[] | undefined;
}

/** RefreshOutcome prolongs or ends a connection or subscription. */
export interface RefreshOutcome {
  expired: boolean;
  /** New expiry in ms since epoch; 0 means never. */
  expireAt: number;
  info?: RawJSON | undefined;
}

/** SubscribeOutcome is an allowed subscription. */
export interface SubscribeOutcome {
  info?: RawJSON | undefined;
  data?: RawJSON | undefined;
  override?: SubscriptionOverride | undefined;
  /** Expiry in ms since epoch; 0 means never. */
  expireAt: number;
  /** The server-enforced publication tags filter (`server_tags_filter`), not yet checked. */
  serverTagsFilter?: Record<string, unknown> | undefined;
}

/** PublishOutcome is an allowed publication, maybe changed by the backend. */
export interface PublishOutcome {
  /** Replaces the client's data when set. */
  data?: RawJSON | undefined;
  skipHistory: boolean;
  tags?: Record<string, string> | undefined;
}

const raw = (v: unknown): RawJSON | undefined => (v === undefined ? undefined : asRaw(v));
const ms = (unixSeconds: number | null | undefined): number => (unixSeconds ?? 0) * 1000;

function override(o: z.output<typeof proxyOverrideSchema>): SubscriptionOverride | undefined {
  if (o == null) return undefined;
  const out: SubscriptionOverride = {};
  if (o.presence != null) out.presence = o.presence.value;
  if (o.join_leave != null) out.joinLeave = o.join_leave.value;
  if (o.force_push_join_leave != null) out.forcePushJoinLeave = o.force_push_join_leave.value;
  if (o.force_positioning != null) out.forcePositioning = o.force_positioning.value;
  if (o.force_recovery != null) out.forceRecovery = o.force_recovery.value;
  return out;
}

/** BackendProxy sends the proxy events of sessions to the backend. */
export class BackendProxy {
  readonly #client: HttpProxyClient;

  constructor(client: HttpProxyClient) {
    this.#client = client;
  }

  /** base is the request part every event shares; `user` and `meta` are left out of connect. */
  #base(target: ProxyTarget, c: ProxyConnection, withUser: boolean): Record<string, unknown> {
    const body: Record<string, unknown> = {
      client: c.client,
      transport: c.transport,
      protocol: 'json',
      encoding: 'json',
    };
    if (withUser) {
      body['user'] = c.user;
      // Parsed per request, and only for proxies that include it: meta is small and rarely sent.
      if (target.includeConnectionMeta && c.meta !== undefined) body['meta'] = JSON.parse(c.meta) as unknown;
    }
    return body;
  }

  /** connect asks the backend who a connection without a token is (connect proxy). */
  async connect(target: ProxyTarget, c: ProxyConnection, req: ConnectProxyRequest): Promise<ConnectOutcome> {
    const body = this.#base(target, c, false);
    if (req.name) body['name'] = req.name;
    if (req.version) body['version'] = req.version;
    if (req.data !== undefined) body['data'] = req.data;
    if (req.channels !== undefined && req.channels.length > 0) body['channels'] = req.channels;
    const r = (await this.#client.call({
      kind: 'connect',
      target,
      body,
      headers: c.headers,
      result: connectResultSchema,
      requireResult: true,
    })) as z.output<typeof connectResultSchema>;
    const subs: Record<string, TokenSubscribeOptions> = {};
    for (const [channel, o] of Object.entries(r.subs ?? {})) {
      const opts: TokenSubscribeOptions = { info: raw(o.info), data: raw(o.data), override: override(o.override) };
      if (o.server_tags_filter) opts.serverTagsFilter = o.server_tags_filter;
      subs[channel] = opts;
    }
    return {
      user: r.user,
      expireAt: ms(r.expire_at),
      info: raw(r.info),
      data: raw(r.data),
      channels: r.channels ?? [],
      subs,
      meta: r.meta ?? undefined,
      features: r.features ?? undefined,
    };
  }

  /** refresh asks the backend to prolong an expiring connection (refresh proxy). */
  async refresh(target: ProxyTarget, c: ProxyConnection): Promise<RefreshOutcome> {
    const r = (await this.#client.call({
      kind: 'refresh',
      target,
      body: this.#base(target, c, true),
      headers: c.headers,
      result: refreshResultSchema,
      requireResult: true,
    })) as z.output<typeof refreshResultSchema>;
    return { expired: r.expired === true, expireAt: ms(r.expire_at), info: raw(r.info) };
  }

  /** subscribe asks the backend whether the connection may subscribe to `channel` (subscribe proxy). */
  async subscribe(target: ProxyTarget, c: ProxyConnection, channel: string, data: unknown): Promise<SubscribeOutcome> {
    const body = this.#base(target, c, true);
    body['channel'] = channel;
    if (data !== undefined) body['data'] = data;
    const r = await this.#client.call({
      kind: 'subscribe',
      target,
      body,
      headers: c.headers,
      result: subscribeResultSchema,
      requireResult: false,
    });
    return {
      info: raw(r?.info),
      data: raw(r?.data),
      override: override(r?.override),
      expireAt: ms(r?.expire_at),
      serverTagsFilter: r?.server_tags_filter ?? undefined,
    };
  }

  /** publish asks the backend whether the connection may publish `data` to `channel` (publish proxy). */
  async publish(target: ProxyTarget, c: ProxyConnection, channel: string, data: unknown): Promise<PublishOutcome> {
    const body = this.#base(target, c, true);
    body['channel'] = channel;
    body['data'] = data;
    const r = await this.#client.call({
      kind: 'publish',
      target,
      body,
      headers: c.headers,
      result: publishResultSchema,
      requireResult: false,
    });
    return { data: raw(r?.data), skipHistory: r?.skip_history === true, tags: r?.tags ?? undefined };
  }

  /** mapPublish asks the backend whether the connection may write `key` of map `channel` (map publish proxy). */
  async mapPublish(
    target: ProxyTarget,
    c: ProxyConnection,
    channel: string,
    key: string,
    data: unknown,
  ): Promise<MapPublishOutcome> {
    const body = this.#base(target, c, true);
    body['channel'] = channel;
    body['key'] = key;
    body['data'] = data;
    const r = await this.#client.call({
      kind: 'map_publish',
      target,
      body,
      headers: c.headers,
      result: mapPublishResultSchema,
      requireResult: false,
    });
    return mapPublishOutcome(r);
  }

  /** mapRemove asks the backend whether the connection may remove `key` of map `channel` (map remove proxy). */
  async mapRemove(target: ProxyTarget, c: ProxyConnection, channel: string, key: string): Promise<MapRemoveOutcome> {
    const body = this.#base(target, c, true);
    body['channel'] = channel;
    body['key'] = key;
    const r = await this.#client.call({
      kind: 'map_remove',
      target,
      body,
      headers: c.headers,
      result: mapRemoveResultSchema,
      requireResult: false,
    });
    return mapRemoveOutcome(r);
  }

  /** subRefresh asks the backend to prolong an expiring subscription (sub_refresh proxy). */
  async subRefresh(target: ProxyTarget, c: ProxyConnection, channel: string): Promise<RefreshOutcome> {
    const body = this.#base(target, c, true);
    body['channel'] = channel;
    const r = (await this.#client.call({
      kind: 'sub_refresh',
      target,
      body,
      headers: c.headers,
      result: subRefreshResultSchema,
      requireResult: true,
    })) as z.output<typeof subRefreshResultSchema>;
    return { expired: r.expired === true, expireAt: ms(r.expire_at), info: raw(r.info) };
  }

  /** rpc sends the client's RPC to the backend (RPC proxy) and returns the reply data. */
  async rpc(target: ProxyTarget, c: ProxyConnection, method: string, data: unknown): Promise<RawJSON | undefined> {
    const body = this.#base(target, c, true);
    if (method !== '') body['method'] = method;
    if (data !== undefined) body['data'] = data;
    const r = await this.#client.call({
      kind: 'rpc',
      target,
      body,
      headers: c.headers,
      result: rpcResultSchema,
      requireResult: false,
    });
    return raw(r?.data);
  }

  /**
   * sharedPollRefresh asks the backend for the current state of tracked items (shared poll
   * refresh proxy). Not on behalf of a connection: the body is the channel and items only.
   */
  async sharedPollRefresh(
    target: ProxyTarget,
    channel: string,
    items: readonly RefreshItemRequest[],
  ): Promise<SharedPollRefreshOutcome> {
    const r = await this.#client.call({
      kind: 'shared_poll_refresh',
      target,
      body: { channel, items },
      headers: undefined,
      result: sharedPollRefreshResultSchema,
      requireResult: false,
    });
    return refreshOutcome(r);
  }
}
