/**
 * Node: one running Bulwark — the composition root that builds and wires a node's parts
 * (config, engine, hub, cluster, protections, proxies, HTTP), and the library API: start,
 * publish, rpc, onMessage, sendMessage, drain, shutdown.
 *
 * @example
 * ```ts
 * import { Node } from 'bulwark';
 * const node = new Node({ client: { token: { hmac_secret_key: process.env.SECRET } }, http_api: { key: process.env.API_KEY } });
 * node.rpc('echo', (data) => data);
 * const { port } = await node.start();
 * await node.publish('news', { text: 'hello' });
 * ```
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { ChannelRules, type ResolvedChannel } from './channel-rules.js';
import type { MessageHandler, RpcHandler, SessionContext } from './client/context.js';
import type { ClientSession } from './client/session.js';
import type { SharedPolls } from './client/shared-polls.js';
import { loadConfig } from './config/load.js';
import type { Config, ConfigInput } from './config/schema.js';
import type { Broker } from './engine/broker.js';
import { createCombinedEngine } from './engine/combined-engine.js';
import { injectedEngine } from './engine/engine.js';
import type { MapBroker } from './engine/map-broker.js';
import type { PresenceManager } from './engine/presence.js';
import { MemoryPresenceManager } from './engine/presence-memory.js';
import { BulwarkError } from './errors.js';
import { EmulationSessions } from './client/emulation-sessions.js';
import { Hub } from './client/hub.js';
import { Permissions } from './client/permissions.js';
import type { Flushable } from './client/flush-scheduler.js';
import { Admission } from './protection/admission.js';
import { BurstLog } from './protection/burst-log.js';
import { applyFdLimit, readFdLimits, type FdLimitsReader } from './protection/fd-limit.js';
import { KillSwitches, type KillSwitch, type KillSwitchKind } from './protection/kill-switches.js';
import { LoadShedder } from './protection/load-shedder.js';
import { sheddingReport } from './protection/shedding-report.js';
import { CommandRateLimiter } from './protection/rate-limit.js';
import { Cluster } from './cluster/cluster.js';
import type { ControlBus, NodeInfo } from './cluster/control.js';
import type { NodeRegistry } from './cluster/node-registry.js';
import type { Surveys } from './cluster/survey.js';
import { TimerWheel } from './client/timer-wheel.js';
import { Metrics } from './metrics.js';
import { Backend } from './node/backend.js';
import { createSharedPolls } from './node/shared-polls.js';
import { Drainer } from './node/drain.js';
import { EngineSupervisor } from './node/engine-supervisor.js';
import { nodeHttpServers, type NodeHttpServers } from './node/http-routes.js';
import { readTlsFiles } from './node/tls-files.js';
import { SessionServices } from './node/session-services.js';
import type { BackendProxy } from './proxy/backend-proxy.js';
import type { ProxyResolver } from './proxy/proxies.js';
import type { RpcCache } from './proxy/rpc-cache.js';
import { SharedFrames } from './client/shared-frames.js';
import {
  asRaw,
  type ClientInfo,
  type PublicationVariant,
  type RawJSON,
  type StreamPosition,
} from './protocol/types.js';
import { publishResolved, publishResolvedNow } from './node/publish.js';
import { OutboxConsumer } from './outbox/consumer.js';
import { JetStreamConsumer } from './jetstream/consumer.js';
import { resolveVariants, type VariantInput } from './node/publication-variants.js';
import type { NodeOptions, NodePublishOptions } from './node/options.js';
import { defaultLogger } from './node/logger.js';
import { version } from './version.js';

export type { NodeOptions, NodePublishOptions } from './node/options.js';

/** Node is one Bulwark server. */
export class Node implements SessionContext {
  readonly config: Readonly<Config>;
  readonly rules: ChannelRules;
  readonly hub = new Hub<ClientSession>();
  /** The HTTP-streaming and SSE sessions, by the session id their /emulation requests name. */
  readonly emulation = new EmulationSessions();
  readonly permissions: Permissions;
  readonly wheel = new TimerWheel(100);
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Unique id of this process's node, new on every start. */
  readonly nodeId = randomUUID();
  readonly version = version;
  readonly rpcHandlers = new Map<string, RpcHandler>();
  messageHandler: MessageHandler | undefined;
  /** Presence entries are refreshed every client.presence_update_interval and live 2.5× that. */
  readonly presenceTtlMs: number;
  readonly startedAt = Date.now();
  /** Logs each kind of protection event at most once per protection.log_interval. */
  readonly burstLog: BurstLog;
  /**
   * Accepts or refuses each WebSocket upgrade (draining, connection count, accept rate). Its
   * connection limit is decided at start(): client.connection_limit, or when that is 0, what
   * the open-file limit holds.
   */
  readonly admission: Admission;
  readonly rateLimiter: CommandRateLimiter;
  /** Sheds new connections, then reads and RPC, while the event loop lags (protection.shedding). */
  readonly shedder: LoadShedder;
  /** The kill switches on this node; change them with setKillSwitch/removeKillSwitch (cluster-wide). */
  readonly killSwitches = new KillSwitches();
  /** Messages to and from the other nodes, through the broker. */
  readonly control: ControlBus;
  /** The other live nodes (from their node_info messages). */
  readonly nodes: NodeRegistry;
  /** Cluster-wide questions (channels API). */
  readonly surveys: Surveys;
  /** Which backend proxy handles an event (connect, refresh, subscribe, publish, sub_refresh, rpc). */
  readonly proxies: ProxyResolver;
  /** Sends proxy events to the backend over HTTP. */
  readonly backend: BackendProxy;
  /** Cacheable RPC methods (proxy.cache.rpc), shared through Redis with the Redis engine. */
  readonly rpcCache: RpcCache;
  /** Shared poll subscriptions on this node (docs/SHARED_POLL.md). */
  readonly sharedPolls: SharedPolls;
  /** The outbox consumer, with outbox.enabled (docs/OUTBOX.md). */
  readonly #outbox: OutboxConsumer | undefined;
  /** The JetStream consumer, with consumers.jetstream.enabled (docs/JETSTREAM.md). */
  readonly #jetstream: JetStreamConsumer | undefined;

  /** The engine, restarted while it cannot start (see node/engine-supervisor.ts). */
  readonly #engine: EngineSupervisor;
  readonly #cluster: Cluster;
  readonly #sessions: SessionServices;
  readonly #backend: Backend;
  readonly #drainer: Drainer;
  readonly #http: NodeHttpServers;
  #internalAddress: { port: number; address: string } | undefined;
  readonly #readFdLimits: FdLimitsReader;
  #started = false;
  #name = '';

  /**
   * Builds a node from a validated Config, or from config input (validated here: throws
   * BulwarkError BW_ERR_CONFIG_INVALID listing every bad key).
   */
  constructor(config: Readonly<Config> | ConfigInput, options: NodeOptions = {}) {
    this.config = isValidated(config) ? config : loadConfig({ object: config });
    const cfg = this.config;
    this.log = options.logger ?? defaultLogger(cfg.log.level);
    this.rules = new ChannelRules(cfg.channel);
    this.permissions = new Permissions(cfg.client.insecure, this.rules);
    this.burstLog = new BurstLog(this.log, cfg.protection.log_interval);
    this.rateLimiter = new CommandRateLimiter(cfg.protection.rate_limit);
    this.metrics = new Metrics(cfg.node.name || 'bulwark');
    const { broker, presence } = options;
    const make: ConstructorParameters<typeof EngineSupervisor>[1] =
      broker !== undefined
        ? () => injectedEngine(broker, presence ?? new MemoryPresenceManager())
        : (events) => createCombinedEngine(cfg, events);
    this.#engine = new EngineSupervisor(this, make, {
      started: () => this.#engineStarted(),
      // Kill switch changes sent while this node's connection was down never reached it.
      reconnected: () => this.#cluster.killSwitches.requestSync(),
    });
    this.presenceTtlMs = Math.round(cfg.client.presence_update_interval * 2.5);
    this.#sessions = new SessionServices(this);
    this.#readFdLimits = options.readFdLimits ?? readFdLimits;
    this.shedder = new LoadShedder(cfg.protection.shedding, { onChange: sheddingReport(this) });
    this.#cluster = new Cluster(this);
    ({ control: this.control, nodes: this.nodes, surveys: this.surveys } = this.#cluster);
    this.#backend = new Backend(this, options.proxyGuard);
    ({ proxies: this.proxies, proxy: this.backend, rpcCache: this.rpcCache } = this.#backend);
    this.sharedPolls = createSharedPolls(this);
    this.admission = new Admission(this);
    this.metrics.setAdmissionSource(() => ({ open: this.admission.open, limit: this.admission.connectionLimit }));
    this.metrics.setHttpPendingSource(() => this.admission.pending.size);
    this.metrics.setDrainingSource(() => this.draining);
    this.hub.onVariantDeliveries = (counts) => {
      for (let i = 0; i < counts.length; i++) {
        if (counts[i]! > 0)
          this.metrics.variantDeliveries.inc({ variant: i === 0 ? 'default' : String(i - 1) }, counts[i]);
      }
    };
    this.#outbox = cfg.outbox.enabled ? new OutboxConsumer(this) : undefined;
    this.#jetstream = cfg.consumers.jetstream.enabled ? new JetStreamConsumer(this) : undefined;
    this.#drainer = new Drainer(this, {
      halt: () => {
        this.#sessions.stop();
        this.sharedPolls.stop();
        this.#cluster.stop();
        this.#engine.stop();
        this.shedder.stop();
      },
      close: async () => {
        // The other nodes drop this one from info at once instead of after 3 info intervals.
        await this.#cluster.leave();
        await Promise.all([this.#outbox?.stop(), this.#jetstream?.stop()]);
        await Promise.all([this.#http.public.close(), this.#http.internal?.close()]);
        await this.broker.close();
        await this.presence.close();
        await this.mapBroker.close();
        await this.sharedPolls.close();
        this.#backend.close();
      },
      release: () => {
        this.metrics.close();
        this.wheel.close();
        this.#sessions.close();
      },
    });
    this.#http = nodeHttpServers(this, this.#cluster);
  }

  /**
   * reloadTls reads http_server.tls's certificate and key again and uses them for new
   * connections (SIGHUP); open connections keep theirs. Throws BulwarkError BW_ERR_TLS when
   * they cannot be read, and then keeps the ones in use.
   */
  reloadTls(): void {
    const files = readTlsFiles(this.config);
    if (files === undefined) return;
    this.#http.public.setTls(files);
    this.log.info({ cert: this.config.http_server.tls.cert_pem_file }, 'tls certificate reloaded');
  }

  /** internalAddress is where the internal port listens (API, metrics, probes), once started with one. */
  get internalAddress(): { port: number; address: string } | undefined {
    return this.#internalAddress;
  }

  /** name is the node's display name (node.name, else hostname_port). */
  get name(): string {
    return this.#name;
  }

  /** draining is true once shutdown began: readiness is false and new connections are refused. */
  get draining(): boolean {
    return this.#drainer.draining;
  }

  /** The broker of the engine (see engine.type). */
  get broker(): Broker {
    return this.#engine.broker;
  }

  /** The presence manager of the engine. */
  get presence(): PresenceManager {
    return this.#engine.presence;
  }

  /** The map broker of the engine: the state of map channels. */
  get mapBroker(): MapBroker {
    return this.#engine.map;
  }

  /** engineStarted is false until the engine could start: upgrades are refused meanwhile. */
  get engineStarted(): boolean {
    return this.#engine.started;
  }

  /**
   * ready is what /ready answers: not draining, the engine started, and its service reachable
   * now. A load balancer then sends new players only to nodes that can serve them.
   */
  get ready(): boolean {
    return !this.draining && this.#engine.ready;
  }

  /**
   * start checks the open-file limit against the connection limit, starts the engine and
   * listens. Resolves with the bound address. Throws BulwarkError BW_ERR_FD_LIMIT when the
   * open-file limit cannot hold client.connection_limit (see protection/fd-limit.ts).
   */
  async start(): Promise<{ port: number; address: string }> {
    if (this.#started) throw new BulwarkError('BW_ERR_ALREADY_STARTED', 'node already started');
    this.#started = true;
    const cfg = this.config;
    // Before anything listens: a node that cannot hold its connections must not start, and a
    // node without client.connection_limit gets the limit its open-file limit holds.
    const fd = applyFdLimit(
      { connectionLimit: cfg.client.connection_limit, fdHeadroom: cfg.protection.fd_headroom },
      this.log,
      this.#readFdLimits,
    );
    this.admission.setConnectionLimit(fd.connectionLimit);
    this.admission.pending.setCapacity(fd.socketCapacity);
    if (cfg.client.insecure) {
      this.log.warn(
        'client.insecure is ON: every connection is accepted without a token and may do anything the namespaces allow. Local demos only, never in production.',
      );
    }
    if (cfg.http_api.insecure) this.log.warn('http_api.insecure is ON: the server API accepts requests without a key.');
    await this.#engine.start();
    this.shedder.start();
    const addr = await this.#http.public.listen(cfg.http_server.port, cfg.http_server.address);
    if (this.#http.internal !== undefined) {
      const internalHost = cfg.http_server.internal_address || cfg.http_server.address;
      try {
        this.#internalAddress = await this.#http.internal.listen(cfg.http_server.internal_port, internalHost);
      } catch (err) {
        await this.#http.public.close();
        throw err;
      }
    }
    this.#name = cfg.node.name || `${hostname()}_${addr.port}`;
    this.metrics.setNodeName(this.#name);
    this.#sessions.start();
    this.#cluster.start();
    this.#outbox?.start();
    this.#jetstream?.start();
    this.log.info(
      {
        node: this.#name,
        port: addr.port,
        internalPort: this.#internalAddress?.port,
        engine: cfg.engine.type,
        engineAddress: this.#engine.address,
        version,
      },
      'bulwark started',
    );
    return addr;
  }

  /** #engineStarted runs once the engine started, at start or on a later retry. */
  #engineStarted(): void {
    this.#backend.connectCache();
    this.sharedPolls.start().catch((err: unknown) => this.log.error({ err }, 'shared poll: store not started'));
    if (this.#name !== '') {
      this.log.info({ address: this.#engine.address }, 'engine started: node ready');
      this.#cluster.publishInfo();
    }
    // Switches changed at runtime on the nodes already running reach this one too.
    this.#cluster.killSwitches.requestSync();
  }

  // ---------------------------------------------------------------- library API

  /** rpc registers the handler of an RPC method (clients call it with the `rpc` command). */
  rpc(method: string, handler: RpcHandler): this {
    if (this.rpcHandlers.has(method))
      throw new BulwarkError('BW_ERR_RPC_HANDLER', `rpc method "${method}" already registered`);
    this.rpcHandlers.set(method, handler);
    return this;
  }

  /** onMessage sets the handler of `send` commands (asynchronous client messages). */
  onMessage(handler: MessageHandler): this {
    this.messageHandler = handler;
    return this;
  }

  /**
   * publish publishes `data` (any JSON value) to a channel, as the server API does. Throws
   * ProtocolError 102/107 for an invalid or unknown channel.
   */
  async publish(channel: string, data: unknown, opts: NodePublishOptions = {}): Promise<StreamPosition> {
    const rc = this.rules.resolve(channel);
    const pos = await this.publishResolved(rc, asRaw(data), opts.info, opts);
    this.metrics.published('api');
    return pos;
  }

  /**
   * publishNow is publish completed within the call, on an engine whose broker publishes
   * synchronously (the memory engine): the same checks, errors and counts. Undefined, with
   * nothing done, on any other engine: use publish.
   */
  publishNow(channel: string, data: unknown, opts: NodePublishOptions = {}): StreamPosition | undefined {
    if (this.broker.publishNow === undefined) return undefined;
    const rc = this.rules.resolve(channel);
    const pos = publishResolvedNow(this, rc, asRaw(data), opts.info, opts);
    if (pos !== undefined) this.metrics.published('api');
    return pos;
  }

  /**
   * resolveVariants turns a publish's variants into payloads (inline data, or the answer of an
   * RPC through the protected cache); pass the result as `variants` to publish. See
   * node/publication-variants.ts.
   */
  resolveVariants(inputs: readonly VariantInput[]): Promise<PublicationVariant[]> {
    return resolveVariants(this, inputs);
  }

  /** publishResolved publishes pre-encoded data to a resolved channel. */
  async publishResolved(
    rc: ResolvedChannel,
    data: RawJSON,
    info?: ClientInfo,
    opts: NodePublishOptions = {},
  ): Promise<StreamPosition> {
    return publishResolved(this, rc, data, info, opts);
  }

  /** sendMessage pushes an asynchronous message to every connection of `user` on this node. */
  sendMessage(user: string, data: unknown): number {
    const frames = new SharedFrames({ type: 'message', data: asRaw(data) });
    const sessions = this.hub.userSessions(user);
    for (const s of sessions) s.sendMessage(frames.for(s.codec));
    return sessions.size;
  }

  /**
   * setKillSwitch turns a kill switch on (or changes its reason) on this node at once and on
   * every other node through the broker. Clients refused by it get `reason`.
   */
  setKillSwitch(kind: KillSwitchKind, target: string, reason: string): Promise<KillSwitch> {
    return this.#cluster.killSwitches.set(kind, target, reason);
  }

  /** removeKillSwitch turns a kill switch off here and on every other node; false if it was not on here. */
  removeKillSwitch(kind: KillSwitchKind, target: string): Promise<boolean> {
    return this.#cluster.killSwitches.remove(kind, target);
  }

  /** info returns this node's counts, as the info API method lists them. */
  info(): NodeInfo {
    const hub = this.hub;
    return {
      uid: this.nodeId,
      name: this.name,
      version: this.version,
      num_clients: hub.numClients,
      num_users: hub.numUsers,
      num_channels: hub.numChannels,
      num_subs: hub.numSubs,
      uptime: Math.floor((Date.now() - this.startedAt) / 1000),
    };
  }

  /**
   * shutdown drains and stops the node: readiness turns false, new connections are refused,
   * connected clients are disconnected with 3001 (reconnect allowed) spread uniformly over
   * `drain.window` so their reconnects do not arrive as one storm, then the engine closes.
   * Bounded by `shutdown.timeout`.
   */
  shutdown(): Promise<void> {
    // No engine start retry from here on; a second call waits for the same shutdown.
    this.#engine.stop();
    return this.#drainer.shutdown();
  }

  /**
   * drain stops admitting connections (readiness turns false) and disconnects the connected
   * clients with 3001 (reconnect allowed) spread uniformly over `windowMs` (default
   * drain.window), without stopping the node: the server API and metrics keep answering until
   * shutdown(). For rolling restarts driven by an orchestrator's pre-stop hook. A second call
   * while a drain runs changes nothing. Returns the number of clients to disconnect.
   */
  drain(windowMs = this.config.drain.window): { clients: number; windowMs: number } {
    return this.#drainer.drain(windowMs);
  }

  // ---------------------------------------------------------------- SessionContext

  /** publish from a client session (counted separately from API publishes). */
  async publishFromClient(
    rc: ResolvedChannel,
    data: RawJSON,
    info?: ClientInfo,
    opts?: { skipHistory?: boolean; tags?: Record<string, string> | undefined },
  ): Promise<StreamPosition> {
    const pos = await this.publishResolved(rc, data, info, opts);
    this.metrics.published('client');
    return pos;
  }

  verifyConnectToken(token: string, expectedUser?: string) {
    return this.#sessions.verifyConnectToken(token, expectedUser);
  }

  verifySubscriptionToken(...args: Parameters<SessionServices['verifySubscriptionToken']>) {
    return this.#sessions.verifySubscriptionToken(...args);
  }

  scheduleFlush(queue: Flushable, urgent: boolean): void {
    this.#sessions.scheduleFlush(queue, urgent);
  }

  nodeSubscribe(channel: string): Promise<void> {
    return this.#sessions.nodeSubscribe(channel);
  }

  nodeUnsubscribe(channel: string): Promise<void> {
    return this.#sessions.nodeUnsubscribe(channel);
  }
}

function isValidated(c: Readonly<Config> | ConfigInput): c is Readonly<Config> {
  // loadConfig freezes its result; user-supplied input objects are not frozen.
  return Object.isFrozen(c);
}
