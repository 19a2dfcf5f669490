/**
 * ClientSession: the state machine of one connection — connecting → connected → closed —
 * and the dispatch of its commands to their handlers (connect.ts, subscribe.ts, commands.ts),
 * the delivery of publications to its subscriptions, and its closing.
 *
 * Commands of one connection are handled one at a time, in order (a reply never overtakes
 * an earlier one). Replies and pushes go through the bounded write queue (write-queue.ts);
 * deadlines (ping, pong, stale, expiry) through deadlines.ts.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Codec } from '../protocol/codec.js';
import {
  DisconnectCode,
  ErrorCode,
  ProtocolError,
  disconnect,
  type Disconnect,
  type ProtocolErrorShape,
} from '../protocol/codes.js';
import { FrameError } from '../protocol/decode.js';
import { EMPTY_PROFILE, type ClientProfile } from '../protocol/publication-variants.js';
import type { ClientInfo, Command, Publication, Push, RawJSON, Reply } from '../protocol/types.js';
import type { Transport } from '../transport/transport.js';
import type { TokenBuckets } from '../protection/rate-limit.js';
import type { ProxyConnection } from '../proxy/backend-proxy.js';
import type { RpcContext, SessionContext } from './context.js';
import {
  CLOSE,
  REFUSE,
  RUN,
  admit,
  answerRefused,
  closeRefused,
  rateLimitedBeforeConnect,
  shed,
  type DecodedCommand,
  type GatedSession,
} from './command-gate.js';
import { outOfOrder } from './command-checks.js';
import { answerFailure } from './command-errors.js';
import { applyRefresh, connect, proxyRefresh, refresh } from './connect.js';
import { history, presence, publish, rpc, send, unsubscribeCommand } from './commands.js';
import { Deadlines, type DeadlineOwner } from './deadlines.js';
import { checkPosition, deliverPublication } from './delivery.js';
import { PublishPipeline, commandsFailed, pipelined } from './publish-pipeline.js';
import type { Identity, Outcome, SessionState } from './session-core.js';
import {
  removeSubscription,
  serverSubscribe,
  subRefreshCommand,
  subscriptionDeadlines,
  unsubscribe,
} from './subscribe.js';
import { subscribeCommand } from './subscribe-command.js';
import type { PublicationFrame, SubState, Subscriber } from './subscriber.js';
import { WriteQueue, type WriteQueueOwner } from './write-queue.js';

/** How often a connection waiting for its replies to drain looks again (see #drained). */
const drainPollMs = 20;
/** The shared resolved promise: an idle connection holds no command chain of its own. */
const idle: Promise<void> = Promise.resolve();

/** ClientSession is one client connection. */
export class ClientSession implements GatedSession, Subscriber, WriteQueueOwner, DeadlineOwner {
  /** Client id, unique per connection (the protocol's `client`). */
  readonly id: string = randomUUID();
  user = '';
  /** Connection info from the token (`info` claim), attached to presence and publications. */
  connInfo: RawJSON | undefined;
  /** Connection expiry in ms since epoch; 0 means never. */
  expireAt = 0;
  /** Server-only connection meta (token `meta` claim or connect proxy result), for proxy requests. */
  meta: RawJSON | undefined;
  /** What the client declared (connect name/version, token features), for publication variants. */
  profile: ClientProfile = EMPTY_PROFILE;
  readonly ctx: SessionContext;
  /** The connection's format (JSON or Protobuf), as its transport speaks it. */
  readonly codec: Codec;
  /** The subscriptions made, by channel (read by the handlers through SessionCore). */
  readonly subs = new Map<string, SubState>();
  /** Channels whose subscribe is in flight, so a second subscribe is answered 105 (made on first use). */
  pending: Set<string> | undefined;
  /** This connection's command rate buckets, made once it has used its free commands (see rate-limit.ts). */
  buckets: TokenBuckets | undefined;
  /** Rate-limited commands this connection sent so far. */
  limitedCommands = 0;
  /** Commands queued on the chain and not yet handled (protection.rate_limit.max_pending_commands). */
  pendingCommands = 0;
  /** Commands refused by rate limits in a row; reset by any admitted command. */
  refusedInRow = 0;

  #state: SessionState = 'connecting';
  /** The connection's transport: its name, format and, over emulation, its session id. */
  readonly transport: Transport;
  readonly #out: WriteQueue;
  readonly #deadlines: Deadlines;
  /** The command chain's tail; the shared resolved promise while idle. */
  #chain: Promise<void> = idle;
  #pendingFrames = 0;
  /** Publishes in flight together (publish-pipeline.ts), made on the first one. */
  #publishes: PublishPipeline | undefined;
  /** Set when the gate closes the connection (3013): frames after that are never run. */
  #cut = false;
  /** The client's upgrade request headers that proxies forward (lower-case names); undefined when none do. */
  readonly #headers: Readonly<Record<string, string>> | undefined;
  /** A refresh proxy call for this connection is in flight. */
  #refreshing = false;

  /**
   * @param headers the upgrade request headers proxies forward (http_headers), kept only when
   *   some proxy forwards headers: a connection holds nothing of its request otherwise.
   */
  constructor(ctx: SessionContext, transport: Transport, headers?: Readonly<Record<string, string>>) {
    this.ctx = ctx;
    this.transport = transport;
    this.codec = transport.codec;
    this.#headers = headers;
    this.#out = new WriteQueue(transport, this, ctx.config.client.queue_max_size, ctx);
    this.#deadlines = new Deadlines(ctx.wheel, this, transport.codec.unidirectional !== true);
    // A connection that never authenticates is closed: it would hold a socket for nothing.
    ctx.hub.addConnecting(this);
    if (ctx.config.client.stale_close_delay > 0) {
      this.#deadlines.staleAt = Date.now() + ctx.config.client.stale_close_delay;
      this.#deadlines.scheduleConnecting();
    }
    ctx.metrics.connectionsOpened.inc();
  }

  get state(): SessionState {
    return this.#state;
  }

  get remoteAddress(): string {
    return this.transport.remoteAddress;
  }

  /** info returns this connection's ClientInfo (for presence, join/leave, publications). */
  info(chanInfo?: RawJSON): ClientInfo {
    const info: ClientInfo = { user: this.user, client: this.id };
    if (this.connInfo !== undefined) info.conn_info = this.connInfo;
    if (chanInfo !== undefined) info.chan_info = chanInfo;
    return info;
  }

  proxyConnection(): ProxyConnection {
    return {
      client: this.id,
      transport: this.transport.name,
      user: this.user,
      meta: this.meta,
      headers: this.#headers,
    };
  }

  rpcContext(): RpcContext {
    return { client: this.id, user: this.user, info: this.connInfo };
  }

  becomeConnected(identity: Identity): void {
    const ctx = this.ctx;
    this.user = identity.user;
    this.expireAt = identity.expireAt;
    this.connInfo = identity.info;
    this.meta = identity.meta;
    this.profile = identity.profile;
    this.#state = 'connected';
    ctx.hub.addSession(this);
    ctx.metrics.connections.inc();
    const ping = ctx.config.client.ping_interval;
    if (ping > 0) this.#deadlines.nextPingAt = Date.now() + ping;
    this.#reschedule();
  }

  setExpiry(expireAt: number): void {
    this.expireAt = expireAt;
    this.#reschedule();
  }

  subsChanged(): void {
    this.#deadlines.updateSubExpiries(this.subs.values());
    this.#reschedule();
  }

  // ---------------------------------------------------------------- incoming

  /** handleFrame decodes one incoming frame (in the connection's format) and queues its commands for in-order handling. */
  handleFrame(frame: Buffer): void {
    if (this.#state === 'closed' || this.#cut) return;
    let commands;
    try {
      commands = this.codec.decode(frame).commands;
    } catch (err) {
      if (err instanceof FrameError) {
        this.ctx.log.info({ client: this.id, user: this.user, err: err.message }, 'bad frame');
        this.disconnect(disconnect(DisconnectCode.BadRequest));
        return;
      }
      throw err;
    }
    // Once connected, commands are judged as they arrive (see command-gate.ts); before connect
    // the user is unknown, so the frame's commands are judged as they run.
    const connected = this.#state === 'connected';
    let verdicts: Uint8Array | undefined;
    let close = false;
    if (connected) {
      for (let i = 0; i < commands.length; i++) {
        const cmd = commands[i] as DecodedCommand;
        // A pong proves the client alive when it arrives, even while its commands wait their turn.
        if (cmd.method === 'pong') this.#deadlines.awaitingPong = false;
        const v = admit(this, cmd);
        if (v === RUN) continue;
        if (v === CLOSE) {
          // This command and every later one are never run: the connection closes in its turn.
          commands = commands.slice(0, i);
          this.#cut = true;
          close = true;
          break;
        }
        // Made only when something is refused: nearly every frame runs whole.
        (verdicts ??= new Uint8Array(commands.length))[i] = REFUSE;
      }
    } else {
      this.pendingCommands += commands.length;
    }
    const batch = commands;
    // Handlers catch their own errors; anything escaping is a bug, answered with 3004 for
    // this connection only: it must never become an unhandled rejection that ends the process.
    this.#pendingFrames++;
    this.#chain = this.#chain.then(async () => {
      try {
        await this.#handleCommands(batch, verdicts, connected);
        if (close) closeRefused(this);
      } catch (err) {
        commandsFailed(this, err);
      } finally {
        // The last frame done: let go of the chain's promises (an idle connection keeps none).
        if (--this.#pendingFrames === 0) this.#chain = idle;
      }
    });
  }

  async #handleCommands(
    commands: DecodedCommand[],
    verdicts: Uint8Array | undefined,
    admitted: boolean,
  ): Promise<void> {
    for (let i = 0; i < commands.length; i++) {
      const cmd = commands[i] as DecodedCommand;
      if (this.#state === 'closed') return;
      if (admitted && verdicts?.[i] !== REFUSE && cmd.method !== undefined && pipelined(this.ctx, cmd)) {
        // In flight with the publishes around it (publish-pipeline.ts): no longer waiting.
        this.pendingCommands--;
        this.#publishes ??= new PublishPipeline(this.ctx.config.protection.rate_limit.max_pending_commands);
        this.#publishes.run(this.#handleCommand(cmd, true), this);
        continue;
      }
      // Any other command waits for the publishes before it: their replies first, their effect seen.
      const inFlight = this.#publishes?.settled();
      if (inFlight !== undefined && (await inFlight.then(() => this.state === 'closed'))) return;
      this.pendingCommands--;
      if (verdicts !== undefined && verdicts[i] === REFUSE) {
        answerRefused(this, cmd);
        continue;
      }
      if (cmd.method === undefined) {
        this.ctx.metrics.command('unknown', 'error');
        if (this.#state === 'connecting') {
          // Before connect, only connect is valid: anything else is a bad request.
          this.disconnect(disconnect(DisconnectCode.BadRequest));
          return;
        }
        if (cmd.id > 0) this.replyError(cmd.id, cmd.error ?? new ProtocolError(ErrorCode.MethodNotFound).toWire());
        continue;
      }
      await this.#handleCommand(cmd, admitted);
      // Replies over client.queue_max_size (a big recovery or history): the next command waits
      // until they drain, so a client that pipelines reads and stops reading holds no more.
      if (this.#out.overLimit) await this.#drained();
    }
  }

  /** #drained resolves once what waits for the client is back under client.queue_max_size, or it closed. */
  async #drained(): Promise<void> {
    while (this.#state !== 'closed' && this.#out.overLimit) await sleep(drainPollMs);
  }

  /** #handleCommand runs one command; `admitted`: its rate limit was checked on arrival. */
  async #handleCommand(cmd: Command, admitted: boolean): Promise<void> {
    const metrics = this.ctx.metrics;
    // Pongs count on arrival (handleFrame); before connect no ping was sent.
    if (cmd.method === 'pong') return;
    // Connect first and only once; a command without an id (but send) is broken. Both close 3501.
    if (outOfOrder(this.#state === 'connecting', cmd)) {
      metrics.command(cmd.method, 'error');
      this.disconnect(disconnect(DisconnectCode.BadRequest));
      return;
    }
    if ((!admitted && rateLimitedBeforeConnect(this, cmd)) || shed(this, cmd)) return;
    const started = performance.now();
    try {
      const result = await this.#dispatch(cmd);
      metrics.command(cmd.method, 'ok', started);
      if (result !== undefined && cmd.id > 0) this.reply(cmd.id, result.reply);
      result?.after?.();
    } catch (err) {
      answerFailure(this, cmd, err, started);
    }
  }

  /** #dispatch runs a command's handler: its outcome, or a promise of it. */
  // Not async itself: each command already goes through its handler's promise, and one more
  // layer per command is a promise and a microtask on every connect and publish.
  #dispatch(cmd: Command): Outcome | Promise<Outcome> {
    switch (cmd.method) {
      case 'connect':
        return connect(this, cmd.req);
      case 'subscribe':
        return subscribeCommand(this, cmd.req);
      case 'unsubscribe':
        return unsubscribeCommand(this, cmd.req.channel);
      case 'publish':
        return publish(this, cmd.req);
      case 'presence':
        return presence(this, cmd.req.channel, false);
      case 'presence_stats':
        return presence(this, cmd.req.channel, true);
      case 'history':
        return history(this, cmd.req);
      case 'ping': // Centrifugo answers 108: protocol v2 has no ping command for SDKs.
        throw new ProtocolError(ErrorCode.NotAvailable);
      case 'send':
        return send(this, cmd.req.data);
      case 'rpc':
        return rpc(this, cmd.req.method ?? '', cmd.req.data);
      case 'refresh':
        return refresh(this, cmd.req.token);
      case 'sub_refresh':
        return subRefreshCommand(this, cmd.req);
      case 'pong':
        return undefined;
    }
  }

  // ---------------------------------------------------------------- server-side changes

  /** serverSubscribe: API `subscribe` on this session (see subscribe.ts). */
  serverSubscribe(
    channel: string,
    opts: { info?: RawJSON; data?: RawJSON; since?: { offset: number; epoch: string }; expireAt?: number },
  ): Promise<void> {
    return serverSubscribe(this, channel, opts);
  }

  /** unsubscribe removes a subscription; with `push` the client is told (see subscribe.ts). */
  unsubscribe(channel: string, push?: { code: number; reason: string }): Promise<void> {
    return unsubscribe(this, channel, push);
  }

  /** applyRefresh: API `refresh` on this session (see connect.ts). */
  applyRefresh(expireAt: number, info?: RawJSON, expired = false): void {
    applyRefresh(this, expireAt, info, expired);
  }

  // ---------------------------------------------------------------- outgoing

  /** deliverPublication hands a publication (and its shared frame) to this subscriber (see delivery.ts). */
  deliverPublication(state: SubState, pub: Publication, frame: PublicationFrame, epoch = ''): boolean {
    return deliverPublication(this, state, pub, frame, epoch);
  }

  /** checkPosition unsubscribes (2500) a subscriber behind the stream's position (see delivery.ts). */
  checkPosition(state: SubState, offset: number, epoch: string): boolean {
    return checkPosition(this, state, offset, epoch);
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

  /** reply queues the reply to command `id`: flushed without write delay, never counted as a backlog. */
  reply(id: number, reply: Reply): void {
    if (this.#state !== 'closed') this.#out.reply(this.codec.reply(id, reply));
  }

  /** replyError queues an error reply to command `id`, like reply. */
  replyError(id: number, err: ProtocolErrorShape): void {
    if (this.#state !== 'closed') this.#out.reply(this.codec.error(id, err));
  }

  /** pushNow queues a push the client must see at once (server-side subscribe, unsubscribe, refresh). */
  pushNow(push: Push): void {
    if (this.#state !== 'closed') this.enqueue(this.codec.push(push), true);
  }

  /**
   * enqueue adds a frame to the write queue. Over client.queue_max_size bytes (queued here
   * plus not yet written by the socket) the client is disconnected as slow.
   */
  enqueue(frame: Buffer, urgent = false): void {
    if (this.#state !== 'closed') this.#out.push(frame, urgent);
  }

  onSlow(): void {
    this.ctx.metrics.slowDisconnects.inc();
    this.disconnect(disconnect(DisconnectCode.Slow));
  }

  onWriteError(err: unknown): void {
    this.ctx.log.warn({ err, client: this.id }, 'write failed');
    this.disconnect(disconnect(DisconnectCode.WriteError));
  }

  // ---------------------------------------------------------------- deadlines

  /**
   * onDeadline handles every deadline of this connection: stale (no connect in time), ping and
   * pong (a ping every ping_interval; no pong within pong_timeout → 3012), token expiry (3005
   * after expired_close_delay without refresh) and subscription expiry (resubscribe code).
   */
  onDeadline(now: number): void {
    const cfg = this.ctx.config.client;
    const d = this.#deadlines;
    if (this.#state === 'closed') return;
    if (this.#state === 'connecting') {
      if (d.staleAt > 0 && now >= d.staleAt) this.disconnect(disconnect(DisconnectCode.Stale));
      else d.scheduleConnecting();
      return;
    }
    if (d.pongMissed(now)) {
      this.disconnect(disconnect(DisconnectCode.NoPong));
      return;
    }
    const refreshProxy = this.ctx.proxies.refresh;
    if (refreshProxy !== undefined) {
      // The backend prolongs connections (refresh proxy): ask it when the connection expires.
      if (this.expireAt > 0 && now >= this.expireAt && !this.#refreshing) {
        this.#refreshing = true;
        proxyRefresh(this, refreshProxy, (expireAt) => {
          this.#refreshing = false;
          this.setExpiry(expireAt);
        });
      }
    } else if (this.expireAt > 0 && now >= this.expireAt + cfg.expired_close_delay) {
      this.disconnect(disconnect(DisconnectCode.Expired));
      return;
    }
    if (d.takePing(now, cfg.ping_interval, cfg.pong_timeout)) this.enqueue(this.codec.ping);
    subscriptionDeadlines(this, d, now, cfg.expired_close_delay);
    this.#reschedule();
  }

  /** #reschedule puts the earliest pending deadline on the wheel. */
  #reschedule(): void {
    if (this.#state !== 'connected') return;
    const grace = this.ctx.config.client.expired_close_delay;
    this.#deadlines.schedule(this.expireAt, this.ctx.proxies.refresh !== undefined, this.#refreshing, grace);
  }

  // ---------------------------------------------------------------- closing

  /** disconnect flushes what is queued, closes the transport with `d` and cleans up. */
  disconnect(d: Disconnect): void {
    if (this.#state === 'closed') return;
    this.#out.flush();
    this.transport.close(d);
    this.ctx.metrics.disconnects.inc({ code: String(d.code) });
    void this.#close();
  }

  /** onTransportClose is called by the transport when the peer went away. */
  onTransportClose(): void {
    if (this.#state === 'closed') return;
    this.ctx.metrics.disconnects.inc({ code: String(DisconnectCode.ConnectionClosed) });
    void this.#close();
  }

  async #close(): Promise<void> {
    const ctx = this.ctx;
    const wasConnected = this.#state === 'connected';
    this.#state = 'closed';
    this.#out.clear();
    this.#deadlines.cancel();
    ctx.hub.removeConnecting(this);
    ctx.metrics.connectionsClosed.inc();
    if (!wasConnected) return;
    ctx.metrics.connections.dec();
    ctx.hub.removeSession(this);
    // Per-user buckets live as long as the user has a connection here (bounded memory).
    if (ctx.hub.userConnectionCount(this.user) === 0) ctx.rateLimiter.forgetUser(this.user);
    const subs = [...this.subs.values()];
    this.subs.clear();
    for (const s of subs) {
      try {
        await removeSubscription(this, s);
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
