/**
 * Cross-key rules of the proxy configuration, checked once at startup with the rest of the
 * schema: an enabled proxy needs an endpoint, a proxy name must name a configured proxy, and
 * an endpoint must be an HTTP(S) URL (Bulwark has no gRPC proxy). Every problem names the key
 * to fix, so a proxy that could never be called fails the start instead of every connect.
 *
 * The input is described structurally (not as `Config`) so this module does not depend on the
 * schema that calls it.
 *
 * @module
 */

/** ProxyObjectInput is what these rules read of one proxy configuration object. */
interface ProxyObjectInput {
  readonly endpoint: string;
}

/** ProxyRulesInput is the part of the parsed configuration the proxy rules read. */
export interface ProxyRulesInput {
  readonly client: {
    readonly proxy: {
      readonly connect: ProxyObjectInput & { readonly enabled: boolean };
      readonly refresh: ProxyObjectInput & { readonly enabled: boolean };
    };
  };
  readonly channel: {
    readonly proxy: Readonly<Record<ChannelProxyKind | MapProxyKind, ProxyObjectInput>>;
    readonly without_namespace: ChannelProxyOptions;
    readonly namespaces: ReadonlyArray<ChannelProxyOptions & { readonly name: string }>;
  };
  readonly rpc: {
    readonly proxy: ProxyObjectInput;
    readonly without_namespace: RpcProxyOptions;
    readonly namespaces: ReadonlyArray<RpcProxyOptions & { readonly name: string }>;
  };
  readonly proxies: ReadonlyArray<ProxyObjectInput & { readonly name: string }>;
}

/** ChannelProxyKind is a channel-wide proxy event. */
export type ChannelProxyKind = 'subscribe' | 'publish' | 'sub_refresh';

/** MapProxyKind is a map channel proxy event (turned on in a namespace's `map` block). */
export type MapProxyKind = 'map_publish' | 'map_remove';

type ChannelProxyOptions = Readonly<
  Record<`${ChannelProxyKind}_proxy_enabled`, boolean> &
    Record<`${ChannelProxyKind}_proxy_name`, string> & {
      map: Readonly<Record<'publish_proxy_enabled' | 'remove_proxy_enabled', boolean>> &
        Readonly<Record<'publish_proxy_name' | 'remove_proxy_name', string>>;
    }
>;

interface RpcProxyOptions {
  readonly proxy_enabled: boolean;
  readonly proxy_name: string;
}

/** ProxyConfigIssue is one problem: the key path and what is wrong. */
export interface ProxyConfigIssue {
  path: Array<string | number>;
  message: string;
}

/** endpointProblem tells what is wrong with an endpoint URL, or undefined when it is usable. */
export function endpointProblem(endpoint: string): string | undefined {
  if (endpoint === '') return undefined;
  if (/^grpc:\/\//i.test(endpoint)) return 'gRPC proxies are not supported: use an http:// or https:// endpoint';
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return `"${endpoint}" is not a URL (use e.g. http://backend:3000/centrifugo/connect)`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `unsupported scheme "${url.protocol}": use an http:// or https:// endpoint`;
  }
  return undefined;
}

const channelKinds: readonly ChannelProxyKind[] = ['subscribe', 'publish', 'sub_refresh'];

/** proxyConfigIssues lists every problem of the proxy configuration (empty when it is valid). */
export function proxyConfigIssues(cfg: ProxyRulesInput): ProxyConfigIssue[] {
  const issues: ProxyConfigIssue[] = [];
  const checkEndpoint = (path: Array<string | number>, endpoint: string) => {
    const problem = endpointProblem(endpoint);
    if (problem !== undefined) issues.push({ path: [...path, 'endpoint'], message: problem });
  };

  for (const kind of ['connect', 'refresh'] as const) {
    const p = cfg.client.proxy[kind];
    checkEndpoint(['client', 'proxy', kind], p.endpoint);
    if (p.enabled && p.endpoint === '') {
      issues.push({
        path: ['client', 'proxy', kind, 'endpoint'],
        message: `required when client.proxy.${kind}.enabled is true`,
      });
    }
  }
  for (const kind of [...channelKinds, 'map_publish', 'map_remove'] as const) {
    checkEndpoint(['channel', 'proxy', kind], cfg.channel.proxy[kind].endpoint);
  }
  checkEndpoint(['rpc', 'proxy'], cfg.rpc.proxy.endpoint);

  const named = new Set<string>();
  cfg.proxies.forEach((p, i) => {
    if (p.name === 'default') {
      issues.push({
        path: ['proxies', i, 'name'],
        message: '"default" is reserved: it means the proxy object of the section (e.g. channel.proxy.subscribe)',
      });
    }
    if (named.has(p.name)) issues.push({ path: ['proxies', i, 'name'], message: `duplicate proxy name "${p.name}"` });
    named.add(p.name);
    if (p.endpoint === '') issues.push({ path: ['proxies', i, 'endpoint'], message: 'required' });
    checkEndpoint(['proxies', i], p.endpoint);
  });

  /** checkReference checks one enabled proxy reference: `default` needs the section's endpoint. */
  const checkReference = (
    path: Array<string | number>,
    enabledKey: string,
    nameKey: string,
    name: string,
    defaultKey: string,
    defaultEndpoint: string,
  ) => {
    if (name === 'default') {
      if (defaultEndpoint === '') {
        issues.push({
          path: [...path, enabledKey],
          message: `needs ${defaultKey}.endpoint (or ${nameKey} naming an entry of proxies[])`,
        });
      }
    } else if (!named.has(name)) {
      issues.push({ path: [...path, nameKey], message: `no proxy named "${name}" in proxies[]` });
    }
  };

  const channelNamespaces: Array<{ path: Array<string | number>; opts: ChannelProxyOptions }> = [
    { path: ['channel', 'without_namespace'], opts: cfg.channel.without_namespace },
    ...cfg.channel.namespaces.map((ns, i) => ({ path: ['channel', 'namespaces', i], opts: ns })),
  ];
  for (const { path, opts } of channelNamespaces) {
    for (const kind of channelKinds) {
      if (!opts[`${kind}_proxy_enabled`]) continue;
      checkReference(
        path,
        `${kind}_proxy_enabled`,
        `${kind}_proxy_name`,
        opts[`${kind}_proxy_name`],
        `channel.proxy.${kind}`,
        cfg.channel.proxy[kind].endpoint,
      );
    }
    for (const op of ['publish', 'remove'] as const) {
      if (!opts.map[`${op}_proxy_enabled`]) continue;
      checkReference(
        [...path, 'map'],
        `${op}_proxy_enabled`,
        `${op}_proxy_name`,
        opts.map[`${op}_proxy_name`],
        `channel.proxy.map_${op}`,
        cfg.channel.proxy[`map_${op}`].endpoint,
      );
    }
  }

  const rpcNamespaces: Array<{ path: Array<string | number>; opts: RpcProxyOptions }> = [
    { path: ['rpc', 'without_namespace'], opts: cfg.rpc.without_namespace },
    ...cfg.rpc.namespaces.map((ns, i) => ({ path: ['rpc', 'namespaces', i], opts: ns })),
  ];
  for (const { path, opts } of rpcNamespaces) {
    if (!opts.proxy_enabled) continue;
    checkReference(path, 'proxy_enabled', 'proxy_name', opts.proxy_name, 'rpc.proxy', cfg.rpc.proxy.endpoint);
  }
  const rpcNames = new Set<string>();
  cfg.rpc.namespaces.forEach((ns, i) => {
    if (rpcNames.has(ns.name)) {
      issues.push({ path: ['rpc', 'namespaces', i, 'name'], message: `duplicate rpc namespace "${ns.name}"` });
    }
    rpcNames.add(ns.name);
  });
  return issues;
}
