/**
 * Encoding server frames (JSON protocol). Publications and client infos carry their JSON
 * payloads as RawJSON, spliced in by string concatenation: a publication is encoded once per
 * channel and the same bytes go to every subscriber (fan-out never re-serialises).
 *
 * @module
 */
import type { ProtocolErrorShape } from './codes.js';
import type { ClientInfo, ConnectResult, Publication, Push, RawJSON, Reply, SubscribeResult } from './types.js';

const q = JSON.stringify;

/** encodeClientInfo encodes a ClientInfo. */
export function encodeClientInfo(i: ClientInfo): string {
  let s = `{"user":${q(i.user)},"client":${q(i.client)}`;
  if (i.conn_info !== undefined) s += `,"conn_info":${i.conn_info}`;
  if (i.chan_info !== undefined) s += `,"chan_info":${i.chan_info}`;
  return s + '}';
}

/** encodePublication encodes a Publication (offset omitted when 0, as protobuf JSON does). */
export function encodePublication(p: Publication): string {
  // In delta mode the payload travels as a JSON string (the SDK parses it after applying deltas).
  // A map removal has no data (empty RawJSON): the field is left out.
  let s =
    p.payload !== undefined ? `{"data":${q(p.payload.toString('utf8'))}` : p.data === '' ? '{' : `{"data":${p.data}`;
  if (p.info !== undefined) s += `,"info":${encodeClientInfo(p.info)}`;
  if (p.offset > 0) s += `,"offset":${p.offset}`;
  if (p.tags !== undefined) s += `,"tags":${q(p.tags)}`;
  if (p.time !== undefined) s += `,"time":${p.time}`;
  if (p.delta) s += `,"delta":true`;
  if (p.key !== undefined) s += `,"key":${q(p.key)}`;
  if (p.removed) s += `,"removed":true`;
  if (p.score) s += `,"score":${p.score}`;
  if (p.version) s += `,"version":${p.version}`;
  // Without data the object may start with a comma.
  return (s.startsWith('{,') ? '{' + s.slice(2) : s) + '}';
}

function encodePublications(pubs: readonly Publication[]): string {
  return '[' + pubs.map(encodePublication).join(',') + ']';
}

/** wrapPush makes a push body (the protocol's Push) a reply frame, as bidirectional connections receive it. */
function wrapPush(body: string): string {
  return `{"push":${body}}`;
}

/**
 * encodePushBody encodes a push as the protocol's Push object: what unidirectional
 * connections receive as is, and bidirectional ones wrapped in a reply (`{"push":…}`).
 */
export function encodePushBody(p: Push): string {
  switch (p.type) {
    case 'pub':
      return `{"channel":${q(p.channel)},"pub":${encodePublication(p.pub)}}`;
    case 'join':
    case 'leave':
      return `{"channel":${q(p.channel)},${q(p.type)}:{"info":${encodeClientInfo(p.info)}}}`;
    case 'unsubscribe':
      return `{"channel":${q(p.channel)},"unsubscribe":{"code":${p.code},"reason":${q(p.reason)}}}`;
    case 'subscribe':
      return `{"channel":${q(p.channel)},"subscribe":${encodeSubscribeResult(p.result)}}`;
    case 'message':
      return `{"message":{"data":${p.data}}}`;
    case 'refresh':
      return `{"refresh":{"expires":${p.expires},"ttl":${p.ttl}}}`;
    case 'disconnect':
      return `{"disconnect":{"code":${p.code},"reason":${q(p.reason)},"reconnect":${p.reconnect}}}`;
    case 'connect':
      return `{"connect":${encodeConnectResult(p.result)}}`;
  }
}

/** encodePush encodes a push as a bidirectional connection receives it. */
export function encodePush(p: Push): string {
  return wrapPush(encodePushBody(p));
}

/** encodePublicationPush encodes the push that delivers `pub` on `channel`. */
export function encodePublicationPush(channel: string, pub: Publication): string {
  return encodePush({ type: 'pub', channel, pub });
}

/** encodeJoinPush encodes a join push. */
export function encodeJoinPush(channel: string, info: ClientInfo): string {
  return encodePush({ type: 'join', channel, info });
}

/** encodeLeavePush encodes a leave push. */
export function encodeLeavePush(channel: string, info: ClientInfo): string {
  return encodePush({ type: 'leave', channel, info });
}

/** encodeSubscribeResult encodes a SubscribeResult, omitting empty fields. */
export function encodeSubscribeResult(r: SubscribeResult): string {
  const parts: string[] = [];
  if (r.expires) parts.push(`"expires":true`, `"ttl":${r.ttl ?? 0}`);
  if (r.recoverable) parts.push(`"recoverable":true`);
  if (r.epoch) parts.push(`"epoch":${q(r.epoch)}`);
  if (r.publications && r.publications.length > 0) parts.push(`"publications":${encodePublications(r.publications)}`);
  if (r.recovered) parts.push(`"recovered":true`);
  if (r.offset) parts.push(`"offset":${r.offset}`);
  if (r.positioned) parts.push(`"positioned":true`);
  if (r.data !== undefined) parts.push(`"data":${r.data}`);
  if (r.was_recovering) parts.push(`"was_recovering":true`);
  if (r.delta) parts.push(`"delta":true`);
  if (r.type) parts.push(`"type":${r.type}`);
  if (r.phase) parts.push(`"phase":${r.phase}`);
  if (r.cursor) parts.push(`"cursor":${q(r.cursor)}`);
  if (r.state && r.state.length > 0) parts.push(`"state":${encodePublications(r.state)}`);
  return '{' + parts.join(',') + '}';
}

/** encodeConnectResult encodes a ConnectResult. */
export function encodeConnectResult(r: ConnectResult): string {
  const parts = [`"client":${q(r.client)}`, `"version":${q(r.version)}`];
  if (r.expires) parts.push(`"expires":true`, `"ttl":${r.ttl ?? 0}`);
  if (r.data !== undefined) parts.push(`"data":${r.data}`);
  if (r.subs && Object.keys(r.subs).length > 0) {
    const subs = Object.entries(r.subs).map(([ch, s]) => `${q(ch)}:${encodeSubscribeResult(s)}`);
    parts.push(`"subs":{${subs.join(',')}}`);
  }
  if (r.ping) parts.push(`"ping":${r.ping}`);
  if (r.pong) parts.push(`"pong":true`);
  if (r.session) parts.push(`"session":${q(r.session)}`);
  if (r.node) parts.push(`"node":${q(r.node)}`);
  if (r.time) parts.push(`"time":${r.time}`);
  return '{' + parts.join(',') + '}';
}

/** encodeHistoryResult encodes a history result. */
export function encodeHistoryResult(pubs: readonly Publication[], offset: number, epoch: string): string {
  const parts: string[] = [];
  if (pubs.length > 0) parts.push(`"publications":${encodePublications(pubs)}`);
  if (epoch) parts.push(`"epoch":${q(epoch)}`);
  if (offset) parts.push(`"offset":${offset}`);
  return '{' + parts.join(',') + '}';
}

/** encodePresenceResult encodes a presence result. */
export function encodePresenceResult(presence: Record<string, ClientInfo>): string {
  const entries = Object.entries(presence).map(([id, info]) => `${q(id)}:${encodeClientInfo(info)}`);
  return `{"presence":{${entries.join(',')}}}`;
}

/** emptyResult is the result of commands that answer nothing but success (`{}`). */
export const emptyResult = '{}';

/** encodeRefreshResult encodes the reply to a client `refresh`: its connection's new expiry. */
export function encodeRefreshResult(client: string, version: string, expires: boolean, ttl: number): string {
  let s = `{"client":${q(client)},"version":${q(version)}`;
  if (expires) s += `,"expires":true,"ttl":${ttl}`;
  return s + '}';
}

/**
 * encodeSubRefreshResult encodes the reply to `sub_refresh` (empty when the subscription no
 * longer expires); a shared poll track reply carries the tracked items' current values.
 */
export function encodeSubRefreshResult(expires: boolean, ttl: number, items?: readonly Publication[]): string {
  const parts: string[] = [];
  if (expires) parts.push(`"expires":true`, `"ttl":${ttl}`);
  if (items && items.length > 0) parts.push(`"items":${encodePublications(items)}`);
  return '{' + parts.join(',') + '}';
}

/** encodePresenceStatsResult encodes a presence_stats result. */
export function encodePresenceStatsResult(numClients: number, numUsers: number): string {
  return `{"num_clients":${numClients},"num_users":${numUsers}}`;
}

/** encodeRpcResult encodes an RPC result; no data is an empty result. */
export function encodeRpcResult(data: RawJSON | undefined): string {
  return data === undefined ? emptyResult : `{"data":${data}}`;
}

/** encodeReply wraps an encoded result in a reply to command `id` for `method`. */
export function encodeReply(id: number, method: string, result: string): string {
  return `{"id":${id},${q(method)}:${result}}`;
}

/** encodeErrorReply encodes an error reply to command `id`. */
export function encodeErrorReply(id: number, err: ProtocolErrorShape): string {
  return `{"id":${id},"error":${q(err)}}`;
}

/** pingFrame is the server ping (and the client pong): an empty object. */
export const pingFrame = '{}';

/** encodeResult encodes a reply's result object (`{}` for methods that answer only success). */
export function encodeResult(r: Reply): string {
  switch (r.method) {
    case 'connect':
      return encodeConnectResult(r.result);
    case 'subscribe':
      return encodeSubscribeResult(r.result);
    case 'unsubscribe':
    case 'publish':
    case 'ping':
      return emptyResult;
    case 'presence':
      return encodePresenceResult(r.result);
    case 'presence_stats':
      return encodePresenceStatsResult(r.result.num_clients, r.result.num_users);
    case 'history':
      return encodeHistoryResult(r.result.publications, r.result.offset, r.result.epoch);
    case 'rpc':
      return encodeRpcResult(r.result.data);
    case 'refresh':
      return encodeRefreshResult(r.result.client, r.result.version, r.result.expires, r.result.ttl);
    case 'sub_refresh':
      return encodeSubRefreshResult(r.result.expires, r.result.ttl, r.result.items);
  }
}
