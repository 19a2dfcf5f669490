/**
 * A client's write to a map channel: the `publish` command with `type: 1` (the SDK's
 * `sub.publish(key, data)`, or `removed: true` for `sub.remove(key)`). The key is the client's
 * own, or its connection or user id when the namespace says so (`map.client_key`); the
 * namespace's `map.allow_*` options decide who may write; `map.client_key_mode` (Bulwark's own)
 * makes every client write conditional, so two players racing for a lobby slot get one winner
 * and one error 113.
 *
 * @module
 */
import type { ResolvedChannel } from '../channel-rules.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import { asRaw, type PublishRequest, type Reply } from '../protocol/types.js';
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
  const key = m.client_key === 'client_id' ? s.id : m.client_key === 'user_id' ? s.user : (req.key ?? '');
  if (key === '') throw new ProtocolError(ErrorCode.BadRequest, 'bad request: key required');
  if (Buffer.byteLength(key) > m.max_key_length) {
    ctx.metrics.reject('map_key_length');
    throw new ProtocolError(ErrorCode.BadRequest, `bad request: key longer than ${m.max_key_length} bytes`);
  }
  const sub = s.subs.get(rc.channel);
  const subscribed = sub !== undefined && sub.mapSync === undefined;
  ctx.permissions.checkMapWrite(removed ? 'remove' : 'publish', rc, s.user, subscribed);
  const retention = ctx.rules.mapRetention(ns);
  const info = s.info(sub?.chanInfo);
  if (removed) {
    // Removing a key that is not there leaves the map as asked: no error, but no applied write
    // either (counted as suppressed, as the server API and map presence count it).
    const r = await ctx.mapBroker.remove(rc.channel, key, { ...retention, info });
    if (r.suppressed !== undefined) ctx.metrics.mapSuppressed.inc({ reason: r.suppressed });
    else ctx.metrics.mapWrites.inc({ op: 'remove', from: 'client' });
    return { reply: { method: 'publish' } };
  }
  const data = asRaw(req.data);
  const max = ctx.config.protection.publication_max_size;
  if (max > 0 && Buffer.byteLength(data) > max) {
    ctx.metrics.reject('publication_max_size');
    throw new ProtocolError(
      ErrorCode.LimitExceeded,
      `publication data larger than protection.publication_max_size (${max} bytes)`,
    );
  }
  const keyMode = m.client_key_mode === '' ? undefined : m.client_key_mode;
  const r = await ctx.mapBroker.publish(rc.channel, key, { ...retention, data, info, keyMode });
  if (r.suppressed !== undefined) ctx.metrics.mapSuppressed.inc({ reason: r.suppressed });
  if (r.suppressed === 'key_exists' || r.suppressed === 'key_not_found') {
    const why = r.suppressed === 'key_exists' ? 'the key is taken' : 'the key does not exist';
    throw new ProtocolError(ErrorCode.Conflict, `conflict: ${why}`);
  }
  ctx.metrics.mapWrites.inc({ op: 'publish', from: 'client' });
  return { reply: { method: 'publish' } };
}
