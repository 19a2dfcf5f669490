/**
 * Cross-key rules of shared poll subscriptions, checked at load with the rest of the schema: a
 * shared_poll namespace needs the HMAC secret that signs tracked keys and a refresh proxy that
 * can be called (`default` needs channel.proxy.shared_poll_refresh.endpoint, any other name an
 * entry of `proxies[]`). A namespace that could never serve a track fails the start instead.
 *
 * The input is described structurally (not as `Config`) so this module does not depend on the
 * schema that calls it.
 *
 * @module
 */
import { endpointProblem, type ProxyConfigIssue } from './proxy-rules.js';

/** NamespaceInput is what these rules read of one namespace. */
interface NamespaceInput {
  readonly subscription_type: string;
  readonly shared_poll: { readonly proxy_name: string };
}

/** SharedPollRulesInput is the part of the parsed configuration these rules read. */
export interface SharedPollRulesInput {
  readonly shared_poll: { readonly hmac_secret_key: string };
  readonly channel: {
    readonly proxy: { readonly shared_poll_refresh: { readonly endpoint: string } };
    readonly without_namespace: NamespaceInput;
    readonly namespaces: ReadonlyArray<NamespaceInput>;
  };
  readonly proxies: ReadonlyArray<{ readonly name: string }>;
}

/** sharedPollConfigIssues lists every problem of the shared poll configuration (empty when valid). */
export function sharedPollConfigIssues(cfg: SharedPollRulesInput): ProxyConfigIssue[] {
  const issues: ProxyConfigIssue[] = [];
  const defaultEndpoint = cfg.channel.proxy.shared_poll_refresh.endpoint;
  const problem = endpointProblem(defaultEndpoint);
  if (problem !== undefined) {
    issues.push({ path: ['channel', 'proxy', 'shared_poll_refresh', 'endpoint'], message: problem });
  }
  const named = new Set(cfg.proxies.map((p) => p.name));
  const namespaces: Array<{ path: Array<string | number>; ns: NamespaceInput }> = [
    { path: ['channel', 'without_namespace'], ns: cfg.channel.without_namespace },
    ...cfg.channel.namespaces.map((ns, i) => ({ path: ['channel', 'namespaces', i], ns })),
  ];
  let needsSecret: Array<string | number> | undefined;
  for (const { path, ns } of namespaces) {
    if (ns.subscription_type !== 'shared_poll') continue;
    needsSecret ??= path;
    const name = ns.shared_poll.proxy_name;
    if (name === 'default' || name === '') {
      if (defaultEndpoint === '') {
        issues.push({
          path: [...path, 'shared_poll', 'proxy_name'],
          message:
            'needs channel.proxy.shared_poll_refresh.endpoint (or shared_poll.proxy_name naming an entry of proxies[])',
        });
      }
    } else if (!named.has(name)) {
      issues.push({ path: [...path, 'shared_poll', 'proxy_name'], message: `no proxy named "${name}" in proxies[]` });
    }
  }
  if (needsSecret !== undefined && cfg.shared_poll.hmac_secret_key === '') {
    issues.push({
      path: ['shared_poll', 'hmac_secret_key'],
      message: `required: ${needsSecret.join('.')} has subscription_type shared_poll, whose tracked keys are signed with it`,
    });
  }
  return issues;
}
