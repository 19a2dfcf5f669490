/**
 * Map presence (Centrifugo's `map_clients` and `map_users`): who is subscribed to a channel,
 * kept by the server in map channels that clients subscribe to like any map. A subscriber of a
 * channel in a namespace with `map_clients_presence_channel_prefix` P is the entry keyed by its
 * connection id in the map channel P + channel (its client info as value), removed when it
 * leaves; with `map_users_presence_channel_prefix` U it is the entry keyed by its user id in
 * U + channel, which expires `map.key_ttl` after the user's last connection left (a user with
 * several connections is one entry, and a quick reconnect does not flicker).
 *
 * Entries are refreshed every `client.presence_update_interval` with a conditional write that
 * only restarts their TTL (no delivery), so presence costs subscribers nothing while nobody
 * comes or goes; an entry lost to an engine failure comes back on the next refresh. A
 * namespace that removes a client's own key on unsubscribe (`map.remove_client_on_unsubscribe`,
 * cursors) is served here too.
 *
 * Failures are logged once per burst and never fail the subscription they belong to.
 *
 * @module
 */
import type { ResolvedChannel } from '../channel-rules.js';
import type { ClientInfo, RawJSON } from '../protocol/types.js';
import { encodeClientInfo } from '../protocol/encode.js';
import type { SessionContext } from './context.js';
import type { MapKeys, SubState } from './subscriber.js';

/** MapPresenceSession is what map presence needs of a session. */
export interface MapPresenceSession {
  readonly id: string;
  readonly user: string;
  readonly ctx: SessionContext;
  info(chanInfo?: RawJSON): ClientInfo;
}

/** mapKeysOf says which map entries a subscription to `rc` keeps; undefined for none (most). */
export function mapKeysOf(rc: ResolvedChannel, user: string): MapKeys | undefined {
  const o = rc.options;
  const clients = o.map_clients_presence_channel_prefix;
  const users = user !== '' ? o.map_users_presence_channel_prefix : '';
  const ownKey = o.subscription_type === 'map' && o.map.remove_client_on_unsubscribe;
  if (clients === '' && users === '' && !ownKey) return undefined;
  return {
    clients: clients === '' ? undefined : clients + rc.channel,
    users: users === '' ? undefined : users + rc.channel,
    ownKey,
  };
}

/** joinMapPresence lists a subscription that just went live in its presence maps. */
export function joinMapPresence(s: MapPresenceSession, state: SubState): void {
  const keys = state.mapKeys;
  if (keys === undefined) return;
  if (keys.clients !== undefined) write(s, keys.clients, s.id, clientValue(s, state), false);
  if (keys.users !== undefined) write(s, keys.users, s.user, '{}' as RawJSON, true);
}

/** refreshMapPresence restarts the TTL of a live subscription's presence entries (no delivery unless one was lost). */
export function refreshMapPresence(s: MapPresenceSession, state: SubState): void {
  const keys = state.mapKeys;
  if (keys === undefined || state.mapSync !== undefined) return;
  if (keys.clients !== undefined) write(s, keys.clients, s.id, clientValue(s, state), true);
  if (keys.users !== undefined) write(s, keys.users, s.user, '{}' as RawJSON, true);
}

/** leaveMapPresence removes what a subscription listed: its connection, and its own key where asked. */
export async function leaveMapPresence(s: MapPresenceSession, state: SubState): Promise<void> {
  const keys = state.mapKeys;
  if (keys === undefined) return;
  const removals: Array<[string, string]> = [];
  if (keys.clients !== undefined) removals.push([keys.clients, s.id]);
  if (keys.ownKey && state.mapSync === undefined) removals.push([state.channel, s.id]);
  await Promise.all(
    removals.map(async ([channel, key]) => {
      const ctx = s.ctx;
      try {
        const rc = ctx.rules.resolve(channel);
        const r = await ctx.mapBroker.remove(channel, key, ctx.rules.mapRetention(rc.options));
        if (r.suppressed === undefined) ctx.metrics.mapWrites.inc({ op: 'remove', from: 'presence' });
      } catch (err) {
        failed(ctx, channel, err);
      }
    }),
  );
}

function clientValue(s: MapPresenceSession, state: SubState): RawJSON {
  return encodeClientInfo(s.info(state.chanInfo)) as RawJSON;
}

/**
 * write sets `key` in the presence map `channel`; `ifNew` only restarts its TTL when it exists
 * (a user's second connection, a refresh), so nothing is delivered for it.
 */
function write(s: MapPresenceSession, channel: string, key: string, data: RawJSON, ifNew: boolean): void {
  const ctx = s.ctx;
  let rc: ResolvedChannel;
  try {
    rc = ctx.rules.resolve(channel);
  } catch (err) {
    failed(ctx, channel, err);
    return;
  }
  const opts = {
    ...ctx.rules.mapRetention(rc.options),
    data,
    ...(ifNew ? { keyMode: 'if_new' as const, refreshTtlOnSuppress: true } : {}),
  };
  ctx.mapBroker.publish(channel, key, opts).then(
    (r) => {
      if (r.suppressed === undefined) ctx.metrics.mapWrites.inc({ op: 'publish', from: 'presence' });
    },
    (err: unknown) => failed(ctx, channel, err),
  );
}

function failed(ctx: SessionContext, channel: string, err: unknown): void {
  ctx.burstLog.warn(
    'map_presence.failed',
    { channel, err: err instanceof Error ? err.message : String(err) },
    'map presence write failed (the next refresh retries)',
  );
}
