/**
 * Which proxy applies to an event: the connect and refresh proxies (client-wide), the
 * subscribe, publish and sub_refresh proxies a channel's namespace turns on, and the RPC
 * proxy of a method's RPC namespace. A namespace names its proxy `default` (the section's own
 * proxy object, e.g. `channel.proxy.subscribe`) or an entry of `proxies[]`, as in Centrifugo v6.
 * Pure lookups over the validated config (the schema already refused dangling names).
 *
 * @module
 */
import type { ChannelOptions, Config, ProxyConfig } from '../config/schema.js';

/** ProxyKind is a proxied event. */
export type ProxyKind =
  | 'connect'
  | 'refresh'
  | 'subscribe'
  | 'publish'
  | 'sub_refresh'
  | 'rpc'
  | 'shared_poll_refresh'
  | 'map_publish'
  | 'map_remove';

/** ChannelProxyKind is a proxied channel event. */
export type ChannelProxyKind = 'subscribe' | 'publish' | 'sub_refresh';

/** ProxyTarget is one configured backend endpoint with its per-request options. */
export interface ProxyTarget {
  /**
   * Stable name: the config path of a section's own proxy (`client.proxy.connect`,
   * `channel.proxy.subscribe`, `rpc.proxy`, …) or the `name` of an entry of `proxies[]`. It
   * labels metrics and keys the guard (one concurrency limit and breaker per target).
   */
  readonly name: string;
  readonly endpoint: string;
  readonly timeoutMs: number;
  /** Lower-case names of the client's upgrade request headers to copy into requests. */
  readonly httpHeaders: readonly string[];
  readonly staticHeaders: Readonly<Record<string, string>>;
  readonly includeConnectionMeta: boolean;
}

function target(name: string, p: ProxyConfig): ProxyTarget {
  return {
    name,
    endpoint: p.endpoint,
    timeoutMs: p.timeout,
    httpHeaders: p.http_headers.map((h) => h.toLowerCase()),
    staticHeaders: p.http.static_headers,
    includeConnectionMeta: p.include_connection_meta,
  };
}

/** ProxyResolver answers which proxy, if any, handles an event. */
export class ProxyResolver {
  /** The connect proxy, when client.proxy.connect.enabled. */
  readonly connect: ProxyTarget | undefined;
  /** The refresh proxy, when client.proxy.refresh.enabled. */
  readonly refresh: ProxyTarget | undefined;
  /** Every header name any proxy forwards (lower case): what a connection must keep of its upgrade request. */
  readonly forwardedHeaders: readonly string[];
  readonly #defaults: Readonly<Record<ChannelProxyKind, ProxyTarget>>;
  readonly #rpcDefault: ProxyTarget;
  readonly #sharedPollDefault: ProxyTarget;
  readonly #mapDefaults: Readonly<Record<'publish' | 'remove', ProxyTarget>>;
  readonly #named: ReadonlyMap<string, ProxyTarget>;
  readonly #rpc: Config['rpc'];
  readonly #rpcNamespaces: ReadonlyMap<string, Config['rpc']['without_namespace']>;

  constructor(cfg: Readonly<Config>) {
    const client = cfg.client.proxy;
    this.connect = client.connect.enabled ? target('client.proxy.connect', client.connect) : undefined;
    this.refresh = client.refresh.enabled ? target('client.proxy.refresh', client.refresh) : undefined;
    const ch = cfg.channel.proxy;
    this.#defaults = {
      subscribe: target('channel.proxy.subscribe', ch.subscribe),
      publish: target('channel.proxy.publish', ch.publish),
      sub_refresh: target('channel.proxy.sub_refresh', ch.sub_refresh),
    };
    this.#rpcDefault = target('rpc.proxy', cfg.rpc.proxy);
    this.#sharedPollDefault = target('channel.proxy.shared_poll_refresh', ch.shared_poll_refresh);
    this.#mapDefaults = {
      publish: target('channel.proxy.map_publish', ch.map_publish),
      remove: target('channel.proxy.map_remove', ch.map_remove),
    };
    this.#named = new Map(cfg.proxies.map((p) => [p.name, target(p.name, p)]));
    this.#rpc = cfg.rpc;
    this.#rpcNamespaces = new Map(cfg.rpc.namespaces.map((ns) => [ns.name, ns]));
    const all = [
      this.connect,
      this.refresh,
      ...Object.values(this.#defaults),
      this.#rpcDefault,
      this.#sharedPollDefault,
      ...Object.values(this.#mapDefaults),
      ...this.#named.values(),
    ];
    this.forwardedHeaders = [...new Set(all.flatMap((t) => t?.httpHeaders ?? []))];
  }

  /** channel returns the proxy a namespace turns on for `kind`, or undefined when it is off. */
  channel(kind: ChannelProxyKind, opts: ChannelOptions): ProxyTarget | undefined {
    if (!opts[`${kind}_proxy_enabled`]) return undefined;
    return this.#byName(opts[`${kind}_proxy_name`], this.#defaults[kind]);
  }

  /** mapWrite returns the proxy a map namespace turns on for client writes or removals, or undefined. */
  mapWrite(op: 'publish' | 'remove', opts: ChannelOptions): ProxyTarget | undefined {
    if (!opts.map[`${op}_proxy_enabled`]) return undefined;
    return this.#byName(opts.map[`${op}_proxy_name`], this.#mapDefaults[op]);
  }

  /** sharedPollRefresh returns the refresh proxy of a shared poll namespace (shared_poll.proxy_name). */
  sharedPollRefresh(opts: ChannelOptions): ProxyTarget | undefined {
    const name = opts.shared_poll.proxy_name;
    return this.#byName(name === '' ? 'default' : name, this.#sharedPollDefault);
  }

  /**
   * rpc routes an RPC method to the proxy of its namespace (the part before
   * rpc.namespace_boundary; rpc.without_namespace for a method without one): the target, or
   * `unknown_namespace` when that RPC namespace is not configured, or `not_enabled` when its
   * proxy is off. Centrifugo answers these 104 and 108 (see client/commands.ts).
   */
  rpc(method: string): ProxyTarget | 'unknown_namespace' | 'not_enabled' {
    const at = method.indexOf(this.#rpc.namespace_boundary);
    const opts = at === -1 ? this.#rpc.without_namespace : this.#rpcNamespaces.get(method.slice(0, at));
    if (opts === undefined) return 'unknown_namespace';
    if (!opts.proxy_enabled) return 'not_enabled';
    return this.#byName(opts.proxy_name, this.#rpcDefault) ?? 'not_enabled';
  }

  /** rpcProxying tells whether any RPC namespace (or rpc.without_namespace) sends calls to a proxy. */
  get rpcProxying(): boolean {
    return this.#rpc.without_namespace.proxy_enabled || this.#rpc.namespaces.some((ns) => ns.proxy_enabled);
  }

  #byName(name: string, fallback: ProxyTarget): ProxyTarget | undefined {
    return name === 'default' ? fallback : this.#named.get(name);
  }
}
