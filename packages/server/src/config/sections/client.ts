/**
 * The `client` section of the config: token verification, limits and timings of client
 * connections, and the client-wide (connect and refresh) proxies, named as in Centrifugo v6.
 *
 * @module
 */
import { z } from 'zod';
import { duration, secret } from './common.js';
import { parseOriginPattern } from '../../util/origin.js';
import { proxyShape } from './proxy.js';

const tokenSchema = z
  .strictObject({
    hmac_secret_key: secret.describe('HMAC secret for HS256/HS384/HS512 tokens. A secret: never has a default.'),
    rsa_public_key: z.string().default('').describe('PEM public key for RS256/RS384/RS512 tokens.'),
    ecdsa_public_key: z.string().default('').describe('PEM public key for ES256/ES384/ES512 tokens.'),
    audience: z.string().default('').describe('When set, tokens must carry this `aud`.'),
    issuer: z.string().default('').describe('When set, tokens must carry this `iss`.'),
  })
  .prefault({});

/** clientSection is the `client` section. */
export const clientSection = z
  .strictObject({
    token: tokenSchema.describe('Connection token verification.'),
    subscription_token: z
      .strictObject({
        enabled: z.boolean().default(false).describe('Use separate keys for subscription tokens.'),
        ...tokenSchema.unwrap().shape,
      })
      .prefault({})
      .describe('Subscription token verification; when disabled, client.token keys verify them.'),
    insecure: z
      .boolean()
      .default(false)
      .describe('Accept every connection without a token. Local demos only: logs a loud warning.'),
    allow_anonymous_connect_without_token: z
      .boolean()
      .default(false)
      .describe('Connections without a token are accepted as anonymous (user "").'),
    allowed_origins: z
      .array(
        z.string().superRefine((p, ctx) => {
          const parsed = parseOriginPattern(p);
          if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: `"${p}": ${parsed}` });
        }),
      )
      .default([])
      .describe(
        'Origins allowed to connect from a browser, each scheme://host[:port] (no port: the scheme\'s default), compared as parsed scheme, host and port; "*" as whole leading host labels ("https://*.example.com": any subdomain), or alone to allow all. Empty: same-origin only (same scheme, host and port as the request).',
      ),
    presence_update_interval: duration('27s').describe(
      "How often a node refreshes its clients' presence entries; entries live 2.5× this.",
    ),
    write_delay: duration('0s').describe(
      'Hold pushes to a connection up to this long so several share one write (less CPU per message, that much more latency). Replies are never delayed. 0: flush after each I/O pass.',
    ),
    ping_interval: duration('25s').describe('Server ping period.'),
    pong_timeout: duration('8s').describe('Disconnect (3012) when the pong to a ping is later than this.'),
    expired_close_delay: duration('25s').describe(
      'Grace after a connection token expires before disconnecting (3005).',
    ),
    stale_close_delay: duration('10s').describe(
      'Disconnect (3502) a connection that sent no connect command in this time.',
    ),
    channel_limit: z
      .number()
      .int()
      .min(0)
      .default(128)
      .describe('Subscriptions per connection; over it, subscribe gets error 106 (limit exceeded). 0 means no limit.'),
    user_connection_limit: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('Connections per user on this node; 0 means no limit.'),
    connection_limit: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe(
        'Most WebSocket connections this node holds (from accept until close, authenticated or not); over it new upgrades get HTTP 503 with a jittered Retry-After. 0: no configured limit, and the node enforces what its open-file limit holds (logged at start).',
      ),
    connection_rate_limit: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe(
        'Most new connections accepted per second on this node (token bucket, burst = one second); over it, HTTP 503 with a jittered Retry-After. 0 means no limit.',
      ),
    queue_max_size: z
      .number()
      .int()
      .min(1024)
      .default(1_048_576)
      .describe(
        "Bytes of pushes waiting for one connection (queued plus unwritten by its socket) before it is disconnected as slow (3008). Replies to the client's own commands (a big recovery or history) do not count, but its next command waits until what waits is back under this.",
      ),
    history_max_publication_limit: z
      .number()
      .int()
      .min(0)
      .default(300)
      .describe('Most publications one history call returns.'),
    recovery_max_publication_limit: z
      .number()
      .int()
      .min(0)
      .default(300)
      .describe('Most publications one recovery returns; more means recovered=false.'),
    tags_filter: z
      .strictObject({
        max_depth: z
          .number()
          .int()
          .min(1)
          .default(8)
          .describe('Deepest nesting of and/or/not nodes in one tags filter (the root is depth 1).'),
        max_nodes: z
          .number()
          .int()
          .min(1)
          .default(64)
          .describe('Most nodes (leaves and and/or/not) in one tags filter.'),
        max_values: z
          .number()
          .int()
          .min(1)
          .default(128)
          .describe('Most `vals` entries, summed over the `in`/`nin` leaves of one tags filter.'),
        max_value_length: z
          .number()
          .int()
          .min(1)
          .default(256)
          .describe('Longest `key`, `val` or `vals` entry of a tags filter, in characters.'),
      })
      .prefault({})
      .describe(
        "Bounds of a subscription's publication tags filter (the client's `tf`, and a server_tags_filter); over them a client's subscribe gets 107. Bulwark's own.",
      ),
    connect_include_server_time: z.boolean().default(false).describe('Send server time in the connect reply.'),
    proxy: z
      .strictObject({
        connect: z
          .strictObject({
            enabled: z
              .boolean()
              .default(false)
              .describe(
                'A connect without a token is authenticated by the backend (connect proxy): it returns the user, expiry, info, data, channels and meta.',
              ),
            ...proxyShape,
          })
          .prefault({}),
        refresh: z
          .strictObject({
            enabled: z
              .boolean()
              .default(false)
              .describe(
                'When a connection expires, ask the backend (refresh proxy) to prolong it, instead of the client refreshing its token.',
              ),
            ...proxyShape,
          })
          .prefault({}),
      })
      .prefault({})
      .describe('Client-wide proxies to the backend (see docs/PROXY.md).'),
  })
  .prefault({});
