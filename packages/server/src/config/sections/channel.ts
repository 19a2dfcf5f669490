/**
 * The `channel` section of the config: the per-namespace channel options (history, recovery,
 * presence, permissions, proxies), the namespaces, and the channel-wide proxies, named as in
 * Centrifugo v6.
 *
 * @module
 */
import { z } from 'zod';
import { duration } from './common.js';
import { mapSchema, subscriptionTypes } from './map.js';
import { proxyName, proxySchema } from './proxy.js';
import { sharedPollNamespaceSchema } from './shared-poll.js';

/** channelOptionsShape holds the per-namespace channel options, named as in Centrifugo v6. */
export const channelOptionsShape = {
  subscription_type: z
    .enum(subscriptionTypes)
    .default('stream')
    .describe(
      'What a subscription to these channels is, as in Centrifugo v6.8: `stream` (publications, history, recovery), `map` (a key-value state: docs/MAPS.md), `map_clients` / `map_users` (map presence, written by the server), or `shared_poll` (the server polls the backend once for every tracker: docs/SHARED_POLL.md). A subscribe of another type is refused with 107.',
    ),
  map: mapSchema,
  map_clients_presence_channel_prefix: z
    .string()
    .default('')
    .describe(
      'When set, a subscriber of a channel here is listed, keyed by its connection id, in the map channel `<prefix><channel>` (a map_clients namespace).',
    ),
  map_users_presence_channel_prefix: z
    .string()
    .default('')
    .describe(
      'When set, a subscriber of a channel here is listed, keyed by its user id, in the map channel `<prefix><channel>` (a map_users namespace); the entry expires key_ttl after the last connection of the user left.',
    ),
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
  force_recovery_mode: z
    .enum(['stream', 'cache'])
    .default('stream')
    .describe(
      '`cache`: a recovering subscriber gets only the latest publication (the channel as a key-value store), instead of every missed one.',
    ),
  allow_tags_filter: z
    .boolean()
    .default(false)
    .describe('Let subscribers pass a publication tags filter (`tf`): they get only publications whose tags match.'),
  allowed_delta_types: z
    .array(z.enum(['fossil']))
    .default([])
    .describe(
      'Delta types subscribers may ask for with the subscribe option `delta` (only `fossil`); empty turns delta compression off. Deltas reach positioned subscriptions only (history with positioning or recovery).',
    ),
  allow_subscribe_for_anonymous: z
    .boolean()
    .default(false)
    .describe(
      'Extends allow_subscribe_for_client to anonymous (no user) clients, as in Centrifugo: alone it allows nothing.',
    ),
  allow_subscribe_for_client: z
    .boolean()
    .default(false)
    .describe('Authenticated clients may subscribe without a subscription token.'),
  allow_publish_for_anonymous: z
    .boolean()
    .default(false)
    .describe('Extends allow_publish_for_client and allow_publish_for_subscriber to anonymous clients.'),
  allow_publish_for_subscriber: z.boolean().default(false).describe('Subscribers of a channel may publish to it.'),
  allow_publish_for_client: z.boolean().default(false).describe('Any authenticated client may publish.'),
  allow_presence_for_anonymous: z
    .boolean()
    .default(false)
    .describe('Extends allow_presence_for_client and allow_presence_for_subscriber to anonymous clients.'),
  allow_presence_for_subscriber: z.boolean().default(false).describe('Subscribers may read presence.'),
  allow_presence_for_client: z.boolean().default(false).describe('Any authenticated client may read presence.'),
  allow_history_for_anonymous: z
    .boolean()
    .default(false)
    .describe('Extends allow_history_for_client and allow_history_for_subscriber to anonymous clients.'),
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
  shared_poll: sharedPollNamespaceSchema.describe(
    'Shared poll options of the namespace (used with subscription_type shared_poll; see docs/SHARED_POLL.md).',
  ),
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

/** channelSection is the `channel` section. */
export const channelSection = z
  .strictObject({
    without_namespace: channelOptions.prefault({}).describe('Options of channels without a namespace.'),
    namespaces: z.array(namespaceSchema).default([]).describe('Namespaces: channels named `<name>:<rest>`.'),
    history_meta_ttl: duration('720h').describe('Default lifetime of a stream position after last use.'),
    idempotent_result_ttl: duration('5m').describe(
      'How long the result of a publish with an `idempotency_key` is remembered: a repeat within it is not published again and gets the first result. 5 minutes, as Centrifugo (configurable here as a Bulwark addition); 0 turns the check off.',
    ),
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
        map_publish: proxySchema.describe(
          'The `default` map publish proxy (namespaces turn it on with map.publish_proxy_enabled).',
        ),
        map_remove: proxySchema.describe(
          'The `default` map remove proxy (namespaces turn it on with map.remove_proxy_enabled).',
        ),
        shared_poll_refresh: proxySchema.describe(
          'The `default` shared poll refresh proxy (namespaces with subscription_type shared_poll and shared_poll.proxy_name `default`).',
        ),
      })
      .prefault({})
      .describe('Channel-wide proxies, used by namespaces with *_proxy_enabled (see docs/PROXY.md).'),
  })
  .prefault({});
