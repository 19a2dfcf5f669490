/**
 * The `map` block of a channel namespace: how its map channels (Centrifugo's map
 * subscriptions) keep state, who may write them, and how subscribers page through them. Names
 * and defaults are Centrifugo v6.8's; `max_keys`, `max_key_length` and
 * `client_key_mode` are Bulwark's own.
 *
 * @module
 */
import { z } from 'zod';
import { duration } from './common.js';
import { proxyName } from './proxy.js';

/** subscriptionTypes are the namespace's `subscription_type` values, in the protocol's numbering (0–4). */
export const subscriptionTypes = ['stream', 'map', 'map_clients', 'map_users', 'shared_poll'] as const;
export type SubscriptionType = (typeof subscriptionTypes)[number];

/** mapSchema is the `map` block of a namespace. */
export const mapSchema = z
  .strictObject({
    mode: z
      .enum(['ephemeral', 'durable', 'persistent'])
      .default('ephemeral')
      .describe(
        '`ephemeral`: entries expire after key_ttl, no change stream (a reconnect reads the whole map again); `durable`: entries expire after key_ttl, a change stream lets a reconnect catch up; `persistent`: entries stay until removed, with a change stream.',
      ),
    key_ttl: duration('60s').describe(
      'An entry expires this long after its last write (ephemeral and durable modes; subscribers get its removal).',
    ),
    stream_size: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('Changes kept for catch-up (durable and persistent modes); 0 means 100.'),
    stream_ttl: duration('0s').describe('How long a change stays in the stream; 0 means 1m.'),
    meta_ttl: duration('0s').describe(
      'How long an empty channel keeps its stream position (epoch, offset) after its last change; 0 means channel.history_meta_ttl.',
    ),
    allow_publish_for_client: z.boolean().default(false).describe('Authenticated clients may write keys.'),
    allow_publish_for_subscriber: z.boolean().default(false).describe('Subscribers of the channel may write keys.'),
    allow_publish_for_anonymous: z
      .boolean()
      .default(false)
      .describe('Extends the two above to anonymous clients (alone it allows nothing).'),
    allow_remove_for_client: z.boolean().default(false).describe('Authenticated clients may remove keys.'),
    allow_remove_for_subscriber: z.boolean().default(false).describe('Subscribers of the channel may remove keys.'),
    allow_remove_for_anonymous: z
      .boolean()
      .default(false)
      .describe('Extends the two above to anonymous clients (alone it allows nothing).'),
    publish_proxy_enabled: z
      .boolean()
      .default(false)
      .describe(
        'Ask the backend (map publish proxy) about every client write instead of the map.allow_publish_* options: it may refuse, or change the key, the data, tags, score, key mode, version or idempotency key (anti-cheat, server-derived keys).',
      ),
    publish_proxy_name: proxyName('map publish (channel.proxy.map_publish)'),
    remove_proxy_enabled: z
      .boolean()
      .default(false)
      .describe(
        'Ask the backend (map remove proxy) about every client removal instead of the map.allow_remove_* options.',
      ),
    remove_proxy_name: proxyName('map remove (channel.proxy.map_remove)'),
    client_key: z
      .enum(['', 'client_id', 'user_id'])
      .default('')
      .describe(
        'The key of a client write: as the client sent it (``), or its connection id (`client_id`) or user id (`user_id`) whatever it sent.',
      ),
    client_key_mode: z
      .enum(['', 'if_new', 'if_exists'])
      .default('')
      .describe(
        "Bulwark's own: makes every client write conditional. `if_new` lets a client take a key only while nobody holds it (a lobby slot: of two players racing for it exactly one wins, the other gets error 113); `if_exists` only updates existing keys.",
      ),
    client_owned_keys: z
      .boolean()
      .default(false)
      .describe(
        "Bulwark's own: a client may change or remove only the entries its own user wrote (a player cannot kick another from a lobby slot); others get 103. Server API writes are not bound by it.",
      ),
    remove_client_on_unsubscribe: z
      .boolean()
      .default(false)
      .describe('When a client unsubscribes or disconnects, remove the entry keyed by its connection id (cursors).'),
    default_page_size: z
      .number()
      .int()
      .min(1)
      .default(100)
      .describe('Entries per state or stream page when the client asks for none.'),
    min_page_size: z
      .number()
      .int()
      .min(1)
      .default(100)
      .describe('Smallest page served (a smaller ask is raised to it).'),
    max_page_size: z.number().int().min(1).default(1000).describe('Largest page served (a larger ask is cut to it).'),
    live_transition_max_publication_limit: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe(
        'A subscriber goes live once at most this many changes are left to catch up (else it pages on); 0 means max_page_size.',
      ),
    subscribe_catch_up_timeout: duration('5s').describe(
      'Longest time from the first state page to going live; a subscribe still paging then is dropped (the SDK subscribes again).',
    ),
    max_keys: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe("Bulwark's own: most keys one channel holds; writing a new key beyond it fails with 106."),
    max_key_length: z
      .number()
      .int()
      .min(1)
      .default(256)
      .describe("Bulwark's own: longest key in bytes (UTF-8); a longer one is refused with 107."),
  })
  .prefault({})
  .describe('Map channels of this namespace (subscription_type map, map_clients or map_users).');

/** MapOptions are a namespace's resolved map options (durations in ms). */
export type MapOptions = z.output<typeof mapSchema>;
