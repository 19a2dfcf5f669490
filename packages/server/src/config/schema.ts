/**
 * The configuration schema: the single source of truth for every key, its type, default and
 * documentation (`.describe()`). Where Centrifugo v6 has a concept, the key has Centrifugo's
 * name and place, so a Centrifugo config works for what both support. Bulwark's own additions
 * live in sections of their own (`node`, `protection`, `proxy`, `drain`, `demo`).
 *
 * Every object is strict: an unknown key is an error, never silently ignored (incident 3).
 * Durations are Go-style strings ("25s") and are parsed to milliseconds.
 *
 * @module
 */
import { z } from 'zod';
import { parseDuration } from '../util/duration.js';
import { redisConfigProblem } from './redis-options.js';
import { killSwitchKinds } from '../protection/kill-switches.js';
import { proxyConfigIssues } from './proxy-rules.js';

/** duration is a Go-style duration string parsed to milliseconds. */
export function duration(defaultValue: string) {
  return z
    .string()
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `invalid duration "${text}" (use e.g. "500ms", "25s", "1m30s", "720h")`,
        });
        return z.NEVER;
      }
      return ms;
    })
    .prefault(defaultValue);
}

const secret = z.string().default('');

const tokenSchema = z
  .strictObject({
    hmac_secret_key: secret.describe('HMAC secret for HS256/HS384/HS512 tokens. A secret: never has a default.'),
    rsa_public_key: z.string().default('').describe('PEM public key for RS256/RS384/RS512 tokens.'),
    ecdsa_public_key: z.string().default('').describe('PEM public key for ES256/ES384/ES512 tokens.'),
    audience: z.string().default('').describe('When set, tokens must carry this `aud`.'),
    issuer: z.string().default('').describe('When set, tokens must carry this `iss`.'),
  })
  .prefault({});

/**
 * proxyShape is Centrifugo v6's proxy configuration object (`endpoint`, `timeout`,
 * `http_headers`, `include_connection_meta`, `http.static_headers`), shared by every proxy:
 * `client.proxy.connect`, `client.proxy.refresh`, `channel.proxy.*`, `rpc.proxy` and each
 * entry of `proxies[]`. Only HTTP(S) endpoints: gRPC proxies, binary encoding, emulated headers
 * and status code transforms are not supported, and their keys are refused as unknown.
 */
const proxyShape = {
  endpoint: z
    .string()
    .default('')
    .describe(
      'HTTP(S) URL the proxy POSTs JSON to, e.g. `http://game-backend:3000/centrifugo/subscribe`; gRPC endpoints are not supported.',
    ),
  timeout: duration('1s').describe(
    'Longest wait for the backend to answer one proxy request; then the client gets error 100 (temporary).',
  ),
  http_headers: z
    .array(z.string().min(1))
    .default([])
    .describe(
      "Headers of the client's WebSocket upgrade request copied into proxy requests (e.g. `Cookie`, `Authorization`, `X-Real-Ip`). None by default.",
    ),
  include_connection_meta: z
    .boolean()
    .default(false)
    .describe('Send the connection `meta` (from the connect proxy result or the token) in proxy requests.'),
  http: z
    .strictObject({
      static_headers: z
        .record(z.string(), z.string())
        .default({})
        .describe(
          'Headers added to every request of this proxy (e.g. a shared secret the backend checks). Forwarded http_headers of the same name win.',
        ),
    })
    .prefault({}),
};

const proxySchema = z.strictObject(proxyShape).prefault({});

/** ProxyConfig is one resolved proxy configuration object (timeout in ms). */
export type ProxyConfig = z.output<typeof proxySchema>;

/** proxyNamePattern is what Centrifugo accepts as a proxy or namespace name. */
const proxyNamePattern = /^[-a-zA-Z0-9_.]{2,}$/;

/** proxyName references `default` (the section's own proxy) or an entry of `proxies[]`. */
function proxyName(kind: string) {
  return z
    .string()
    .default('default')
    .describe(
      `Proxy for ${kind}: \`default\` is the section's own proxy object, any other name an entry of \`proxies[]\`.`,
    );
}

/** channelOptionsShape holds the per-namespace channel options, named as in Centrifugo v6. */
export const channelOptionsShape = {
  presence: z.boolean().default(false).describe('Keep presence (who is subscribed) for channels.'),
  join_leave: z.boolean().default(false).describe('Send join/leave pushes to subscribers who ask for them.'),
  force_push_join_leave: z.boolean().default(false).describe('Send join/leave pushes to every subscriber.'),
  history_size: z.number().int().min(0).default(0).describe('Publications kept per channel; 0 keeps no history.'),
  history_ttl: duration('0s').describe(
    'How long history is kept after the last publication; required with history_size.',
  ),
  history_meta_ttl: duration('0s').describe(
    'How long a stream position lives after last use; 0 means channel.history_meta_ttl.',
  ),
  force_positioning: z.boolean().default(false).describe('Track stream position for every subscriber.'),
  allow_positioning: z.boolean().default(false).describe('Let clients ask for positioning.'),
  force_recovery: z.boolean().default(false).describe('Recover missed publications for every subscriber.'),
  allow_recovery: z.boolean().default(false).describe('Let clients ask for recovery.'),
  allow_subscribe_for_anonymous: z
    .boolean()
    .default(false)
    .describe('Anonymous (no user) clients may subscribe without a token.'),
  allow_subscribe_for_client: z
    .boolean()
    .default(false)
    .describe('Authenticated clients may subscribe without a subscription token.'),
  allow_publish_for_anonymous: z.boolean().default(false).describe('Anonymous clients may publish.'),
  allow_publish_for_subscriber: z.boolean().default(false).describe('Subscribers of a channel may publish to it.'),
  allow_publish_for_client: z.boolean().default(false).describe('Any authenticated client may publish.'),
  allow_presence_for_anonymous: z.boolean().default(false).describe('Anonymous clients may read presence.'),
  allow_presence_for_subscriber: z.boolean().default(false).describe('Subscribers may read presence.'),
  allow_presence_for_client: z.boolean().default(false).describe('Any authenticated client may read presence.'),
  allow_history_for_anonymous: z.boolean().default(false).describe('Anonymous clients may read history.'),
  allow_history_for_subscriber: z.boolean().default(false).describe('Subscribers may read history.'),
  allow_history_for_client: z.boolean().default(false).describe('Any authenticated client may read history.'),
  allow_user_limited_channels: z
    .boolean()
    .default(false)
    .describe('Channels like `ns:room#42,43` are open to the listed users only.'),
  channel_regex: z
    .string()
    .default('')
    .describe('When set, channel names (without namespace) must match this regular expression.'),
  subscribe_proxy_enabled: z
    .boolean()
    .default(false)
    .describe(
      'Ask the backend (subscribe proxy) whether a client may subscribe, instead of the allow_subscribe_* options. Not for subscriptions with a token or to user-limited channels.',
    ),
  subscribe_proxy_name: proxyName('subscribe (channel.proxy.subscribe)'),
  publish_proxy_enabled: z
    .boolean()
    .default(false)
    .describe(
      'Ask the backend (publish proxy) whether a client may publish, instead of the allow_publish_* options; it may change the data.',
    ),
  publish_proxy_name: proxyName('publish (channel.proxy.publish)'),
  sub_refresh_proxy_enabled: z
    .boolean()
    .default(false)
    .describe(
      'When a subscription with an expiry expires, ask the backend (sub_refresh proxy) to prolong it instead of the client.',
    ),
  sub_refresh_proxy_name: proxyName('sub_refresh (channel.proxy.sub_refresh)'),
};

const channelOptions = z.strictObject(channelOptionsShape);

/** ChannelOptions are the resolved options of one namespace (durations in ms). */
export type ChannelOptions = z.output<typeof channelOptions>;

const namespaceSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[-a-zA-Z0-9_.]{2,}$/, 'namespace name must be 2+ characters of [-a-zA-Z0-9_.]')
    .describe('Namespace name: the part of a channel before `:`.'),
  ...channelOptionsShape,
});

/** rpcOptionsShape holds the per-namespace RPC options, named as in Centrifugo v6. */
const rpcOptionsShape = {
  proxy_enabled: z
    .boolean()
    .default(false)
    .describe('Send RPC calls of this namespace to the backend (RPC proxy). Methods registered with node.rpc() win.'),
  proxy_name: proxyName('rpc (rpc.proxy)'),
};

/** redisSchema: where the Redis engine finds Redis, with Centrifugo v6's key names. */
const redisSchema = z
  .strictObject({
    address: z
      .array(z.string())
      .default(['redis://127.0.0.1:6379'])
      .describe(
        'Standalone Redis: one `redis://[user:password@]host:port[/db]` URL (`rediss://` for TLS). Ignored with sentinel_master_name or cluster_address.',
      ),
    prefix: z
      .string()
      .regex(/^[^{}]+$/, 'prefix must be non-empty, without "{" or "}"')
      .default('bulwark')
      .describe('Prefix of every Redis key and pub/sub channel, so several deployments can share one Redis.'),
    user: z.string().default('').describe('ACL user (Redis 6+); overrides the one in the address.'),
    password: secret.describe(
      'Password (AUTH); overrides the one in the address. A secret: a Redis that requires one and gets none fails the start with an error naming this key.',
    ),
    db: z.number().int().min(0).default(0).describe('Database number (0 with cluster_address).'),
    tls: z
      .strictObject({ enabled: z.boolean().default(false).describe('TLS to Redis and to the sentinels.') })
      .prefault({}),
    sentinel_address: z
      .array(z.string())
      .default([])
      .describe('Sentinel addresses (`host:port`); used with sentinel_master_name.'),
    sentinel_master_name: z
      .string()
      .default('')
      .describe('Name of the master monitored by Sentinel; set it to find the master through Sentinel.'),
    sentinel_user: z.string().default('').describe('ACL user of the sentinels.'),
    sentinel_password: secret.describe('Password of the sentinels (not of the master).'),
    cluster_address: z
      .array(z.string())
      .default([])
      .describe('Redis Cluster seed nodes (`host:port`); set to use Redis Cluster (channels use sharded pub/sub).'),
    connect_timeout: duration('1s').describe('Longest wait for a connection to Redis, at start and on reconnect.'),
    io_timeout: duration('1s').describe(
      'Longest wait for one Redis reply; then the call fails with a temporary error (a publish is never left hanging).',
    ),
    reconnect_max_delay: duration('2s').describe('Longest wait between reconnect attempts while Redis is down.'),
  })
  .prefault({})
  .describe('The Redis engine (engine.type redis).');

/** rateLimit is one token bucket: `rate` commands per second with bursts of `burst`. */
function rateLimit(rate: number, burst: number, what: string) {
  return z
    .strictObject({
      rate: z.number().min(0).default(rate).describe(`${what}: commands per second (0: no limit).`),
      burst: z.number().int().min(1).default(burst).describe(`${what}: bucket size (commands allowed at once).`),
    })
    .prefault({});
}

/** rateLimitClasses is one bucket per method class, with defaults generous for real clients. */
function rateLimitClasses(scope: string) {
  return z
    .strictObject({
      publish: rateLimit(
        scope === 'Per connection' ? 50 : 100,
        scope === 'Per connection' ? 100 : 200,
        `${scope}, publish`,
      ),
      rpc: rateLimit(
        scope === 'Per connection' ? 50 : 100,
        scope === 'Per connection' ? 100 : 200,
        `${scope}, rpc and send`,
      ),
      read: rateLimit(
        scope === 'Per connection' ? 20 : 40,
        scope === 'Per connection' ? 50 : 100,
        `${scope}, history/presence/presence_stats`,
      ),
      subscribe: rateLimit(
        scope === 'Per connection' ? 50 : 100,
        scope === 'Per connection' ? 200 : 400,
        `${scope}, subscribe/unsubscribe/sub_refresh/refresh`,
      ),
    })
    .prefault({})
    .describe(`${scope}: token buckets per method class.`);
}

/** configSchema validates a whole Bulwark configuration. */
export const configSchema = z
  .strictObject({
    http_server: z
      .strictObject({
        address: z.string().default('').describe('Interface to listen on; empty means all interfaces.'),
        port: z.number().int().min(0).max(65535).default(8000).describe('HTTP port (WebSocket, API, health, metrics).'),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z
          .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
          .default('info')
          .describe('Log level.'),
      })
      .prefault({}),
    client: z
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
          .array(z.string())
          .default([])
          .describe('Origins allowed to connect from a browser; "*" allows all. Empty: same-origin only.'),
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
          .describe(
            'Subscriptions per connection; over it, subscribe gets error 106 (limit exceeded). 0 means no limit.',
          ),
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
          .describe('Bytes queued to one connection before it is disconnected as slow (3008).'),
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
      .prefault({}),
    websocket: z
      .strictObject({
        message_size_limit: z
          .number()
          .int()
          .min(256)
          .default(65_536)
          .describe('Largest incoming WebSocket message in bytes; larger closes with 1009.'),
        compression: z.boolean().default(false).describe('permessage-deflate; costs CPU per message, off by default.'),
      })
      .prefault({}),
    channel: z
      .strictObject({
        without_namespace: channelOptions.prefault({}).describe('Options of channels without a namespace.'),
        namespaces: z.array(namespaceSchema).default([]).describe('Namespaces: channels named `<name>:<rest>`.'),
        history_meta_ttl: duration('720h').describe('Default lifetime of a stream position after last use.'),
        max_length: z.number().int().min(1).default(255).describe('Longest channel name in bytes.'),
        private_prefix: z.string().default('$').describe('Channels starting with it need a subscription token.'),
        namespace_boundary: z.string().min(1).default(':').describe('Separates namespace from channel.'),
        user_boundary: z.string().min(1).default('#').describe('Starts the user list of a user-limited channel.'),
        user_separator: z.string().min(1).default(',').describe('Separates users in a user-limited channel.'),
        proxy: z
          .strictObject({
            subscribe: proxySchema.describe('The `default` subscribe proxy (namespaces turn it on).'),
            publish: proxySchema.describe('The `default` publish proxy (namespaces turn it on).'),
            sub_refresh: proxySchema.describe('The `default` sub_refresh proxy (namespaces turn it on).'),
          })
          .prefault({})
          .describe('Channel-wide proxies, used by namespaces with *_proxy_enabled (see docs/PROXY.md).'),
      })
      .prefault({}),
    rpc: z
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
      .describe('RPC proxying to the backend (see docs/PROXY.md).'),
    proxies: z
      .array(
        z.strictObject({
          name: z
            .string()
            .regex(proxyNamePattern, 'proxy name must be 2+ characters of [-a-zA-Z0-9_.]')
            .describe('Name namespaces refer to with *_proxy_name.'),
          ...proxyShape,
        }),
      )
      .default([])
      .describe(
        'Named proxies for channel and RPC namespaces (subscribe_proxy_name, publish_proxy_name, sub_refresh_proxy_name, rpc proxy_name): each a proxy object plus `name`.',
      ),
    http_api: z
      .strictObject({
        key: secret.describe(
          'API key for /api (X-API-Key or Authorization: apikey). A secret: required unless http_api.insecure.',
        ),
        insecure: z.boolean().default(false).describe('Serve the API without a key. Only behind a trusted network.'),
        max_body_size: z
          .number()
          .int()
          .min(1024)
          .default(1_048_576)
          .describe('Largest API request body in bytes (Bulwark addition).'),
      })
      .prefault({}),
    prometheus: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Serve Prometheus metrics at /metrics.'),
      })
      .prefault({}),
    health: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Serve /health (liveness) and /ready (readiness).'),
      })
      .prefault({}),
    engine: z
      .strictObject({
        type: z
          .enum(['memory', 'redis'])
          .default('memory')
          .describe(
            'Engine: memory (embedded, one process) or redis (broker, history and presence in Redis: many processes and machines act as one).',
          ),
        redis: redisSchema,
      })
      .prefault({}),
    shutdown: z
      .strictObject({
        timeout: duration('30s').describe('Longest graceful shutdown, drain included; then exit anyway.'),
      })
      .prefault({}),
    node: z
      .strictObject({
        name: z.string().default('').describe('Node name shown in info and logs; empty means hostname_port.'),
        info_interval: duration('3s').describe(
          'How often a node tells the others its counts (the info API lists every node); a node silent for 3 intervals is dropped.',
        ),
        survey_timeout: duration('1s').describe(
          'Longest wait for the other nodes to answer a cluster-wide question (the channels API method).',
        ),
      })
      .prefault({}),
    protection: z
      .strictObject({
        retry_after_min: duration('1s').describe(
          'Shortest Retry-After advised to a rejected connection (jittered up to retry_after_max).',
        ),
        retry_after_max: duration('10s').describe('Longest Retry-After advised to a rejected connection.'),
        fd_headroom: z
          .number()
          .min(1)
          .default(1.25)
          .describe(
            'File descriptors per connection, as a factor: at start the open-file soft limit (Node.js raises it to the hard limit) must hold ceil(client.connection_limit × this) + 64, else the node refuses to start (BW_ERR_FD_LIMIT, saying what to set). With client.connection_limit 0, floor((limit − 64) / this) becomes the connection limit.',
          ),
        rate_limit: z
          .strictObject({
            connection: rateLimitClasses('Per connection'),
            user: rateLimitClasses('Per user on this node (all of their connections together)'),
            disconnect_after: z
              .number()
              .int()
              .min(0)
              .default(20)
              .describe(
                'A connection refused this many commands in a row (error 111) is disconnected with 3013 (too many requests, reconnect allowed). 0: never disconnect.',
              ),
            max_pending_commands: z
              .number()
              .int()
              .min(0)
              .default(512)
              .describe(
                "Commands one connection may have waiting to be handled (a connection's commands run one at a time, in order); more are refused on arrival with error 111 (temporary), so a client pipelining a retry storm cannot queue work the server would do long after the client gave up. Above client.channel_limit, since an SDK resubscribes every channel at once on reconnect. 0 means no limit.",
              ),
          })
          .prefault({})
          .describe('Command rate limits: token buckets per method class. A rate of 0 means no limit.'),
        log_interval: duration('10s').describe(
          'A protection that triggers logs at most once per interval per kind, with the count since the last line (a storm must not become a log storm).',
        ),
        publication_max_size: z
          .number()
          .int()
          .min(0)
          .default(65_536)
          .describe(
            'Largest publication data in bytes (JSON-encoded), from clients (error 106) and the server API (error 106 in the reply). Every byte is stored in history and written to every subscriber. 0 means no limit.',
          ),
        shedding: z
          .strictObject({
            enabled: z.boolean().default(true).describe('Shed work when the event loop lags (see docs/OPERATIONS.md).'),
            sample_interval: duration('20ms').describe(
              'How often the event-loop lag is sampled; the lag is smoothed over about four samples.',
            ),
            connect_lag: duration('50ms').describe(
              'Smoothed lag over which new connections are refused (HTTP 503, Retry-After; reason overload). Cleared below half of it.',
            ),
            read_lag: duration('100ms').describe(
              'Smoothed lag over which history, presence, presence_stats and rpc commands are also refused (error 111, temporary). Cleared below half of it. Publications to connected clients are never shed.',
            ),
          })
          .prefault({})
          .describe('Load shedding on event-loop lag: new connections first, then reads and RPC.'),
        kill_switches: z
          .array(
            z.strictObject({
              kind: z
                .enum(killSwitchKinds)
                .describe(
                  'What is switched off: client publish, an rpc method, history/presence reads, new connections.',
                ),
              target: z
                .string()
                .default('*')
                .describe(
                  'Namespace (publish, read; "" for channels without one), rpc method, proxy target, or "*" for all.',
                ),
              reason: z.string().min(1).describe('Told to the clients refused.'),
            }),
          )
          .default([])
          .describe(
            'Kill switches on from start. More are set at runtime with the kill_switch_set API method (held in memory, cluster-wide; see docs/OPERATIONS.md).',
          ),
      })
      .prefault({})
      .describe(
        'Bulwark: launch-day protections (admission, file descriptors, rate limits, load shedding, kill switches).',
      ),
    drain: z
      .strictObject({
        window: duration('10s').describe(
          'On SIGTERM or the drain API method, disconnect clients (3001, reconnect allowed) spread uniformly over this window.',
        ),
      })
      .prefault({})
      .describe('Bulwark: graceful drain on shutdown.'),
    proxy: z
      .strictObject({
        refresh_retry_interval: duration('60s').describe(
          'When a refresh or sub_refresh proxy call fails (backend down, timeout, bad answer), the connection or subscription is kept and the call is tried again after this long, as Centrifugo does.',
        ),
        max_response_size: z
          .number()
          .int()
          .min(1024)
          .default(1_048_576)
          .describe(
            'Largest proxy response body in bytes; a larger answer is a failed call (error 100, temporary) and is not read further.',
          ),
        max_concurrent: z
          .number()
          .int()
          .min(1)
          .default(64)
          .describe('Backend calls in flight at once per target (a proxy endpoint); more wait in the queue.'),
        max_queue: z
          .number()
          .int()
          .min(0)
          .default(256)
          .describe(
            'Calls waiting for a slot per target; over it a call is refused at once with error 111 (temporary), never queued without bound. The wait counts in the proxy timeout.',
          ),
        breaker: z
          .strictObject({
            failure_rate: z
              .number()
              .gt(0)
              .max(1)
              .default(0.5)
              .describe(
                'Share of failed calls (timeouts, backend down, non-200, bad answers) over the window that opens it.',
              ),
            min_requests: z
              .number()
              .int()
              .min(1)
              .default(20)
              .describe('Fewest calls in the window before the failure rate is judged.'),
            window: duration('10s').describe('Rolling window the failure rate is measured over.'),
            open_time: duration('5s').describe(
              'How long an open breaker fails calls at once (error 100, temporary) before letting probes through.',
            ),
            probes: z
              .number()
              .int()
              .min(1)
              .default(1)
              .describe('Probe calls let through at once when half-open; that many successes close it.'),
          })
          .prefault({})
          .describe('Circuit breaker per target: a failing backend gets a rest instead of a stampede of retries.'),
        cache: z
          .strictObject({
            rpc: z
              .array(
                z.strictObject({
                  method: z.string().min(1).describe('RPC method answered through the cache (by the RPC proxy).'),
                  ttl: duration('60s').describe('How long an answer is fresh (jittered by cache.jitter).'),
                  negative_ttl: duration('10s').describe(
                    'How long a backend error listed in negative_codes is cached.',
                  ),
                  negative_codes: z
                    .array(z.number().int())
                    .default([])
                    .describe('Backend error codes that mean "not found" or "denied": cached as answers, not retried.'),
                  per_user: z
                    .boolean()
                    .default(true)
                    .describe('Answers differ per user (the key includes the user); false shares them across users.'),
                }),
              )
              .default([])
              .describe('Cacheable RPC methods: the same arguments within the TTL make one backend call.'),
            jitter: z
              .number()
              .min(0)
              .max(0.5)
              .default(0.1)
              .describe('TTLs are spread by ± this fraction, so answers loaded together do not expire together.'),
            stale_while_revalidate: duration('10s').describe(
              'After expiry, serve the stale answer at once for this long while one refresh runs.',
            ),
            stale_if_error: duration('5m').describe(
              'After expiry, serve the stale answer for this long when the backend fails.',
            ),
            max_entries: z.number().int().min(1).default(10_000).describe('Answers kept per method (LRU).'),
            shared: z
              .boolean()
              .default(true)
              .describe(
                'With engine.type redis, share answers through Redis: a cold cluster makes about one backend call per key, not one per node.',
              ),
            shared_wait: duration('5s').describe(
              'How long a node waits for another node loading the same key before calling the backend itself; keep it above the proxy timeout.',
            ),
          })
          .prefault({})
          .describe('Protected cache of backend answers (single flight, TTL jitter, negative caching, stale serving).'),
      })
      .prefault({})
      .describe(
        'Bulwark: how proxy calls to the backend behave (the proxies themselves are configured where Centrifugo has them).',
      ),
    demo: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe('Serve the bulletin board demo at / and a demo token endpoint. Local demos only.'),
      })
      .prefault({})
      .describe('Bulwark: the demo page.'),
  })
  .superRefine((cfg, ctx) => {
    const namespaces = [{ path: ['channel', 'without_namespace'], opts: cfg.channel.without_namespace }].concat(
      cfg.channel.namespaces.map((ns, i) => ({ path: ['channel', 'namespaces', String(i)], opts: ns })),
    );
    for (const { path, opts } of namespaces) {
      if (opts.history_size > 0 && opts.history_ttl === 0) {
        ctx.addIssue({
          code: 'custom',
          path: [...path, 'history_ttl'],
          message: 'history_ttl must be set when history_size > 0',
        });
      }
      if (opts.history_ttl > 0 && opts.history_size === 0) {
        ctx.addIssue({
          code: 'custom',
          path: [...path, 'history_size'],
          message: 'history_size must be set when history_ttl > 0',
        });
      }
      if ((opts.force_recovery || opts.allow_recovery) && opts.history_size === 0) {
        ctx.addIssue({
          code: 'custom',
          path: [...path, 'force_recovery'],
          message: 'recovery needs history (history_size and history_ttl)',
        });
      }
      if (opts.channel_regex !== '') {
        try {
          new RegExp(opts.channel_regex);
        } catch (err) {
          ctx.addIssue({
            code: 'custom',
            path: [...path, 'channel_regex'],
            message: `invalid regular expression: ${(err as Error).message}`,
          });
        }
      }
    }
    const seen = new Set<string>();
    cfg.channel.namespaces.forEach((ns, i) => {
      if (seen.has(ns.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['channel', 'namespaces', i, 'name'],
          message: `duplicate namespace "${ns.name}"`,
        });
      }
      seen.add(ns.name);
    });
    // Secrets: no silent defaults (incident 3). A missing secret is an error naming the key.
    const tok = cfg.client.token;
    const tokenless = cfg.client.insecure || cfg.client.proxy.connect.enabled;
    if (!tokenless && !tok.hmac_secret_key && !tok.rsa_public_key && !tok.ecdsa_public_key) {
      ctx.addIssue({
        code: 'custom',
        path: ['client', 'token', 'hmac_secret_key'],
        message:
          'missing secret: set client.token.hmac_secret_key (or rsa_public_key / ecdsa_public_key), or enable client.proxy.connect, or client.insecure=true for local demos',
      });
    }
    const sub = cfg.client.subscription_token;
    if (sub.enabled && !sub.hmac_secret_key && !sub.rsa_public_key && !sub.ecdsa_public_key) {
      ctx.addIssue({
        code: 'custom',
        path: ['client', 'subscription_token', 'hmac_secret_key'],
        message: 'missing secret: subscription_token.enabled needs hmac_secret_key, rsa_public_key or ecdsa_public_key',
      });
    }
    if (!cfg.http_api.insecure && !cfg.http_api.key) {
      ctx.addIssue({
        code: 'custom',
        path: ['http_api', 'key'],
        message: 'missing secret: set http_api.key, or http_api.insecure=true',
      });
    }
    if (cfg.protection.retry_after_max < cfg.protection.retry_after_min) {
      ctx.addIssue({
        code: 'custom',
        path: ['protection', 'retry_after_max'],
        message: 'retry_after_max must not be shorter than retry_after_min',
      });
    }
    if (cfg.engine.type === 'redis') {
      const problem = redisConfigProblem(cfg.engine.redis);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', path: ['engine', 'redis'], message: problem });
    }
    if (cfg.protection.shedding.read_lag < cfg.protection.shedding.connect_lag) {
      ctx.addIssue({
        code: 'custom',
        path: ['protection', 'shedding', 'read_lag'],
        message: 'read_lag must not be shorter than connect_lag: new connections are shed first',
      });
    }
    if (cfg.client.pong_timeout >= cfg.client.ping_interval && cfg.client.ping_interval > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['client', 'pong_timeout'],
        message: 'pong_timeout must be shorter than ping_interval',
      });
    }
    for (const issue of proxyConfigIssues(cfg)) ctx.addIssue({ code: 'custom', ...issue });
  });

/** Config is a validated configuration: defaults applied, durations in milliseconds. */
export type Config = z.output<typeof configSchema>;
/** ConfigInput is what a config file may contain. */
export type ConfigInput = z.input<typeof configSchema>;
