/**
 * Wire types of the Centrifugo client protocol v2 (JSON format), named as in the protocol's
 * `client.proto`. A command carries an `id` (0 for commands that expect no reply, such as
 * `send`) and exactly one request field; a reply carries the same `id` and either a result
 * field or `error`; a push is a reply with no id and a `push` field. An empty object is a
 * ping (server → client) or a pong (client → server).
 *
 * In JSON, the protocol's `bytes` fields (`data`, `info`) hold any JSON value, embedded as is.
 * Inside Bulwark they travel as {@link RawJSON}: already-encoded text, so a publication is
 * encoded once and never re-serialised per subscriber.
 *
 * @module
 */

import { ErrorCode, ProtocolError } from './codes.js';

/** RawJSON is a JSON value kept in its encoded form (`'{"a":1}'`, `'"text"'`, `'42'`). */
export type RawJSON = string & { readonly __rawJson: true };

/**
 * asRaw encodes a JS value as RawJSON. A value JSON.stringify cannot encode (nested deeper
 * than its recursion limit, circular, BigInt) throws ProtocolError 107: it is the caller's
 * input at fault, never a (temporary) internal error.
 */
export function asRaw(value: unknown): RawJSON {
  try {
    return JSON.stringify(value ?? null) as RawJSON;
  } catch (err) {
    if (err instanceof RangeError || err instanceof TypeError) {
      throw new ProtocolError(ErrorCode.BadRequest, 'data cannot be encoded as JSON (too deeply nested?)');
    }
    throw err;
  }
}

/** ClientInfo describes a connection in presence, join/leave and publications. */
export interface ClientInfo {
  user: string;
  client: string;
  /** Connection info from the token's `info` claim. */
  conn_info?: RawJSON;
  /** Channel info from the subscription token's `info` claim. */
  chan_info?: RawJSON;
}

/** StreamPosition is a place in a channel's history stream. */
export interface StreamPosition {
  offset: number;
  epoch: string;
}

/** Publication is one message of a channel, as stored in history and delivered to clients. */
export interface Publication {
  /** Position in the channel stream; 0 when the channel keeps no history. */
  offset: number;
  data: RawJSON;
  info?: ClientInfo;
  tags?: Record<string, string>;
  /** Publication time in Unix milliseconds, when the publisher asked for it. */
  time?: number;
  /**
   * What a subscription with delta compression gets instead of `data` (client/delta.ts): the
   * bytes of the JSON text, or of a Fossil delta when `delta` is set. The JSON format sends
   * them as a string, Protobuf as bytes: what the SDK decodes in delta mode.
   */
  payload?: Buffer;
  /** `payload` is a Fossil delta against the previous publication the subscriber received. */
  delta?: boolean;
  /**
   * Alternative payloads for clients of other capability (Bulwark's own, see
   * protocol/publication-variants.ts). Kept in history; never sent to a client as such: each
   * subscriber gets `data` or one variant's data.
   */
  variants?: PublicationVariant[];
  /** Map subscriptions: the entry's key (client/map-subscribe.ts). */
  key?: string;
  /** Map subscriptions: the publication removes `key`. */
  removed?: boolean;
  /** Map subscriptions: the entry's sort score (ordered maps). */
  score?: number;
  /** Shared poll: the item's version (client/shared-poll). */
  version?: number;
}

/**
 * VariantCondition says which clients a publication variant is for; every given field must
 * hold. `name` and the versions test the connect request's `name` and `version`; `has` and
 * `lacks` the connection token's `features` claim.
 */
export interface VariantCondition {
  name?: string;
  /** The client's version is below this one (a client that sent none counts as below). */
  version_below?: string;
  version_at_least?: string;
  has?: string;
  lacks?: string;
}

/** PublicationVariant is one alternative payload of a publication, and the clients it is for. */
export interface PublicationVariant {
  when: VariantCondition;
  data: RawJSON;
}

export interface ConnectRequest {
  token?: string;
  data?: unknown;
  subs?: Record<string, SubscribeRequest>;
  name?: string;
  version?: string;
}

export interface SubscribeRequest {
  channel: string;
  token?: string;
  recover?: boolean;
  epoch?: string;
  offset?: number;
  data?: unknown;
  positioned?: boolean;
  recoverable?: boolean;
  join_leave?: boolean;
  /** Publication tags filter (a FilterNode tree; checked at subscribe, see tags-filter.ts). */
  tf?: unknown;
  /** Subscription flags (bits): 2 asks to be refused (112) instead of subscribed unrecovered. */
  flag?: number;
  /** Delta compression asked for: `fossil` is the only type (client/delta.ts). */
  delta?: string;
  /** Subscription type: 0 stream (default), 1 map, 2 map_clients, 3 map_users, 4 shared poll. */
  type?: number;
  /** Map subscriptions: the phase asked for (2 state, 1 stream, 0 live). */
  phase?: number;
  /** Map subscriptions: where the next state page starts (from the previous page's reply). */
  cursor?: string;
  /** Map subscriptions: page size asked for (0: the namespace's default). */
  limit?: number;
}

export interface UnsubscribeRequest {
  channel: string;
}
export interface PublishRequest {
  channel: string;
  /** Absent only for a map removal. */
  data: unknown;
  /** 1: a map publish or removal of `key` (map subscriptions); absent: a stream publish. */
  type?: number;
  key?: string;
  removed?: boolean;
}
export interface PresenceRequest {
  channel: string;
}
export interface PresenceStatsRequest {
  channel: string;
}
export interface HistoryRequest {
  channel: string;
  limit?: number;
  since?: StreamPosition;
  reverse?: boolean;
}
export interface SendRequest {
  data: unknown;
}
export interface RPCRequest {
  method?: string;
  data?: unknown;
}
export interface RefreshRequest {
  token: string;
}
/** TrackItem is one item a shared poll subscriber tracks, with the version it has (0: none). */
export interface TrackItem {
  key: string;
  version: number;
}
/** TrackBatch is a set of items with the signature that authorises tracking them. */
export interface TrackBatch {
  signature: string;
  items: TrackItem[];
}
export interface SubRefreshRequest {
  channel: string;
  /** Empty for a shared poll track/untrack. */
  token: string;
  /** Shared poll: 1 track, 2 untrack; absent: a subscription token refresh. */
  type?: number;
  track?: TrackBatch[];
  untrack?: string[];
}

/** Method names one command may carry, in protocol order. */
export const commandMethods = [
  'connect',
  'subscribe',
  'unsubscribe',
  'publish',
  'presence',
  'presence_stats',
  'history',
  'ping',
  'send',
  'rpc',
  'refresh',
  'sub_refresh',
] as const;
export type CommandMethod = (typeof commandMethods)[number];

/** Command is a decoded client command: exactly one method with its validated request. */
export type Command =
  | { id: number; method: 'connect'; req: ConnectRequest }
  | { id: number; method: 'subscribe'; req: SubscribeRequest }
  | { id: number; method: 'unsubscribe'; req: UnsubscribeRequest }
  | { id: number; method: 'publish'; req: PublishRequest }
  | { id: number; method: 'presence'; req: PresenceRequest }
  | { id: number; method: 'presence_stats'; req: PresenceStatsRequest }
  | { id: number; method: 'history'; req: HistoryRequest }
  | { id: number; method: 'ping'; req: Record<string, never> }
  | { id: number; method: 'send'; req: SendRequest }
  | { id: number; method: 'rpc'; req: RPCRequest }
  | { id: number; method: 'refresh'; req: RefreshRequest }
  | { id: number; method: 'sub_refresh'; req: SubRefreshRequest }
  /** An empty command: the client's pong to a server ping. */
  | { id: 0; method: 'pong'; req: Record<string, never> };

export interface SubscribeResult {
  expires?: boolean;
  ttl?: number;
  recoverable?: boolean;
  epoch?: string;
  publications?: Publication[];
  recovered?: boolean;
  offset?: number;
  positioned?: boolean;
  data?: RawJSON;
  was_recovering?: boolean;
  /** Delta compression is on for this subscription. */
  delta?: boolean;
  /** Map subscriptions: the subscription type answered (as asked). */
  type?: number;
  /** Map subscriptions: the phase this reply belongs to; 0 (absent) is live: the subscription is made. */
  phase?: number;
  /** Map subscriptions: where the next state page starts; absent on the last page. */
  cursor?: string;
  /** Map subscriptions: entries of a state page. */
  state?: Publication[];
}

export interface ConnectResult {
  client: string;
  version: string;
  expires?: boolean;
  ttl?: number;
  data?: RawJSON;
  subs?: Record<string, SubscribeResult>;
  ping?: number;
  pong?: boolean;
  session?: string;
  node?: string;
  time?: number;
}

export interface HistoryResult {
  publications: readonly Publication[];
  offset: number;
  epoch: string;
}

export interface RefreshResult {
  client: string;
  version: string;
  expires: boolean;
  ttl: number;
}

/**
 * Reply is a command's successful result, before it is encoded in the connection's format
 * (protocol/codec.ts). Methods that answer nothing but success carry no result.
 */
export type Reply =
  | { method: 'connect'; result: ConnectResult }
  | { method: 'subscribe'; result: SubscribeResult }
  | { method: 'unsubscribe' | 'publish' | 'ping' }
  | { method: 'presence'; result: Record<string, ClientInfo> }
  | { method: 'presence_stats'; result: { num_clients: number; num_users: number } }
  | { method: 'history'; result: HistoryResult }
  | { method: 'rpc'; result: { data?: RawJSON | undefined } }
  | { method: 'refresh'; result: RefreshResult }
  | { method: 'sub_refresh'; result: { expires: boolean; ttl: number; items?: Publication[] } };

/** Push is a server-initiated message, before it is encoded in the connection's format. */
export type Push =
  | { type: 'pub'; channel: string; pub: Publication }
  | { type: 'join' | 'leave'; channel: string; info: ClientInfo }
  | { type: 'unsubscribe'; channel: string; code: number; reason: string }
  | { type: 'subscribe'; channel: string; result: SubscribeResult }
  | { type: 'message'; data: RawJSON }
  | { type: 'refresh'; expires: boolean; ttl: number }
  | { type: 'disconnect'; code: number; reason: string; reconnect: boolean }
  /** The first push of a unidirectional connection: its connect result. */
  | { type: 'connect'; result: ConnectResult };
