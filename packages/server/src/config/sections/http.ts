/**
 * The HTTP-facing sections of the config: where the node listens (`http_server`), the
 * WebSocket transport (`websocket`), the server API (`http_api`), and the `/metrics` and
 * `/health` endpoints (`prometheus`, `health`).
 *
 * @module
 */
import { z } from 'zod';
import { duration, secret } from './common.js';

/** httpServerSection is the `http_server` section. */
export const httpServerSection = z
  .strictObject({
    address: z.string().default('').describe('Interface to listen on; empty means all interfaces.'),
    port: z.number().int().min(0).max(65535).default(8000).describe('HTTP port (WebSocket, API, health, metrics).'),
    headers_timeout: duration('10s').describe(
      'Close a connection whose request headers (a WebSocket upgrade included) are not complete this long after it opened or its previous response, with 408 (slow-loris). Checked every min(1s, headers_timeout / 4). Bulwark addition.',
    ),
    request_timeout: duration('30s').describe(
      'Close a request (headers and body) not received in full within this, with 408; at least headers_timeout. Bulwark addition.',
    ),
    keep_alive_timeout: duration('5s').describe(
      'Close a kept-alive HTTP connection idle this long after its last response. Bulwark addition.',
    ),
    internal_port: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .default(0)
      .describe(
        'Serve the server API, /metrics, /health and /ready on this port instead of the public one (as Centrifugo), so they can stay off the internet; 0 serves everything on http_server.port.',
      ),
    internal_address: z
      .string()
      .default('')
      .describe('Interface of the internal port; empty means http_server.address.'),
    tls: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe('Serve HTTPS and wss:// on http_server.port (not on the internal port).'),
        cert_pem_file: z
          .string()
          .default('')
          .describe('PEM file of the certificate chain (leaf first). Re-read on SIGHUP.'),
        key_pem_file: z.string().default('').describe('PEM file of the private key. Re-read on SIGHUP.'),
      })
      .prefault({})
      .describe('TLS in process, as Centrifugo v6 names it; behind a TLS-terminating load balancer leave it off.'),
  })
  .superRefine((s, ctx) => {
    for (const key of ['headers_timeout', 'keep_alive_timeout'] as const) {
      if (s[key] <= 0) ctx.addIssue({ code: 'custom', path: [key], message: 'must be greater than 0' });
    }
    if (s.tls.enabled) {
      for (const key of ['cert_pem_file', 'key_pem_file'] as const) {
        if (s.tls[key] === '')
          ctx.addIssue({ code: 'custom', path: ['tls', key], message: 'required with tls.enabled' });
      }
    }
    if (s.internal_port !== 0 && s.internal_port === s.port) {
      ctx.addIssue({ code: 'custom', path: ['internal_port'], message: 'must differ from http_server.port' });
    }
    if (s.request_timeout < s.headers_timeout) {
      ctx.addIssue({
        code: 'custom',
        path: ['request_timeout'],
        message: `must be at least http_server.headers_timeout (${s.headers_timeout} ms)`,
      });
    }
  })
  .prefault({});

/** websocketSection is the `websocket` section. */
export const websocketSection = z
  .strictObject({
    message_size_limit: z
      .number()
      .int()
      .min(256)
      .default(65_536)
      .describe('Largest incoming WebSocket message in bytes; larger closes with 1009.'),
    compression: z.boolean().default(false).describe('permessage-deflate; costs CPU per message, off by default.'),
    close_timeout: duration('5s').describe(
      "After the server closes a connection (its close frame is written at once), how long it waits for the client's close frame before destroying the socket. A client that ignores close frames sees TCP end this long after the disconnect. Centrifugo waits a fixed 5 s. HTTP streams (http_stream, sse, uni_*) wait as long for their last bytes (the disconnect push) to be written before the socket is destroyed.",
    ),
  })
  .prefault({});

/** httpApiSection is the `http_api` section. */
export const httpApiSection = z
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
    history_max_limit: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(1000)
      .describe(
        'Most publications one API `history` call returns (Bulwark addition; Centrifugo does not cap it). `limit` -1 reads up to this many; a larger `limit` or one below -1 is refused with 107. A reply can reach this times protection.publication_max_size bytes.',
      ),
    presence_max_clients: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe(
        'Most entries an API `presence` reply carries (Bulwark addition). A channel with more is answered 106 (use presence_stats).',
      ),
    channels_max_results: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe(
        'Most channels an API `channels` reply carries (Bulwark addition). More matching channels are answered 106 (narrow the pattern).',
      ),
    channels_pattern_max_length: z
      .number()
      .int()
      .min(1)
      .default(256)
      .describe('Longest `channels` pattern in characters (Bulwark addition); a longer one is refused with 107.'),
    idempotency_key_max_length: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(256)
      .describe(
        'Longest `idempotency_key` of `publish` and `broadcast` in characters (Bulwark addition); a longer one is refused with 107.',
      ),
    version_epoch_max_length: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(64)
      .describe(
        'Longest `version_epoch` of `publish` and `broadcast` in characters (Bulwark addition); a longer one is refused with 107.',
      ),
    publication_variants_max: z
      .number()
      .int()
      .min(0)
      .max(64)
      .default(8)
      .describe(
        'Most `variants` one `publish` or `broadcast` carries (Bulwark addition: payloads per client capability); more are refused with 107. 0 turns variants off.',
      ),
  })
  .prefault({});

/** prometheusSection is the `prometheus` section. */
export const prometheusSection = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Serve Prometheus metrics at /metrics.'),
  })
  .prefault({});

/** healthSection is the `health` section. */
export const healthSection = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Serve /health (liveness) and /ready (readiness).'),
  })
  .prefault({});
