/**
 * Shared poll subscriptions (Centrifugo v6.8, experimental there): the top-level `shared_poll`
 * section (the HMAC keys that sign tracked keys, the node-wide concurrency of refresh calls)
 * and the `shared_poll` block of a namespace whose `subscription_type` is `shared_poll` (how
 * often and in what batches the backend is asked, per-connection limits, the refresh mode).
 * Names and defaults are Centrifugo's; the keys marked "Bulwark's own" are additions.
 *
 * @module
 */
import { z } from 'zod';
import { duration, secret } from './common.js';

/** sharedPollSection is the top-level `shared_poll` section. */
export const sharedPollSection = z
  .strictObject({
    hmac_secret_key: secret.describe(
      'Secret of the HMAC-SHA256 signatures that authorise the keys a client tracks (`iat:exp:hmac_hex`). Required when a namespace has subscription_type shared_poll. No default.',
    ),
    hmac_previous_secret_key: secret.describe(
      'The previous secret during a key rotation: signatures made with it are still accepted (until hmac_previous_secret_key_valid_until). Empty by default.',
    ),
    hmac_previous_secret_key_valid_until: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe(
        'Unix time (seconds) after which hmac_previous_secret_key is refused, judged by the server clock (not by the signature iat, which its maker chooses). 0 (default): no limit.',
      ),
    concurrency_limit: z
      .number()
      .int()
      .min(1)
      .default(64)
      .describe(
        'Refresh proxy calls in flight at once on this node, all shared poll channels together (default 64). Each call also goes through the protected proxy of its target (proxy.max_concurrent, breaker, kill switch).',
      ),
    max_tracked_items_per_node: z
      .number()
      .int()
      .min(1)
      .default(1_000_000)
      .describe(
        "Bulwark's own: tracked (connection, key) pairs this node holds at most, all channels together (default 1,000,000); a track over it is refused with 106.",
      ),
    max_key_length: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(256)
      .describe("Bulwark's own: longest tracked key in bytes (default 256); a longer one is refused with 107."),
  })
  .prefault({})
  .describe('Shared poll subscriptions: signature keys and node-wide limits (see docs/SHARED_POLL.md).');

/** sharedPollNamespaceSchema is a namespace's `shared_poll` block. */
export const sharedPollNamespaceSchema = z
  .strictObject({
    proxy_name: z
      .string()
      .default('default')
      .describe('Refresh proxy: `default` (channel.proxy.shared_poll_refresh) or the name of an entry of `proxies[]`.'),
    refresh_interval: duration('10s').describe(
      'How often the backend is asked for the tracked items (default 10s): once per interval for the whole cluster.',
    ),
    refresh_interval_max: duration('0s').describe(
      "Bulwark's own: when the backend fails or times out, the next cycle waits twice as long each time, up to this (default 0s: 8 × refresh_interval); back to refresh_interval after a success.",
    ),
    refresh_batch_size: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(1000)
      .describe('Most items in one refresh proxy call (default 1000); more tracked items make more calls per cycle.'),
    max_keys_per_connection: z
      .number()
      .int()
      .min(1)
      .default(5000)
      .describe(
        'Most keys one connection may track in the channel (default 5000); over it a track is refused with 106.',
      ),
    mode: z
      .enum(['', 'versionless', 'versioned'])
      .default('versionless')
      .describe(
        '`versionless` (default, or empty): the backend returns `{key, data}` and Bulwark versions items by content. `versioned`: the backend returns `{key, data, version}` and gets the versions it returned last.',
      ),
    channel_shutdown_delay: duration('1s').describe(
      'How long a channel with no tracked key left keeps its state before it is dropped (default 1s), so a quick re-track finds it.',
    ),
    track_expired_extra_delay: duration('25s').describe(
      'How long past its signature expiry a tracked key is kept for the client to send a new signature (default 25s); then it is dropped silently.',
    ),
    publish_enabled: z
      .boolean()
      .default(false)
      .describe(
        'Allow the shared_poll_publish server API on the namespace (default false: it is refused with 108, as Centrifugo). Needs mode versioned. A published value reaches every node, like a polled change.',
      ),
  })
  .prefault({});

/** SharedPollNamespaceOptions are the resolved options of a namespace's `shared_poll` block (durations in ms). */
export type SharedPollNamespaceOptions = z.output<typeof sharedPollNamespaceSchema>;
