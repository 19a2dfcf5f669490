/**
 * The proxy sections of the config: the proxy object every proxy shares (Centrifugo v6's
 * `endpoint`, `timeout`, `http_headers`, …), the named proxies of `proxies[]`, and Bulwark's
 * `proxy` section (how calls to the backend are protected and cached).
 *
 * @module
 */
import { z } from 'zod';
import { duration } from './common.js';

/**
 * proxyShape is Centrifugo v6's proxy configuration object (`endpoint`, `timeout`,
 * `http_headers`, `include_connection_meta`, `http.static_headers`), shared by every proxy:
 * `client.proxy.connect`, `client.proxy.refresh`, `channel.proxy.*`, `rpc.proxy` and each
 * entry of `proxies[]`. Only HTTP(S) endpoints: gRPC proxies, binary encoding, emulated headers
 * and status code transforms are not supported, and their keys are refused as unknown.
 */
export const proxyShape = {
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

export const proxySchema = z.strictObject(proxyShape).prefault({});

/** ProxyConfig is one resolved proxy configuration object (timeout in ms). */
export type ProxyConfig = z.output<typeof proxySchema>;

/** proxyNamePattern is what Centrifugo accepts as a proxy or namespace name. */
export const proxyNamePattern = /^[-a-zA-Z0-9_.]{2,}$/;

/** proxyName references `default` (the section's own proxy) or an entry of `proxies[]`. */
export function proxyName(kind: string) {
  return z
    .string()
    .default('default')
    .describe(
      `Proxy for ${kind}: \`default\` is the section's own proxy object, any other name an entry of \`proxies[]\`.`,
    );
}

/** proxiesSection is `proxies[]`: named proxies that namespaces refer to. */
export const proxiesSection = z
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
  );

/** proxySection is Bulwark's `proxy` section: protections and cache of backend calls. */
export const proxySection = z
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
      .describe(
        'Backend calls in flight at once per target (a proxy endpoint); more wait in the queue. With proxy.adaptive.enabled, the ceiling of the adaptive limit.',
      ),
    max_queue: z
      .number()
      .int()
      .min(0)
      .default(256)
      .describe(
        'Calls waiting for a slot per target; over it a call is refused at once with error 111 (temporary), never queued without bound. The wait counts in the proxy timeout.',
      ),
    fair_queue: z
      .boolean()
      .default(true)
      .describe(
        "Queue each target's waiting calls by caller (the user, or the connection without one): the caller with the fewest backend calls lately goes first, so a few callers hammering the backend wait behind everyone else. false: first come, first served.",
      ),
    adaptive: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            "Adapt each target's concurrency limit to what its backend holds, between min_limit and max_concurrent: latency rising over the backend's no-load round trip, timeouts and 429/503/504 answers lower it. false: the limit is max_concurrent.",
          ),
        initial_limit: z
          .number()
          .int()
          .min(1)
          .default(20)
          .describe('Limit of a target before its calls were observed (at most max_concurrent).'),
        min_limit: z
          .number()
          .int()
          .min(1)
          .default(4)
          .describe('Lowest limit (at most max_concurrent): the calls a struggling backend still gets at once.'),
        tolerance: z
          .number()
          .min(1)
          .max(10)
          .default(1.5)
          .describe(
            "How many times its no-load round trip the backend's median round trip may reach before the limit falls.",
          ),
        backoff: z
          .number()
          .min(0.1)
          .lt(1)
          .default(0.9)
          .describe('Factor the limit is multiplied by after a window with a timeout or a 429/503/504 answer.'),
        window: duration('100ms').describe(
          'Shortest window the limit is updated over (each window also needs 10 answers, or one drop).',
        ),
      })
      .prefault({})
      .describe(
        "Bulwark's adaptive concurrency limit per target (a gradient limiter with multiplicative decrease, see PROXY.md): protects a backend nobody sized.",
      ),
    breaker: z
      .strictObject({
        failure_rate: z
          .number()
          .min(0)
          .max(1)
          .default(0.5)
          .describe(
            'Share of failed calls (timeouts, backend down, non-200, bad answers) over the window that opens it; 0 turns the breaker off.',
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
              negative_ttl: duration('10s').describe('How long a backend error listed in negative_codes is cached.'),
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
        shared_timeout: duration('1s').describe(
          'Longest wait for one Redis command of the shared tier; past it (Redis slow or down) the node calls the backend itself, as a cache of its own would, and counts it.',
        ),
      })
      .prefault({})
      .describe('Protected cache of backend answers (single flight, TTL jitter, negative caching, stale serving).'),
  })
  .prefault({})
  .describe(
    'Bulwark: how proxy calls to the backend behave (the proxies themselves are configured where Centrifugo has them).',
  );
