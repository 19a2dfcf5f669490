/**
 * What the hub knows of a subscriber: one subscription's state, and the two calls that hand
 * it a frame. The hub indexes subscribers by channel and user and fans out through this
 * interface only, so it can be driven without sessions or sockets.
 *
 * @module
 */
import type { ProxyTarget } from '../proxy/proxies.js';
import type { Codec } from '../protocol/codec.js';
import type { ClientProfile } from '../protocol/publication-variants.js';
import type { CompiledFilter } from '../protocol/tags-filter.js';
import type { Publication, RawJSON } from '../protocol/types.js';
import type { DeltaFrames } from './delta-frames.js';

/** PublicationFrame is a publication's shared frame, or its delta-mode frames (delta subscriptions). */
export type PublicationFrame = Buffer | DeltaFrames;

/** SubState is one subscription of a session. The hub holds it to deliver without lookups. */
export interface SubState {
  readonly channel: string;
  readonly joinLeave: boolean;
  readonly positioned: boolean;
  readonly recoverable: boolean;
  readonly presence: boolean;
  readonly joinLeaveEnabled: boolean;
  /**
   * Publications (and join/leave frames, with no publication) that arrived while the
   * subscribe was in flight, with their shared frames.
   * They are delivered after the subscribe reply, skipping any the reply already carried,
   * so a subscriber sees every publication exactly once and in order.
   */
  buffer: Array<[Publication | undefined, PublicationFrame]> | undefined;
  /** Offset of the last publication delivered (positioned subscriptions). */
  offset: number;
  epoch: string;
  /** Subscription token expiry in ms since epoch; 0 means never. */
  expireAt: number;
  chanInfo: RawJSON | undefined;
  /**
   * The sub_refresh proxy that prolongs this subscription when it expires (a subscription the
   * subscribe proxy allowed, in a namespace with sub_refresh_proxy_enabled); undefined when the
   * client refreshes it with a token.
   */
  readonly subRefreshProxy: ProxyTarget | undefined;
  /** A sub_refresh proxy call for this subscription is in flight. */
  refreshing: boolean;
  /**
   * The publication tags filter delivery applies (the server-enforced one and the client's
   * `tf`, both must pass; see client/tags-filters.ts); undefined delivers everything.
   */
  readonly filter: CompiledFilter | undefined;
  /** The server-enforced part alone, which also filters this client's history reads. */
  readonly serverFilter: CompiledFilter | undefined;
  /** Delta compression is on (the subscribe option `delta`; see delta.ts). */
  readonly delta?: boolean;
  /**
   * The data the client holds as its delta base (what it received last, in a positioned
   * delta subscription); undefined while it holds none. A delta is sent only against exactly
   * this (see delta.ts).
   */
  deltaBase?: RawJSON | undefined;
  /**
   * A map subscription still paging through its state and stream (client/map-subscribe.ts):
   * indexed and buffering, not live yet. Undefined for every other subscription.
   */
  mapSync?: MapSync | undefined;
  /** The map entries this subscription keeps outside its channel (map presence, own key); see map-presence.ts. */
  mapKeys?: MapKeys | undefined;
}

/** MapSync is the progress of a map subscribe that spans several client requests. */
export interface MapSync {
  /** The subscription type asked for (1 map, 2 map_clients, 3 map_users). */
  readonly type: number;
  /** Drops the subscribe when it is not live by map.subscribe_catch_up_timeout. */
  readonly timer: NodeJS.Timeout;
  /** Data for the client from its subscription token or the subscribe proxy, sent in the live reply. */
  readonly data?: RawJSON | undefined;
}

/** Subscriber is a connection as the hub sees it. */
export interface Subscriber {
  /** Client id, unique per connection. */
  readonly id: string;
  /** User id; '' for anonymous connections. */
  readonly user: string;
  /** The connection's format: the hub hands it frames encoded by this codec. */
  readonly codec: Codec;
  /** What the client declared: the hub hands it the publication variant this selects. */
  readonly profile: ClientProfile;
  /**
   * deliverPublication hands a publication and its shared frame to one subscription; false when
   * the subscription does not take it (its tags filter, a publication it already has, a gap).
   */
  deliverPublication(state: SubState, pub: Publication, frame: PublicationFrame, epoch?: string): boolean;
  /** deliverEvent hands a join/leave frame to one subscription. */
  deliverEvent(state: SubState, frame: Buffer): void;
}

/** MapKeys are the map entries one subscription keeps, outside its own channel's stream. */
export interface MapKeys {
  /** The map_clients channel listing this connection. */
  readonly clients?: string | undefined;
  /** The map_users channel listing this user. */
  readonly users?: string | undefined;
  /** Remove this connection's own key from the channel on unsubscribe (a map channel). */
  readonly ownKey?: boolean | undefined;
}
