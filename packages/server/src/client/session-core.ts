/**
 * SessionCore: what the command handlers of a session (connect.ts, subscribe.ts,
 * commands.ts) may read and change of the session they serve. The session implements it;
 * the handlers depend on this interface rather than on the session class, so the state
 * machine (session.ts) imports the handlers and nothing imports back.
 *
 * @module
 */
import type { Disconnect, ProtocolErrorShape } from '../protocol/codes.js';
import type { ClientProfile } from '../protocol/publication-variants.js';
import type { ClientInfo, Push, RawJSON, Reply } from '../protocol/types.js';
import type { ProxyConnection } from '../proxy/backend-proxy.js';
import type { Transport } from '../transport/transport.js';
import type { RpcContext, SessionContext } from './context.js';
import type { SubState, Subscriber } from './subscriber.js';

/** SessionState is where a connection is in its life. */
export type SessionState = 'connecting' | 'connected' | 'closed';

/** Identity is who a connection is, as its token or the connect proxy says. */
export interface Identity {
  user: string;
  /** Connection expiry in ms since epoch; 0 means never. */
  expireAt: number;
  info: RawJSON | undefined;
  meta: RawJSON | undefined;
  /** What the client declared (connect name and version, token features), for publication variants. */
  profile: ClientProfile;
}

/** SessionCore is one session as its command handlers see it. */
export interface SessionCore extends Subscriber {
  readonly id: string;
  readonly user: string;
  /** Connection info (token `info` claim), attached to presence and publications. */
  connInfo: RawJSON | undefined;
  /** Connection expiry in ms since epoch; 0 means never. */
  readonly expireAt: number;
  /** What the client declared, for publication variants (set at connect). */
  readonly profile: ClientProfile;
  readonly ctx: SessionContext;
  readonly state: SessionState;
  /** The subscriptions made, by channel. */
  readonly subs: Map<string, SubState>;
  /** Channels whose subscribe is in flight (a second subscribe is answered 105); made on first use. */
  pending: Set<string> | undefined;
  /** The peer's address, for logs. */
  readonly remoteAddress: string;
  /** The connection's transport, as the connect result describes it (its emulation session). */
  readonly transport: Pick<Transport, 'name' | 'session'>;

  /** info returns this connection's ClientInfo, with a subscription's channel info. */
  info(chanInfo?: RawJSON): ClientInfo;
  /** proxyConnection describes this connection in proxy requests. */
  proxyConnection(): ProxyConnection;
  /** rpcContext describes the caller to RPC and message handlers. */
  rpcContext(): RpcContext;
  /** becomeConnected ends the connect: identity set, indexed in the hub, ping deadline started. */
  becomeConnected(identity: Identity): void;
  /** setExpiry changes the connection's expiry (refresh) and reschedules its deadlines. */
  setExpiry(expireAt: number): void;
  /** reply queues the reply to command `id` (no write delay; never counted as a slow client's backlog). */
  reply(id: number, reply: Reply): void;
  /** replyError queues an error reply to command `id`, like reply. */
  replyError(id: number, err: ProtocolErrorShape): void;
  /** pushNow queues a push the client must see at once (no write delay). */
  pushNow(push: Push): void;
  /** enqueue queues a frame (a push) for the next flush. */
  enqueue(frame: Buffer, urgent?: boolean): void;
  /** disconnect flushes what is queued and closes the connection with `d`. */
  disconnect(d: Disconnect): void;
  /** subsChanged recomputes the subscription expiry deadlines after a change. */
  subsChanged(): void;
}

/** Outcome is a command handler's result: the reply, and work to do once it is queued. */
export type Outcome = { reply: Reply; after?: () => void } | undefined;
