/**
 * ClientSession: the state machine of one connection — connecting → connected → closed —
 * with its subscriptions, its ping/pong and expiry timers, and its bounded write queue.
 *
 * Commands of one connection are handled one at a time, in order (a reply never overtakes
 * an earlier one). Replies and pushes are queued and written in one frame per flush pass
 * (write coalescing: several protocol messages per WebSocket message under load, as the
 * protocol allows). The queue is bounded in bytes: a client that cannot keep up is
 * disconnected as slow (3008) instead of growing the process's memory.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { ChannelRules, type ResolvedChannel } from '../channel-rules.js';
import {
  DisconnectCode,
  DisconnectError,
  ErrorCode,
  ProtocolError,
  UnsubscribeCode,
  disconnect,
  type Disconnect,
} from '../protocol/codes.js';
import { FrameError, decodeFrame } from '../protocol/decode.js';
import {
  encodeConnectResult,
  encodeErrorReply,
  encodeHistoryResult,
  encodePresenceResult,
  encodeRefreshPush,
  encodeReply,
  encodeSubscribePush,
  encodeSubscribeResult,
  encodeUnsubscribePush,
  pingFrame,
} from '../protocol/encode.js';
import {
  asRaw,
  type ClientInfo,
  type Command,
  type ConnectRequest,
  type ConnectResult,
  type HistoryRequest,
  type Publication,
  type RawJSON,
  type SubscribeRequest,
  type SubscribeResult,
} from '../protocol/types.js';
import type { Transport } from '../transport/transport.js';
import type { ConnectTokenClaims, SubscriptionOverride, SubscriptionTokenClaims } from '../auth/token-verifier.js';
import type { TokenBuckets } from '../protection/rate-limit.js';
import { killSwitchError } from '../protection/kill-switch-error.js';
import { EngineUnavailableError } from '../engine/errors.js';
import type { ProxyConnection, SubscribeOutcome } from '../proxy/backend-proxy.js';
import type { ProxyTarget } from '../proxy/proxies.js';
import type { SessionContext } from './context.js';

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
  buffer: Array<[Publication | undefined, Buffer]> | undefined;
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
}

/** SubscribeOptions describes one subscription to make (client, token or API initiated). */
interface SubscribeOptions {
  recover: boolean;
  offset: number;
  epoch: string;
  wantPositioned: boolean;
  wantRecoverable: boolean;
  wantJoinLeave: boolean;
  chanInfo?: RawJSON;
  data?: RawJSON;
  expireAt: number;
  /** Server-side subscriptions ignore the allow_* flags of clients: they were granted. */
  serverSide: boolean;
  /** Per-subscription overrides of namespace options, from a token or the subscribe proxy. */
  override?: SubscriptionOverride | undefined;
  /** Set when the backend, not the client, prolongs this subscription (sub_refresh proxy). */
  subRefreshProxy?: ProxyTarget | undefined;
}

type State = 'connecting' | 'connected' | 'closed';

const newline = Buffer.from('\n');
/** One ping frame for every session: queued frames are never mutated, so sharing is safe. */
const pingBuffer = Buffer.from(pingFrame);
/** Shared placeholders, so an idle connection holds no queue array and no promise of its own. */
const noFrames: Buffer[] = [];
const idle: Promise<void> = Promise.resolve();

/** The commands load shedding refuses at its read level, with their rejection label. */
const shedReasons: Readonly<Partial<Record<string, string>>> = {
  history: 'overload_read',
  presence: 'overload_read',
  presence_stats: 'overload_read',
  rpc: 'overload_rpc',
};
const engineUnavailable = new ProtocolError(
  ErrorCode.Internal,
  'internal server error: engine unavailable',
  true,
).toWire();
const overloadError = new ProtocolError(ErrorCode.TooManyRequests, 'too many requests: server overloaded').toWire();

/** Outcome is a handler's result: the encoded reply, and work to do once it is queued. */
type Outcome = { reply: string; after?: () => void } | undefined;

/** ClientSession is one client connection. */
export class ClientSession {
  /** Client id, unique per connection (the protocol's `client`). */
  readonly id: string = randomUUID();
  user = '';
  /** Connection info from the token (`info` claim), attached to presence and publications. */
  connInfo: RawJSON | undefined;
  /** Connection expiry in ms since epoch; 0 means never. */
  expireAt = 0;
  /** Server-only connection meta (token `meta` claim or connect proxy result), for proxy requests. */
  meta: RawJSON | undefined;

  #state: State = 'connecting';
  readonly #ctx: SessionContext;
  readonly #transport: Transport;
  readonly #subs = new Map<string, SubState>();
  /** Channels whose subscribe is in flight, so a second subscribe is answered 105 (made on first use). */
  #pending: Set<string> | undefined;

  /** Frames waiting for the next flush; a shared empty array while there are none. */
  #queue: Buffer[] = noFrames;
  #queuedBytes = 0;
  #flushPending = 0;

  /** The command chain's tail; the shared resolved promise while idle (no per-connection promise). */
  #chain: Promise<void> = idle;
  #pendingFrames = 0;
  /** Commands queued on the chain and not yet handled (protection.rate_limit.max_pending_commands). */
  #pendingCommands = 0;
  /** Deadlines, all served by the node's TimerWheel (one interval, not timers per connection). */
  wheelSlot: number | undefined;
  #staleAt = 0;
  #nextPingAt = 0;
  #pongDeadline = 0;
  #awaitingPong = false;
  /** Earliest subscription token expiry among subscriptions; 0 when none expires. */
  #nextSubExpiry = 0;
  /** Earliest expiry among subscriptions the sub_refresh proxy prolongs (none in flight); 0 when none. */
  #nextSubRefresh = 0;
  /** The client's upgrade request headers that proxies forward (lower-case names); undefined when none do. */
  readonly #headers: Readonly<Record<string, string>> | undefined;
  /** A refresh proxy call for this connection is in flight. */
  #refreshing = false;
  /** This connection's command rate buckets, made once it has used its free commands (see rate-limit.ts). */
  buckets: TokenBuckets | undefined;
  /** Rate-limited commands this connection sent so far. */
  limitedCommands = 0;
  /** Commands refused by rate limits in a row; reset by any admitted command. */
  #refusedInRow = 0;

  /**
   * @param headers the upgrade request headers proxies forward (http_headers), kept only when
   *   some proxy forwards headers: a connection holds nothing of its request otherwise.
   */
  constructor(ctx: SessionContext, transport: Transport, headers?: Readonly<Record<string, string>>) {
    this.#ctx = ctx;
    this.#transport = transport;
    this.#headers = headers;
    // A connection that never authenticates is closed: it would hold a socket for nothing.
    ctx.hub.addConnecting(this);
    if (ctx.config.client.stale_close_delay > 0) {
      this.#staleAt = Date.now() + ctx.config.client.stale_close_delay;
      ctx.wheel.schedule(this, this.#staleAt);
    }
    ctx.metrics.connectionsOpened.inc();
  }

  #pendingHas(channel: string): boolean {
    return this.#pending !== undefined && this.#pending.has(channel);
  }

  get state(): State {
    return this.#state;
  }

  /** info returns this connection's ClientInfo (for presence, join/leave, publications). */
  info(chanInfo?: RawJSON): ClientInfo {
    const info: ClientInfo = { user: this.user, client: this.id };
    if (this.connInfo !== undefined) info.conn_info = this.connInfo;
    if (chanInfo !== undefined) info.chan_info = chanInfo;
    return info;
  }

  /** channels lists this session's subscribed channels. */
  channels(): IterableIterator<string> {
    return this.#subs.keys();
  }

  // ---------------------------------------------------------------- incoming

  /** handleFrame decodes one incoming frame and queues its commands for in-order handling. */
  handleFrame(text: string): void {
    if (this.#state === 'closed') return;
    let commands;
    try {
      commands = decodeFrame(text).commands;
    } catch (err) {
      if (err instanceof FrameError) {
        this.#ctx.log.info({ client: this.id, user: this.user, err: err.message }, 'bad frame');
        this.disconnect(disconnect(DisconnectCode.BadRequest));
        return;
      }
      throw err;
    }
    // Once connected, commands are admitted as they arrive: a client's rate is how fast it
    // sends, and a command refused now (111, answered at once; replies match by id) never
    // waits behind others to be refused later, after its client gave up on it. Before connect
    // the user is unknown, so the frame's commands are checked as they run.
    const admitted = this.#state === 'connected';
    if (admitted) {
      // Copy only when something is refused: nearly every frame is admitted whole.
      for (let i = 0; i < commands.length; i++) {
        if (this.#admit(commands[i] as (typeof commands)[number])) continue;
        commands = commands.slice(0, i).concat(commands.slice(i + 1).filter((cmd) => this.#admit(cmd)));
        break;
      }
      // A 3013 (too many refusals in a row) may have closed the connection while admitting.
      if (commands.length === 0 || this.#closed()) return;
    }
    const count = commands.length;
    this.#pendingCommands += count;
    // Handlers catch their own errors; anything escaping is a bug, answered with 3004 for
    // this connection only: it must never become an unhandled rejection that ends the process.
    this.#pendingFrames++;
    this.#chain = this.#chain.then(async () => {
      try {
        await this.#handleCommands(commands, admitted);
      } catch (err) {
        this.#ctx.log.error({ err, client: this.id }, 'command handling failed');
        this.disconnect(disconnect(DisconnectCode.ServerError));
      } finally {
        this.#pendingCommands -= count;
        // The last frame done: let go of the chain's promises (an idle connection keeps none).
        if (--this.#pendingFrames === 0) this.#chain = idle;
      }
    });
  }

  /** #closed reads the state afresh (a call may have closed the connection since a check). */
  #closed(): boolean {
    return this.#state === 'closed';
  }

  /**
   * #admit decides on arrival whether a command of a connected client is queued: over
   * protection.rate_limit.max_pending_commands waiting, or over its rate limit, it is refused
   * (error 111; see #rateLimited). Pongs and malformed commands always pass (handled in order).
   */
  #admit(cmd: ReturnType<typeof decodeFrame>['commands'][number]): boolean {
    if (cmd.method === undefined || cmd.method === 'pong' || this.#closed()) return true;
    const max = this.#ctx.config.protection.rate_limit.max_pending_commands;
    if (max > 0 && this.#pendingCommands >= max) {
      this.#refuse(cmd, 'pending_commands', 'pending_commands', { client: this.id, user: this.user });
      return false;
    }
    return !this.#rateLimited(cmd);
  }

  async #handleCommands(commands: ReturnType<typeof decodeFrame>['commands'], admitted: boolean): Promise<void> {
    for (const cmd of commands) {
      if (this.#state === 'closed') return;
      if (cmd.method === undefined) {
        this.#ctx.metrics.command('unknown', 'error');
        if (this.#state === 'connecting') {
          // Before connect, only connect is valid: anything else is a bad request.
          this.disconnect(disconnect(DisconnectCode.BadRequest));
          return;
        }
        if (cmd.id > 0) this.#reply(encodeErrorReply(cmd.id, new ProtocolError(ErrorCode.MethodNotFound).toWire()));
        continue;
      }
      await this.#handleCommand(cmd, admitted);
    }
  }

  /** #handleCommand runs one command; `admitted`: its rate limit was checked on arrival. */
  async #handleCommand(cmd: Command, admitted: boolean): Promise<void> {
    const { metrics, log } = this.#ctx;
    if (cmd.method === 'pong') {
      this.#awaitingPong = false;
      return;
    }
    // Before connect only connect is valid; after it, connect is not (protocol order).
    if ((this.#state === 'connecting') !== (cmd.method === 'connect')) {
      metrics.command(cmd.method, 'error');
      this.disconnect(disconnect(DisconnectCode.BadRequest));
      return;
    }
    if ((!admitted && this.#rateLimited(cmd)) || this.#shed(cmd)) return;
    try {
      const result = await this.#dispatch(cmd);
      metrics.command(cmd.method, 'ok');
      if (result !== undefined && cmd.id > 0) this.#reply(encodeReply(cmd.id, cmd.method, result.reply));
      result?.after?.();
    } catch (err) {
      if (err instanceof ProtocolError) {
        metrics.command(cmd.method, 'error');
        if (cmd.id > 0) this.#reply(encodeErrorReply(cmd.id, err.toWire()));
      } else if (err instanceof DisconnectError) {
        metrics.command(cmd.method, 'disconnect');
        this.disconnect(err.disconnect);
      } else if (err instanceof EngineUnavailableError) {
        // Redis unreachable: a temporary error, so the SDK retries after its backoff. Once per
        // burst in the log — an outage fails every command of every client.
        metrics.command(cmd.method, 'error');
        this.#ctx.burstLog.error(
          'engine.command',
          { method: cmd.method, err: err.message },
          'command failed: engine unavailable',
        );
        if (cmd.id > 0) this.#reply(encodeErrorReply(cmd.id, engineUnavailable));
      } else {
        metrics.command(cmd.method, 'error');
        log.error({ err, client: this.id, user: this.user, method: cmd.method }, 'command failed');
        if (cmd.id > 0) this.#reply(encodeErrorReply(cmd.id, new ProtocolError(ErrorCode.Internal).toWire()));
      }
    }
  }

  /**
   * #rateLimited spends the command's rate tokens. Refused: error 111 (temporary, so SDKs back
   * off and retry), and disconnect 3013 (reconnect allowed) after
   * protection.rate_limit.disconnect_after refusals in a row — a client stuck in a retry loop
   * costs a reconnect with backoff instead of an endless stream of refused commands.
   */
  #rateLimited(cmd: Command): boolean {
    const ctx = this.#ctx;
    const verdict = ctx.rateLimiter.check(
      cmd.method,
      this.user,
      this,
      ctx.hub.userConnectionCount(this.user),
      performance.now(),
    );
    if (verdict === undefined) {
      this.#refusedInRow = 0;
      return false;
    }
    this.#refuse(cmd, `rate_limit_${verdict.scope}_${verdict.cls}`, `rate_limit_${verdict.scope}`, {
      client: this.id,
      user: this.user,
      method: cmd.method,
      class: verdict.cls,
    });
    return true;
  }

  /**
   * #refuse answers a command refused by a limit with error 111 (temporary, so SDKs back off
   * and retry), counted under `reason` and logged once per burst of `logKind`; after
   * protection.rate_limit.disconnect_after refusals in a row the connection is closed with 3013
   * (reconnect allowed): a client stuck in a retry loop costs a reconnect with backoff instead
   * of an endless stream of refused commands.
   */
  #refuse(cmd: Command, reason: string, logKind: string, fields: Record<string, unknown>): void {
    const ctx = this.#ctx;
    ctx.metrics.command(cmd.method ?? 'unknown', 'error');
    ctx.metrics.reject(reason);
    ctx.burstLog.warn(logKind, { ...fields, method: cmd.method }, `command refused: ${reason}`);
    const limit = ctx.config.protection.rate_limit.disconnect_after;
    if (limit > 0 && ++this.#refusedInRow >= limit) {
      this.disconnect(disconnect(DisconnectCode.TooManyRequests));
      return;
    }
    if (cmd.id > 0) this.#reply(encodeErrorReply(cmd.id, new ProtocolError(ErrorCode.TooManyRequests).toWire()));
  }

  /**
   * #shed refuses a read or rpc command while load shedding is at its read level (see
   * protection/load-shedder.ts): error 111, temporary, so the SDK backs off. Cheaper than
   * serving it by far — no engine call, no encoding of a result.
   */
  #shed(cmd: Command): boolean {
    const reason = shedReasons[cmd.method];
    if (reason === undefined) return false;
    const ctx = this.#ctx;
    if (!ctx.shedder.read) return false;
    ctx.metrics.command(cmd.method, 'error');
    ctx.metrics.reject(reason);
    if (cmd.id > 0) this.#reply(encodeErrorReply(cmd.id, overloadError));
    return true;
  }

  /** A handler's outcome: the encoded result, and work to do once the reply is queued. */
  // Not async itself: each command already goes through its handler's promise, and one more
  // layer per command is a promise and a microtask on every connect and publish.
  #dispatch(cmd: Command): Outcome | Promise<Outcome> {
    switch (cmd.method) {
      case 'connect':
        return this.#connect(cmd.req);
      case 'subscribe':
        return this.#subscribeCmd(cmd.req);
      case 'unsubscribe':
        return this.unsubscribe(cmd.req.channel).then(() => ({ reply: '{}' }));
      case 'publish':
        return this.#publishCmd(cmd.req.channel, cmd.req.data);
      case 'presence':
        return this.#presenceCmd(cmd.req.channel, false);
      case 'presence_stats':
        return this.#presenceCmd(cmd.req.channel, true);
      case 'history':
        return this.#historyCmd(cmd.req);
      case 'ping':
        return { reply: '{}' };
      case 'send':
        return Promise.resolve(this.#ctx.messageHandler?.(cmd.req.data, this.#rpcContext())).then(() => undefined);
      case 'rpc':
        return this.#rpcCmd(cmd.req.method ?? '', cmd.req.data);
      case 'refresh':
        return this.#refreshCmd(cmd.req.token);
      case 'sub_refresh':
        return this.#subRefreshCmd(cmd.req.channel, cmd.req.token);
      case 'pong':
        return undefined;
    }
  }

  #rpcContext() {
    return { client: this.id, user: this.user, info: this.connInfo };
  }

  /** #proxyConnection describes this connection in proxy requests. */
  #proxyConnection(): ProxyConnection {
    return {
      client: this.id,
      transport: this.#transport.name,
      user: this.user,
      meta: this.meta,
      headers: this.#headers,
    };
  }

  // ---------------------------------------------------------------- connect & refresh

  async #connect(req: ConnectRequest): Promise<{ reply: string; after: () => void }> {
    const ctx = this.#ctx;
    const cfg = ctx.config.client;
    let user = '';
    let expireAt = 0;
    let info: RawJSON | undefined;
    let serverChannels: string[] = [];
    let subsClaim: ConnectTokenClaims['subs'];
    let data: RawJSON | undefined;
    let meta: RawJSON | undefined;
    if (req.token && !cfg.insecure) {
      const claims = await ctx.verifyConnectToken(req.token);
      user = claims.user;
      expireAt = claims.expireAt * 1000;
      info = claims.info;
      serverChannels = claims.channels;
      subsClaim = claims.subs;
      meta = claims.meta;
    } else if (ctx.proxies.connect !== undefined) {
      // No token: the backend says who this is (connect proxy), or refuses with its error/disconnect.
      const out = await ctx.backend.connect(ctx.proxies.connect, this.#proxyConnection(), {
        name: req.name,
        version: req.version,
        data: req.data,
        channels: req.subs === undefined ? undefined : Object.keys(req.subs),
      });
      user = out.user;
      expireAt = out.expireAt;
      info = out.info;
      serverChannels = out.channels;
      subsClaim = out.subs;
      data = out.data;
      meta = out.meta === undefined ? undefined : asRaw(out.meta);
    } else if (!cfg.insecure && !cfg.allow_anonymous_connect_without_token) {
      throw new ProtocolError(ErrorCode.Unauthorized);
    }
    if (this.#state !== 'connecting') throw new ProtocolError(ErrorCode.BadRequest);
    if (
      cfg.user_connection_limit > 0 &&
      user !== '' &&
      ctx.hub.userConnectionCount(user) >= cfg.user_connection_limit
    ) {
      ctx.metrics.reject('user_connection_limit');
      throw new DisconnectError(disconnect(DisconnectCode.ConnectionLimit));
    }
    this.user = user;
    this.expireAt = expireAt;
    this.connInfo = info;
    this.meta = meta;
    this.#state = 'connected';
    ctx.hub.addSession(this);
    ctx.metrics.connections.inc();
    if (cfg.ping_interval > 0) this.#nextPingAt = Date.now() + cfg.ping_interval;
    this.#reschedule();

    // Server-side subscriptions granted by the token; the client may ask to recover them.
    const subs: Record<string, SubscribeResult> = {};
    const activations: Array<() => void> = [];
    const wanted = new Set([...serverChannels, ...Object.keys(subsClaim ?? {})]);
    for (const channel of wanted) {
      let rc: ResolvedChannel;
      try {
        rc = ctx.rules.resolve(channel);
      } catch {
        ctx.log.warn({ client: this.id, user, channel }, 'token or connect proxy grants an invalid channel; skipped');
        continue;
      }
      const asked = req.subs?.[channel];
      const made = await this.#subscribe(rc, {
        recover: asked?.recover === true,
        offset: asked?.offset ?? 0,
        epoch: asked?.epoch ?? '',
        wantPositioned: false,
        wantRecoverable: false,
        wantJoinLeave: false,
        chanInfo: subsClaim?.[channel]?.info,
        data: subsClaim?.[channel]?.data,
        expireAt: 0,
        serverSide: true,
        override: subsClaim?.[channel]?.override,
      });
      subs[channel] = made.result;
      activations.push(made.activate);
    }

    const result: ConnectResult = {
      client: this.id,
      version: ctx.version,
      // The protocol advertises whole seconds; a sub-second interval must not read as 0 (off).
      ping: cfg.ping_interval > 0 ? Math.max(1, Math.round(cfg.ping_interval / 1000)) : 0,
      pong: cfg.ping_interval > 0,
      node: ctx.nodeId,
      subs,
    };
    // With the refresh proxy the backend prolongs the connection: the client is not told to.
    if (expireAt > 0 && ctx.proxies.refresh === undefined) {
      result.expires = true;
      result.ttl = Math.max(0, Math.ceil((expireAt - Date.now()) / 1000));
    }
    if (data !== undefined) result.data = data;
    if (cfg.connect_include_server_time) result.time = Date.now();
    ctx.log.debug({ client: this.id, user, remote: this.#transport.remoteAddress }, 'client connected');
    return { reply: encodeConnectResult(result), after: () => activations.forEach((a) => a()) };
  }

  async #refreshCmd(token: string): Promise<{ reply: string }> {
    if (this.#ctx.config.client.insecure) throw new ProtocolError(ErrorCode.NotAvailable);
    // A refresh token for another user would switch identities mid-connection: 3500.
    // An expired one means the client cannot stay: Centrifugo closes with 3005 here.
    const claims = await this.#ctx.verifyConnectToken(token, this.user).catch((err: unknown) => {
      if (err instanceof ProtocolError && err.code === ErrorCode.TokenExpired) {
        throw new DisconnectError(disconnect(DisconnectCode.Expired));
      }
      throw err;
    });
    this.expireAt = claims.expireAt * 1000;
    if (claims.info !== undefined) this.connInfo = claims.info;
    this.#reschedule();
    const ttl = this.expireAt > 0 ? Math.max(0, Math.ceil((this.expireAt - Date.now()) / 1000)) : 0;
    const parts = [`"client":${JSON.stringify(this.id)}`, `"version":${JSON.stringify(this.#ctx.version)}`];
    if (this.expireAt > 0) parts.push(`"expires":true`, `"ttl":${ttl}`);
    return { reply: `{${parts.join(',')}}` };
  }

  /**
   * #proxyRefresh asks the backend to prolong this expired connection (refresh proxy): expired →
   * disconnect 3005; a new expire_at prolongs it (0: never expires). When the call fails (backend
   * down, timeout, bad answer), the connection is kept and asked about again after
   * proxy.refresh_retry_interval, so a backend outage does not disconnect everyone.
   */
  #proxyRefresh(target: ProxyTarget): void {
    const ctx = this.#ctx;
    this.#refreshing = true;
    ctx.backend
      .refresh(target, this.#proxyConnection())
      .then(
        (out) => {
          if (this.#state !== 'connected') return;
          if (out.expired || (out.expireAt > 0 && out.expireAt <= Date.now())) {
            this.disconnect(disconnect(DisconnectCode.Expired));
            return;
          }
          this.expireAt = out.expireAt;
          if (out.info !== undefined) this.connInfo = out.info;
        },
        () => {
          // Already logged and counted by the proxy client: try again later.
          this.expireAt = Date.now() + ctx.config.proxy.refresh_retry_interval;
        },
      )
      .finally(() => {
        this.#refreshing = false;
        this.#reschedule();
      });
  }

  /**
   * applyRefresh changes the connection's expiry and info from the server side (API
   * `refresh`). `expireAt` in ms since epoch; 0 clears expiry. An expired connection is
   * disconnected at once.
   */
  applyRefresh(expireAt: number, info?: RawJSON, expired = false): void {
    if (this.#state !== 'connected') return;
    if (expired || (expireAt > 0 && expireAt <= Date.now())) {
      this.disconnect(disconnect(DisconnectCode.Expired));
      return;
    }
    this.expireAt = expireAt;
    if (info !== undefined) this.connInfo = info;
    this.#reschedule();
    const ttl = expireAt > 0 ? Math.max(0, Math.ceil((expireAt - Date.now()) / 1000)) : 0;
    this.#reply(encodeRefreshPush(expireAt > 0, ttl));
  }

  // ---------------------------------------------------------------- subscriptions

  async #subscribeCmd(req: SubscribeRequest): Promise<{ reply: string; after: () => void }> {
    const ctx = this.#ctx;
    const rc = ctx.rules.resolve(req.channel);
    if (this.#subs.has(rc.channel) || this.#pendingHas(rc.channel)) {
      throw new ProtocolError(ErrorCode.AlreadySubscribed);
    }
    const limit = ctx.config.client.channel_limit;
    if (limit > 0 && this.#subs.size + (this.#pending?.size ?? 0) >= limit) {
      ctx.metrics.reject('channel_limit');
      throw new ProtocolError(ErrorCode.LimitExceeded, 'channel limit exceeded');
    }
    let claims: SubscriptionTokenClaims | undefined;
    let proxied: SubscribeOutcome | undefined;
    let subRefreshProxy: ProxyTarget | undefined;
    if (req.token && !ctx.config.client.insecure) {
      claims = await ctx.verifySubscriptionToken(req.token, rc.channel, this.user, this.id, 'subscribe');
    } else {
      // As in Centrifugo, the subscribe proxy decides for channels without their own access
      // control: private channels still need a token, user-limited ones list their users.
      const target = ctx.proxies.channel('subscribe', rc.options);
      if (target !== undefined && !rc.isPrivate && ctx.rules.allowedUsers(rc) === undefined) {
        proxied = await ctx.backend.subscribe(target, this.#proxyConnection(), rc.channel, req.data);
        subRefreshProxy = ctx.proxies.channel('sub_refresh', rc.options);
      } else {
        this.#checkSubscribePermission(rc);
      }
    }
    const made = await this.#subscribe(rc, {
      recover: req.recover === true,
      offset: req.offset ?? 0,
      epoch: req.epoch ?? '',
      wantPositioned: req.positioned === true,
      wantRecoverable: req.recoverable === true,
      wantJoinLeave: req.join_leave === true,
      chanInfo: claims?.info ?? proxied?.info,
      data: claims?.data ?? proxied?.data,
      expireAt: claims !== undefined ? claims.expireAt * 1000 : (proxied?.expireAt ?? 0),
      serverSide: false,
      override: claims?.override ?? proxied?.override,
      subRefreshProxy,
    });
    return { reply: encodeSubscribeResult(made.result), after: made.activate };
  }

  #checkSubscribePermission(rc: ResolvedChannel): void {
    // Insecure mode (local demos only) lifts every channel permission check, as in Centrifugo.
    if (this.#ctx.config.client.insecure) return;
    if (rc.isPrivate) throw new ProtocolError(ErrorCode.PermissionDenied);
    const users = this.#ctx.rules.allowedUsers(rc);
    if (users !== undefined) {
      if (this.user !== '' && users.includes(this.user)) return;
      throw new ProtocolError(ErrorCode.PermissionDenied);
    }
    const o = rc.options;
    const allowed = this.user === '' ? o.allow_subscribe_for_anonymous : o.allow_subscribe_for_client;
    if (!allowed) throw new ProtocolError(ErrorCode.PermissionDenied);
  }

  /**
   * subscribe makes one subscription. The session is indexed in the hub *before* the stream
   * position is read, and publications arriving meanwhile are buffered: together with the
   * history read this leaves no gap and, after filtering by offset, no duplicate. The caller
   * queues the reply and then calls `activate`, which releases the buffer.
   */
  async #subscribe(
    rc: ResolvedChannel,
    o: SubscribeOptions,
  ): Promise<{ result: SubscribeResult; activate: () => void }> {
    const ctx = this.#ctx;
    const ns = rc.options;
    const ov = o.override ?? {};
    const hasHistory = ChannelRules.hasHistory(ns);
    const forceRecovery = ov.forceRecovery ?? ns.force_recovery;
    const forcePositioning = ov.forcePositioning ?? ns.force_positioning;
    const joinLeave = ov.joinLeave ?? ns.join_leave;
    const forcePushJoinLeave = ov.forcePushJoinLeave ?? ns.force_push_join_leave;
    const presence = ov.presence ?? ns.presence;
    const recoverable = hasHistory && (forceRecovery || (ns.allow_recovery && (o.wantRecoverable || o.serverSide)));
    const positioned = recoverable || (hasHistory && (forcePositioning || (ns.allow_positioning && o.wantPositioned)));
    const joinLeaveEnabled = joinLeave || forcePushJoinLeave;
    const state: SubState = {
      channel: rc.channel,
      joinLeave: forcePushJoinLeave || (joinLeave && (o.wantJoinLeave || o.serverSide)),
      positioned,
      recoverable,
      presence,
      joinLeaveEnabled,
      buffer: [],
      offset: 0,
      epoch: '',
      expireAt: o.expireAt,
      chanInfo: o.chanInfo,
      subRefreshProxy: o.subRefreshProxy,
      refreshing: false,
    };
    (this.#pending ??= new Set()).add(rc.channel);
    ctx.hub.addSub(rc.channel, this, state);
    const result: SubscribeResult = {};
    try {
      await ctx.nodeSubscribe(rc.channel);
      if (positioned) {
        const metaTtlMs = ctx.rules.historyMetaTtlMs(ns);
        if (recoverable && o.recover) {
          await this.#recover(rc.channel, o, metaTtlMs, result);
        } else {
          const top = await ctx.broker.history(rc.channel, { limit: 0, metaTtlMs });
          result.offset = top.offset;
          result.epoch = top.epoch;
        }
        result.positioned = true;
        if (recoverable) result.recoverable = true;
        state.epoch = result.epoch ?? '';
        const pubs = result.publications;
        state.offset = pubs && pubs.length > 0 ? (pubs[pubs.length - 1] as Publication).offset : (result.offset ?? 0);
      }
      if (presence) await ctx.presence.addPresence(rc.channel, this.info(o.chanInfo), ctx.presenceTtlMs);
      if (joinLeaveEnabled) await ctx.broker.publishJoin(rc.channel, this.info(o.chanInfo));
    } catch (err) {
      this.#pending?.delete(rc.channel);
      if (ctx.hub.removeSub(rc.channel, this)) await ctx.nodeUnsubscribe(rc.channel).catch(() => undefined);
      throw err;
    }
    this.#pending?.delete(rc.channel);
    if (this.#state === 'closed') {
      // Closed while subscribing: cleanup already ran for registered subs; undo this one.
      if (ctx.hub.removeSub(rc.channel, this)) await ctx.nodeUnsubscribe(rc.channel).catch(() => undefined);
      throw new ProtocolError(ErrorCode.Internal);
    }
    this.#subs.set(rc.channel, state);
    ctx.metrics.subscriptions.inc();
    if (state.expireAt > 0) {
      // With the sub_refresh proxy the backend prolongs the subscription: the client is not told to.
      if (state.subRefreshProxy === undefined) {
        result.expires = true;
        result.ttl = Math.max(0, Math.ceil((state.expireAt - Date.now()) / 1000));
      }
      this.#updateSubExpiry();
    }
    if (o.data !== undefined) result.data = o.data;
    const activate = () => {
      const buffered = state.buffer ?? [];
      state.buffer = undefined;
      for (const [pub, frame] of buffered) {
        if (pub) this.deliverPublication(state, pub, frame);
        else this.enqueue(frame);
      }
    };
    return { result, activate };
  }

  async #recover(channel: string, o: SubscribeOptions, metaTtlMs: number, result: SubscribeResult): Promise<void> {
    const ctx = this.#ctx;
    const max = ctx.config.client.recovery_max_publication_limit;
    result.was_recovering = true;
    try {
      const h = await ctx.broker.history(channel, {
        since: { offset: o.offset, epoch: o.epoch },
        // One more than allowed tells "too many to recover" apart from "exactly the limit".
        limit: max > 0 ? max + 1 : -1,
        metaTtlMs,
      });
      const pubs = h.publications;
      const first = pubs[0];
      const recovered =
        (max === 0 || pubs.length <= max) &&
        (o.epoch === '' || o.epoch === h.epoch) &&
        (first ? first.offset === o.offset + 1 : h.offset === o.offset);
      result.epoch = h.epoch;
      result.recovered = recovered;
      if (recovered && first) {
        // The position recovered from; each recovered publication moves the client past it.
        result.offset = o.offset;
        result.publications = pubs;
      } else {
        result.offset = h.offset;
      }
    } catch (err) {
      if (!(err instanceof ProtocolError && err.code === ErrorCode.UnrecoverablePosition)) throw err;
      const top = await ctx.broker.history(channel, { limit: 0, metaTtlMs });
      result.offset = top.offset;
      result.epoch = top.epoch;
      result.recovered = false;
    }
    ctx.metrics.recoveries.inc({ result: result.recovered ? 'recovered' : 'not_recovered' });
  }

  /**
   * serverSubscribe subscribes this session from the server side (API `subscribe`) and
   * tells the client with a subscribe push. Already subscribed is a no-op.
   */
  async serverSubscribe(
    channel: string,
    opts: { info?: RawJSON; data?: RawJSON; since?: { offset: number; epoch: string }; expireAt?: number },
  ): Promise<void> {
    if (this.#state !== 'connected' || this.#subs.has(channel) || this.#pendingHas(channel)) return;
    const rc = this.#ctx.rules.resolve(channel);
    const made = await this.#subscribe(rc, {
      recover: opts.since !== undefined,
      offset: opts.since?.offset ?? 0,
      epoch: opts.since?.epoch ?? '',
      wantPositioned: false,
      wantRecoverable: false,
      wantJoinLeave: false,
      chanInfo: opts.info,
      data: opts.data,
      expireAt: opts.expireAt ?? 0,
      serverSide: true,
    });
    this.#reply(encodeSubscribePush(channel, made.result));
    made.activate();
  }

  /**
   * unsubscribe removes a subscription. With `push`, the client is told (server-side
   * unsubscribe); a client's own unsubscribe needs no push.
   */
  async unsubscribe(channel: string, push?: { code: number; reason: string }): Promise<void> {
    const state = this.#subs.get(channel);
    if (!state) return;
    this.#subs.delete(channel);
    if (push) this.#reply(encodeUnsubscribePush(channel, push.code, push.reason));
    await this.#removeSub(state);
  }

  async #removeSub(state: SubState): Promise<void> {
    const ctx = this.#ctx;
    ctx.metrics.subscriptions.dec();
    if (ctx.hub.removeSub(state.channel, this)) await ctx.nodeUnsubscribe(state.channel);
    if (state.presence) await ctx.presence.removePresence(state.channel, this.id, this.user);
    if (state.joinLeaveEnabled) await ctx.broker.publishLeave(state.channel, this.info(state.chanInfo));
  }

  async #subRefreshCmd(channel: string, token: string): Promise<{ reply: string }> {
    const state = this.#subs.get(channel);
    if (!state) throw new ProtocolError(ErrorCode.PermissionDenied, 'not subscribed');
    const claims = await this.#ctx.verifySubscriptionToken(token, channel, this.user, this.id, 'sub_refresh');
    state.expireAt = claims.expireAt * 1000;
    this.#updateSubExpiry();
    if (state.expireAt === 0) return { reply: '{}' };
    const ttl = Math.max(0, Math.ceil((state.expireAt - Date.now()) / 1000));
    return { reply: `{"expires":true,"ttl":${ttl}}` };
  }

  /**
   * #proxySubRefresh asks the backend to prolong an expired subscription (sub_refresh proxy):
   * expired → unsubscribe with 2501 (the SDK resubscribes, asking the subscribe proxy again); a
   * new expire_at prolongs it (0: never expires). A failed call keeps the subscription and asks
   * again after proxy.refresh_retry_interval.
   */
  #proxySubRefresh(sub: SubState, target: ProxyTarget): void {
    const ctx = this.#ctx;
    sub.refreshing = true;
    ctx.backend
      .subRefresh(target, this.#proxyConnection(), sub.channel)
      .then(
        (out) => {
          if (this.#subs.get(sub.channel) !== sub) return; // unsubscribed meanwhile
          if (out.expired || (out.expireAt > 0 && out.expireAt <= Date.now())) {
            void this.unsubscribe(sub.channel, { code: UnsubscribeCode.Expired, reason: 'subscription expired' });
            return;
          }
          sub.expireAt = out.expireAt;
          if (out.info !== undefined) sub.chanInfo = out.info;
        },
        () => {
          // Already logged and counted by the proxy client: try again later.
          sub.expireAt = Date.now() + ctx.config.proxy.refresh_retry_interval;
        },
      )
      .finally(() => {
        sub.refreshing = false;
        if (this.#state === 'connected') this.#updateSubExpiry();
      });
  }

  // ---------------------------------------------------------------- publish, presence, history, rpc

  async #publishCmd(channel: string, data: unknown): Promise<{ reply: string }> {
    const ctx = this.#ctx;
    const rc = ctx.rules.resolve(channel);
    const o = rc.options;
    // With the publish proxy the backend decides instead of the allow_publish_* options.
    const target = ctx.proxies.channel('publish', o);
    if (target === undefined) {
      const subscribed = this.#subs.has(channel);
      const allowed =
        this.#ctx.config.client.insecure ||
        (this.user === '' ? o.allow_publish_for_anonymous : o.allow_publish_for_client) ||
        (o.allow_publish_for_subscriber && subscribed);
      if (!allowed) throw new ProtocolError(ErrorCode.PermissionDenied);
    }
    // Kill switch before the backend call: a switched-off namespace costs the backend nothing.
    this.#checkKillSwitch('publish', rc.namespace);
    const info = this.info(this.#subs.get(channel)?.chanInfo);
    if (target === undefined) {
      await ctx.publishFromClient(rc, asRaw(data), info);
      return { reply: '{}' };
    }
    const out = await ctx.backend.publish(target, this.#proxyConnection(), channel, data);
    await ctx.publishFromClient(rc, out.data ?? asRaw(data), info, { skipHistory: out.skipHistory, tags: out.tags });
    return { reply: '{}' };
  }

  #checkReadPermission(rc: ResolvedChannel, kind: 'presence' | 'history'): void {
    const o = rc.options;
    const forAnon = kind === 'presence' ? o.allow_presence_for_anonymous : o.allow_history_for_anonymous;
    const forClient = kind === 'presence' ? o.allow_presence_for_client : o.allow_history_for_client;
    const forSub = kind === 'presence' ? o.allow_presence_for_subscriber : o.allow_history_for_subscriber;
    const allowed =
      this.#ctx.config.client.insecure ||
      (this.user === '' ? forAnon : forClient) ||
      (forSub && this.#subs.has(rc.channel));
    if (!allowed) throw new ProtocolError(ErrorCode.PermissionDenied);
    this.#checkKillSwitch('read', rc.namespace);
  }

  /** #checkKillSwitch throws the kill switch's error (108, with its reason) when one refuses `kind` for `target`. */
  #checkKillSwitch(kind: 'publish' | 'read' | 'rpc', target: string): void {
    const ctx = this.#ctx;
    const off = ctx.killSwitches.find(kind, target);
    if (off === undefined) return;
    ctx.metrics.reject(`kill_switch_${kind}`);
    ctx.burstLog.warn(
      `kill_switch.${kind}`,
      { kind, target: off.target, reason: off.reason },
      'refused by a kill switch',
    );
    throw killSwitchError(off);
  }

  async #presenceCmd(channel: string, statsOnly: boolean): Promise<{ reply: string }> {
    const ctx = this.#ctx;
    const rc = ctx.rules.resolve(channel);
    if (!rc.options.presence) throw new ProtocolError(ErrorCode.NotAvailable);
    this.#checkReadPermission(rc, 'presence');
    if (statsOnly) {
      const s = await ctx.presence.presenceStats(channel);
      return { reply: `{"num_clients":${s.numClients},"num_users":${s.numUsers}}` };
    }
    return { reply: encodePresenceResult(await ctx.presence.presence(channel)) };
  }

  async #historyCmd(req: HistoryRequest): Promise<{ reply: string }> {
    const ctx = this.#ctx;
    const rc = ctx.rules.resolve(req.channel);
    if (!ChannelRules.hasHistory(rc.options)) throw new ProtocolError(ErrorCode.NotAvailable);
    this.#checkReadPermission(rc, 'history');
    const max = ctx.config.client.history_max_publication_limit;
    const asked = req.limit ?? 0;
    const limit = asked < 0 || asked > max ? max : asked;
    const h = await ctx.broker.history(req.channel, {
      since: req.since,
      limit,
      reverse: req.reverse === true,
      metaTtlMs: ctx.rules.historyMetaTtlMs(rc.options),
    });
    return { reply: encodeHistoryResult(h.publications, h.offset, h.epoch) };
  }

  async #rpcCmd(method: string, data: unknown): Promise<{ reply: string }> {
    const ctx = this.#ctx;
    // Handlers registered in-process (node.rpc) win over the RPC proxy of the method's namespace.
    const handler = ctx.rpcHandlers.get(method);
    const target = handler === undefined ? ctx.proxies.rpc(method) : undefined;
    if (!handler && !target) throw new ProtocolError(ErrorCode.MethodNotFound);
    this.#checkKillSwitch('rpc', method);
    if (handler) {
      const out = await handler(data, this.#rpcContext());
      return { reply: out === undefined ? '{}' : `{"data":${asRaw(out)}}` };
    }
    const out = await ctx.rpcCache.call(method, this.user, data, () =>
      ctx.backend.rpc(target as ProxyTarget, this.#proxyConnection(), method, data),
    );
    return { reply: out === undefined ? '{}' : `{"data":${out}}` };
  }

  // ---------------------------------------------------------------- outgoing

  /** deliverPublication hands a publication (and its shared frame) to this subscriber. */
  deliverPublication(state: SubState, pub: Publication, frame: Buffer, epoch = ''): void {
    if (state.buffer) {
      state.buffer.push([pub, frame]);
      return;
    }
    if (state.positioned && pub.offset > 0) {
      // Another epoch: the stream was lost and began anew (Redis restarted without its data).
      // Offsets restarted at 1, so comparing them would drop these publications as old.
      if (epoch !== '' && epoch !== state.epoch) {
        this.checkPosition(state, pub.offset, epoch);
        return;
      }
      if (pub.offset <= state.offset) return; // already delivered (e.g. in the subscribe reply)
      if (pub.offset !== state.offset + 1) {
        // A gap: this subscriber lost its place.
        this.checkPosition(state, pub.offset - 1, state.epoch);
        return;
      }
      state.offset = pub.offset;
    }
    this.enqueue(frame);
  }

  /**
   * checkPosition compares a positioned subscription with the stream's position (top offset
   * and epoch). Behind it, or in another epoch, the subscriber missed publications (a gap in
   * delivery, or the engine was unreachable for a while): it is unsubscribed with 2500
   * (insufficient state), and its SDK resubscribes at once, recovering from history.
   * Returns true when the subscriber lost its place.
   */
  checkPosition(state: SubState, offset: number, epoch: string): boolean {
    if (!state.positioned || state.buffer !== undefined) return false;
    if (state.epoch === epoch && state.offset >= offset) return false;
    this.#ctx.log.info({ client: this.id, channel: state.channel }, 'insufficient state');
    void this.unsubscribe(state.channel, { code: UnsubscribeCode.InsufficientState, reason: 'insufficient state' });
    return true;
  }

  /** deliverEvent hands a join/leave frame to this subscriber (after its subscribe reply). */
  deliverEvent(state: SubState, frame: Buffer): void {
    if (state.buffer) state.buffer.push([undefined, frame]);
    else this.enqueue(frame);
  }

  /** sendMessage pushes an asynchronous message (API or library `send`). */
  sendMessage(frame: Buffer): void {
    if (this.#state === 'connected') this.enqueue(frame);
  }

  /** #reply queues a reply (or a push the client must see at once): flushed without write delay. */
  #reply(text: string): void {
    this.enqueue(Buffer.from(text), true);
  }

  /**
   * enqueue adds a frame to the write queue. Over client.queue_max_size bytes (queued here
   * plus not yet written by the socket) the client is disconnected as slow.
   */
  enqueue(frame: Buffer, urgent = false): void {
    if (this.#state === 'closed') return;
    if (this.#queue === noFrames) this.#queue = [];
    this.#queue.push(frame);
    this.#queuedBytes += frame.length;
    if (this.#queuedBytes + this.#transport.bufferedAmount > this.#ctx.config.client.queue_max_size) {
      this.#ctx.metrics.slowDisconnects.inc();
      this.#queue = noFrames;
      this.#queuedBytes = 0;
      this.disconnect(disconnect(DisconnectCode.Slow));
      return;
    }
    // 0: no flush pending, 1: a delayed one (client.write_delay), 2: an immediate one.
    const want = urgent ? 2 : 1;
    if (this.#flushPending < want) {
      this.#flushPending = want;
      this.#ctx.scheduleFlush(this, urgent);
    }
  }

  /** flush writes everything queued as one frame (newline-separated messages). */
  flush(): void {
    this.#flushPending = 0;
    const q = this.#queue;
    if (q.length === 0 || this.#state === 'closed') return;
    this.#queue = noFrames;
    this.#queuedBytes = 0;
    let frame: Buffer;
    if (q.length === 1) {
      frame = q[0] as Buffer;
    } else {
      const parts: Buffer[] = new Array(q.length * 2 - 1);
      for (let i = 0; i < q.length; i++) {
        if (i > 0) parts[i * 2 - 1] = newline;
        parts[i * 2] = q[i] as Buffer;
      }
      frame = Buffer.concat(parts);
    }
    try {
      this.#transport.send(frame);
    } catch (err) {
      // One connection's write failure must not stop the flush pass of every other one.
      this.#ctx.log.warn({ err, client: this.id }, 'write failed');
      this.disconnect(disconnect(DisconnectCode.WriteError));
    }
  }

  // ---------------------------------------------------------------- timers

  /**
   * onTimer handles every deadline of this connection: stale (no connect in time), ping and
   * pong (a ping every ping_interval; no pong within pong_timeout → 3012), token expiry (3005
   * after expired_close_delay without refresh) and subscription expiry (resubscribe code).
   */
  onTimer(now: number): void {
    const cfg = this.#ctx.config.client;
    if (this.#state === 'closed') return;
    if (this.#state === 'connecting') {
      if (this.#staleAt > 0 && now >= this.#staleAt) this.disconnect(disconnect(DisconnectCode.Stale));
      else this.#reschedule();
      return;
    }
    if (this.#awaitingPong && now >= this.#pongDeadline) {
      this.disconnect(disconnect(DisconnectCode.NoPong));
      return;
    }
    const refreshProxy = this.#ctx.proxies.refresh;
    if (refreshProxy !== undefined) {
      // The backend prolongs connections (refresh proxy): ask it when the connection expires.
      if (this.expireAt > 0 && now >= this.expireAt && !this.#refreshing) this.#proxyRefresh(refreshProxy);
    } else if (this.expireAt > 0 && now >= this.expireAt + cfg.expired_close_delay) {
      this.disconnect(disconnect(DisconnectCode.Expired));
      return;
    }
    if (this.#nextPingAt > 0 && now >= this.#nextPingAt) {
      this.#awaitingPong = true;
      this.#pongDeadline = now + cfg.pong_timeout;
      // Anchored to the due time, not to `now`: the wheel fires up to one step late, and
      // that lateness must not accumulate into longer ping periods than advertised.
      this.#nextPingAt = Math.max(this.#nextPingAt + cfg.ping_interval, now + 1);
      this.enqueue(pingBuffer);
    }
    if (this.#nextSubExpiry > 0 && now >= this.#nextSubExpiry + cfg.expired_close_delay) {
      for (const sub of [...this.#subs.values()]) {
        if (sub.expireAt > 0 && sub.expireAt <= now && sub.subRefreshProxy === undefined) {
          void this.unsubscribe(sub.channel, { code: UnsubscribeCode.Expired, reason: 'subscription expired' });
        }
      }
      this.#updateSubExpiry();
    }
    if (this.#nextSubRefresh > 0 && now >= this.#nextSubRefresh) {
      for (const sub of this.#subs.values()) {
        const target = sub.subRefreshProxy;
        if (target !== undefined && !sub.refreshing && sub.expireAt > 0 && sub.expireAt <= now) {
          this.#proxySubRefresh(sub, target);
        }
      }
      this.#updateSubExpiry();
    }
    this.#reschedule();
  }

  /** #reschedule puts the earliest pending deadline on the wheel. */
  #reschedule(): void {
    if (this.#state === 'closed') return;
    const grace = this.#ctx.config.client.expired_close_delay;
    let next = Infinity;
    if (this.#state === 'connecting') {
      if (this.#staleAt > 0) next = this.#staleAt;
    } else {
      if (this.#nextPingAt > 0) next = this.#nextPingAt;
      if (this.#awaitingPong) next = Math.min(next, this.#pongDeadline);
      if (this.expireAt > 0) {
        // With the refresh proxy: due at expiry (no grace), and not while a call is in flight.
        if (this.#ctx.proxies.refresh === undefined) next = Math.min(next, this.expireAt + grace);
        else if (!this.#refreshing) next = Math.min(next, this.expireAt);
      }
      if (this.#nextSubExpiry > 0) next = Math.min(next, this.#nextSubExpiry + grace);
      if (this.#nextSubRefresh > 0) next = Math.min(next, this.#nextSubRefresh);
    }
    if (next === Infinity) this.#ctx.wheel.cancel(this);
    else this.#ctx.wheel.schedule(this, next);
  }

  /** #updateSubExpiry recomputes the earliest subscription expiry and reschedules. */
  #updateSubExpiry(): void {
    let next = 0;
    let refresh = 0;
    for (const sub of this.#subs.values()) {
      if (sub.expireAt === 0) continue;
      if (sub.subRefreshProxy === undefined) {
        if (next === 0 || sub.expireAt < next) next = sub.expireAt;
      } else if (!sub.refreshing && (refresh === 0 || sub.expireAt < refresh)) {
        refresh = sub.expireAt;
      }
    }
    this.#nextSubExpiry = next;
    this.#nextSubRefresh = refresh;
    this.#reschedule();
  }

  // ---------------------------------------------------------------- closing

  /** disconnect flushes what is queued, closes the transport with `d` and cleans up. */
  disconnect(d: Disconnect): void {
    if (this.#state === 'closed') return;
    this.flush();
    this.#transport.close(d);
    this.#ctx.metrics.disconnects.inc({ code: String(d.code) });
    void this.#close();
  }

  /** onTransportClose is called by the transport when the peer went away. */
  onTransportClose(): void {
    if (this.#state === 'closed') return;
    this.#ctx.metrics.disconnects.inc({ code: String(DisconnectCode.ConnectionClosed) });
    void this.#close();
  }

  async #close(): Promise<void> {
    const ctx = this.#ctx;
    const wasConnected = this.#state === 'connected';
    this.#state = 'closed';
    this.#queue = noFrames;
    this.#queuedBytes = 0;
    ctx.wheel.cancel(this);
    ctx.hub.removeConnecting(this);
    ctx.metrics.connectionsClosed.inc();
    if (!wasConnected) return;
    ctx.metrics.connections.dec();
    ctx.hub.removeSession(this);
    // Per-user buckets live as long as the user has a connection here (bounded memory).
    if (ctx.hub.userConnectionCount(this.user) === 0) ctx.rateLimiter.forgetUser(this.user);
    const subs = [...this.#subs.values()];
    this.#subs.clear();
    for (const s of subs) {
      try {
        await this.#removeSub(s);
      } catch (err) {
        ctx.burstLog.warn(
          'session.cleanup',
          { err, client: this.id, channel: s.channel },
          'cleanup of subscription failed',
        );
      }
    }
  }
}
