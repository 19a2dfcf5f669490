/**
 * Resolving a publish's variants into payloads before the publication is stored (Bulwark's
 * own; incident 2). A variant's payload is given inline (`data`), or is the answer of a
 * backend RPC (`rpc`: a method with an RPC proxy route), fetched once per publish through the
 * protected cache (`proxy.cache.rpc`): with the Redis engine and a shared tier, a million old
 * clients and three nodes cost the backend one call per sticker, not one per client or node.
 * A variant that cannot be resolved fails the whole publish, so nothing is published half-way
 * and the backend's retry (with an idempotency key) is safe.
 *
 * @module
 */
import type { Config } from '../config/schema.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import { asRaw, type PublicationVariant, type RawJSON, type VariantCondition } from '../protocol/types.js';
import type { BackendProxy, ProxyConnection } from '../proxy/backend-proxy.js';
import type { ProxyResolver } from '../proxy/proxies.js';
import type { RpcCache } from '../proxy/rpc-cache.js';

/** VariantInput is a variant as a publisher gives it: inline data, or an RPC that answers it. */
export interface VariantInput {
  when: VariantCondition;
  data?: unknown;
  rpc?: { method: string; data?: unknown } | undefined;
}

/** VariantContext is what resolving needs from the node. */
export interface VariantContext {
  readonly config: Readonly<Pick<Config, 'protection'>>;
  readonly proxies: Pick<ProxyResolver, 'rpc'>;
  readonly backend: Pick<BackendProxy, 'rpc'>;
  readonly rpcCache: Pick<RpcCache, 'call'>;
}

/**
 * The caller of a variant's RPC as the backend sees it: the server itself, not a client (no
 * client id, no user), so per-user cache rules share one answer for every subscriber.
 */
const SERVER_CALLER: ProxyConnection = {
  client: '',
  transport: 'server',
  user: '',
  meta: undefined,
  headers: undefined,
};

/**
 * resolveVariants turns `inputs` into stored variants, in order: inline data encoded, RPC
 * payloads fetched (concurrently). Throws ProtocolError 107 for a method with no RPC proxy
 * route or a payload larger than protection.publication_max_size, and the backend's own error
 * (or an unavailable one) when an RPC fails.
 */
export async function resolveVariants(
  ctx: VariantContext,
  inputs: readonly VariantInput[],
): Promise<PublicationVariant[]> {
  return Promise.all(
    inputs.map(async (v, i): Promise<PublicationVariant> => {
      const data = v.rpc === undefined ? asRaw(v.data) : await fetchPayload(ctx, i, v.rpc.method, v.rpc.data);
      const max = ctx.config.protection.publication_max_size;
      if (max > 0 && Buffer.byteLength(data) > max) {
        throw new ProtocolError(
          ErrorCode.LimitExceeded,
          `variants[${i}]: payload larger than protection.publication_max_size (${max} bytes)`,
        );
      }
      return { when: { ...v.when }, data };
    }),
  );
}

async function fetchPayload(ctx: VariantContext, i: number, method: string, data: unknown): Promise<RawJSON> {
  const target = ctx.proxies.rpc(method);
  if (target === undefined) {
    throw new ProtocolError(
      ErrorCode.BadRequest,
      `bad request: variants[${i}].rpc.method: no RPC proxy route for "${method}" (see rpc.proxy and rpc.namespaces)`,
    );
  }
  const out = await ctx.rpcCache.call(method, '', data, () => ctx.backend.rpc(target, SERVER_CALLER, method, data));
  // An RPC that answers nothing gives the variant JSON null, as an empty rpc reply gives a client.
  return out ?? asRaw(null);
}
