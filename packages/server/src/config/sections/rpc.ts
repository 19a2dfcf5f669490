/**
 * The `rpc` section of the config: the RPC proxy and the RPC namespaces that turn it on,
 * named as in Centrifugo v6.
 *
 * @module
 */
import { z } from 'zod';
import { proxyName, proxyNamePattern, proxySchema } from './proxy.js';

/** rpcOptionsShape holds the per-namespace RPC options, named as in Centrifugo v6. */
const rpcOptionsShape = {
  proxy_enabled: z
    .boolean()
    .default(false)
    .describe('Send RPC calls of this namespace to the backend (RPC proxy). Methods registered with node.rpc() win.'),
  proxy_name: proxyName('rpc (rpc.proxy)'),
};

/** rpcSection is the `rpc` section. */
export const rpcSection = z
  .strictObject({
    proxy: proxySchema.describe('The `default` RPC proxy (namespaces turn it on).'),
    without_namespace: z
      .strictObject(rpcOptionsShape)
      .prefault({})
      .describe('Options of RPC methods without a namespace.'),
    namespaces: z
      .array(
        z.strictObject({
          name: z
            .string()
            .regex(proxyNamePattern, 'rpc namespace name must be 2+ characters of [-a-zA-Z0-9_.]')
            .describe('RPC namespace: the part of a method before rpc.namespace_boundary.'),
          ...rpcOptionsShape,
        }),
      )
      .default([])
      .describe('RPC namespaces: methods named `<name>:<rest>`, each with proxy_enabled and proxy_name.'),
    namespace_boundary: z.string().min(1).default(':').describe('Separates RPC namespace from method.'),
  })
  .prefault({})
  .describe('RPC proxying to the backend (see docs/PROXY.md).');
