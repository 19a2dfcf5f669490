/**
 * A client's write to a map channel: the `publish` command with `type: 1` (the SDK's
 * `sub.publish(key, data)`, or `removed: true` for `sub.remove(key)`). The key is the client's
 * own, or its connection or user id when the namespace says so (`map.client_key`); the
 * namespace's `map.allow_*` options decide who may write; `map.client_key_mode` (Bulwark's own)
 * makes every client write conditional, so two players racing for a lobby slot get one winner
 * and one error 113; `map.client_owned_keys` (Bulwark's own) lets a client touch only the
 * entries its user wrote (103 otherwise), so nobody kicks another player out of a slot. With
 * `map.publish_proxy_enabled` / `remove_proxy_enabled` the backend decides instead of the
 * allow_* options and may change the key, data, tags, score, key mode, version or idempotency
 * key (proxy/map-proxy.ts).
 *
 * @module
 */
import type { ResolvedChannel } from '../channel-rules.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import { asRaw, type PublishRequest, type Reply } from '../protocol/types.js';
import type { MapSuppressReason } from '../engine/map-broker.js';
import type { SessionCore } from './session-core.js';

/** mapPublish runs a client's map publish or removal (the kill switch was checked by the caller). */
export async function mapPublish(s: SessionCore, rc: ResolvedChannel, req: PublishRequest): Promise<{ reply: Reply }> {
  const ctx = s.ctx;
  const ns = rc.options;
  const m = ns.map;
  if (ns.subscription_type === 'map_clients' || ns.subscription_type === 'map_users') {
    // Map presence is written by the server only.
    throw new ProtocolError(ErrorCode.PermissionDenied);
  }
  if (ns.subscription_type !== 'map') {
    throw new ProtocolError(ErrorCode.BadRequest, 'bad request: a keyed publish (type 1) needs a map channel');
  }
  const removed = req.removed === true;
  const assigned = m.client_key === 'client_id' ? s.id : m.client_key === 'user_id' ? s.user : undefined;
  let key = assigned ?? req.key ?? '';
  // With a proxy the backend may assign the key itself: an empty one is its to fill.
  const target = ctx.proxies.mapWrite(removed ? 'remove' : 'publish', ns);
  if (key === '' && target === undefined) throw new ProtocolError(ErrorCode.BadRequest, 'bad request: key required');
  checkKeyLength(s, m.max_key_length, key);
  const sub = s.subs.get(rc.channel);
  const subscribed = sub !== undefined && sub.mapSync === undefined;
  // With the map proxy the backend decides instead of the map.allow_* options.
  if (target === undefined) ctx.permissions.checkMapWrite(removed ? 'remove' : 'publish', rc, s.user, subscribed);
  const retention = ctx.rules.mapRetention(ns);
  const info = s.info(sub?.chanInfo);
  const ownerUser = m.client_owned_keys ? s.user : undefined;
  if (removed) {
    const out = target === undefined ? {} : await ctx.backend.mapRemove(target, s.proxyConnection(), rc.channel, key);
    key = out.key ?? key;
    if (key === '') throw new ProtocolError(ErrorCode.BadRequest, 'bad request: key required');
    checkKeyLength(s, m.max_key_length, key);
    const opts = { ...retention, info, ownerUser, tags: out.tags, idempotencyKey: out.idempotencyKey };
    // Removing a key that is not there leaves the map as asked: no error, but no applied write
    // either (counted as suppressed, as the server API and map presence count it).
    const r = await ctx.mapBroker.remove(rc.channel, key, opts);
    refuseNotOwner(s, r.suppressed);
    if (r.suppressed !== undefined) ctx.metrics.mapSuppressed.inc({ reason: r.suppressed });
    else ctx.metrics.mapWrites.inc({ op: 'remove', from: 'client' });
    return { reply: { method: 'publish' } };
  }
  const out =
    target === undefined ? {} : await ctx.backend.mapPublish(target, s.proxyConnection(), rc.channel, key, req.data);
  key = out.key ?? key;
  if (key === '') throw new ProtocolError(ErrorCode.BadRequest, 'bad request: key required');
  checkKeyLength(s, m.max_key_length, key);
  const data = out.data ?? asRaw(req.data);
  const max = ctx.config.protection.publication_max_size;
  if (max > 0 && Buffer.byteLength(data) > max) {
    ctx.metrics.reject('publication_max_size');
    throw new ProtocolError(
      ErrorCode.LimitExceeded,
      `publication data larger than protection.publication_max_size (${max} bytes)`,
    );
  }
  const keyMode = out.keyMode ?? (m.client_key_mode === '' ? undefined : m.client_key_mode);
  const r = await ctx.mapBroker.publish(rc.channel, key, {
    ...retention,
    data,
    info,
    keyMode,
    ownerUser,
    tags: out.tags,
    score: out.score,
    idempotencyKey: out.idempotencyKey,
    version: out.version,
    versionEpoch: out.versionEpoch,
  });
  refuseNotOwner(s, r.suppressed);
  if (r.suppressed !== undefined) ctx.metrics.mapSuppressed.inc({ reason: r.suppressed });
  if (r.suppressed === 'key_exists' || r.suppressed === 'key_not_found') {
    const why = r.suppressed === 'key_exists' ? 'the key is taken' : 'the key does not exist';
    throw new ProtocolError(ErrorCode.Conflict, `conflict: ${why}`);
  }
  if (r.suppressed === undefined) ctx.metrics.mapWrites.inc({ op: 'publish', from: 'client' });
  return { reply: { method: 'publish' } };
}

/** checkKeyLength refuses a key longer than map.max_key_length (107). */
function checkKeyLength(s: SessionCore, max: number, key: string): void {
  if (Buffer.byteLength(key) <= max) return;
  s.ctx.metrics.reject('map_key_length');
  throw new ProtocolError(ErrorCode.BadRequest, `bad request: key longer than ${max} bytes`);
}

/** refuseNotOwner answers 103 to a write of an entry another user wrote (map.client_owned_keys). */
function refuseNotOwner(s: SessionCore, suppressed: MapSuppressReason | undefined): void {
  if (suppressed !== 'not_owner') return;
  s.ctx.metrics.mapSuppressed.inc({ reason: suppressed });
  throw new ProtocolError(ErrorCode.PermissionDenied, 'permission denied: the entry belongs to another user');
}
