/**
 * Test helpers for driving a ClientSession without sockets or an HTTP server: a fake
 * Transport that records what the session writes, and a fake SessionContext built from the
 * real lower-level parts (validated config, channel rules, permissions, memory engine, hub,
 * rate limiter, kill switches, metrics, timer wheel, flush scheduler, token verifier) with
 * what the Node class adds on top (node subscriptions, client publishes) re-done in a few
 * lines. Every part can be replaced per test.
 *
 * Durations in tests are short (tens of ms) and the wheel steps every 10 ms, so deadline
 * tests take a fraction of a second; wait on conditions (`waitUntil`, `FakeTransport.waitFor`)
 * rather than fixed sleeps.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { jsonCodec } from '../../src/protocol/json-codec.js';
import { pino } from 'pino';
import { signConnectionToken, signSubscriptionToken } from '../../src/auth/token-signer.js';
import { TokenVerifier, tokenVerifierOptions } from '../../src/auth/token-verifier.js';
import { ChannelRules, type ResolvedChannel } from '../../src/channel-rules.js';
import type { MessageHandler, RpcHandler, SessionContext } from '../../src/client/context.js';
import { Hub } from '../../src/client/hub.js';
import { Permissions } from '../../src/client/permissions.js';
import { ClientSession } from '../../src/client/session.js';
import { TimerWheel } from '../../src/client/timer-wheel.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { Broker } from '../../src/engine/broker.js';
import { MemoryBroker } from '../../src/engine/broker-memory.js';
import { MemoryMapBroker } from '../../src/engine/map-broker-memory.js';
import type { PresenceManager } from '../../src/engine/presence.js';
import { MemoryPresenceManager } from '../../src/engine/presence-memory.js';
import { Metrics } from '../../src/metrics.js';
import { BurstLog } from '../../src/protection/burst-log.js';
import { KillSwitches } from '../../src/protection/kill-switches.js';
import { CommandRateLimiter } from '../../src/protection/rate-limit.js';
import type { Disconnect } from '../../src/protocol/codes.js';
import {
  asRaw,
  type ClientInfo,
  type Publication,
  type RawJSON,
  type StreamPosition,
} from '../../src/protocol/types.js';
import { BackendProxy } from '../../src/proxy/backend-proxy.js';
import { HttpProxyClient } from '../../src/proxy/http-proxy-client.js';
import { ProxyResolver } from '../../src/proxy/proxies.js';
import { RpcCache } from '../../src/proxy/rpc-cache.js';
import type { Transport } from '../../src/transport/transport.js';
import { publishResolved } from '../../src/node/publish.js';
import type { NodePublishOptions } from '../../src/node/options.js';
import { SessionServices } from '../../src/node/session-services.js';
import { version } from '../../src/version.js';
import { deepMerge, type Obj, type ServerMessage, type TestSubTokenOptions, type TestTokenOptions } from './server.js';

// ---------------------------------------------------------------- waiting

/** sleep resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** waitUntil polls `predicate` every 2 ms until it is true; rejects after `ms`. */
export async function waitUntil(predicate: () => boolean, ms = 1000, label = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timeout after ${ms} ms waiting for ${label}`);
    await sleep(2);
  }
}

/** Gate is a promise a test opens when it wants: `wait()` resolves once `open()` was called. */
export class Gate {
  #open!: () => void;
  readonly #promise = new Promise<void>((resolve) => (this.#open = resolve));
  /** How many calls are waiting (or waited) on the gate. */
  entered = 0;
  wait(): Promise<void> {
    this.entered++;
    return this.#promise;
  }
  open(): void {
    this.#open();
  }
}

// ---------------------------------------------------------------- transport

/** A frame the session sent, as received: the raw text and when. */
export interface SentFrame {
  text: string;
  at: number;
}

/** A close of the transport: the disconnect advice and when. */
export interface Closed extends Disconnect {
  at: number;
}

/**
 * FakeTransport records what a session sends: every frame as text, split on '\n' and parsed
 * into messages; pings (`{}`) are counted (with their times), not kept as messages.
 */
export class FakeTransport implements Transport {
  readonly name = 'fake';
  readonly codec = jsonCodec;
  readonly remoteAddress = '192.0.2.1:4242';
  /** Bytes "accepted but not written": set it to make the write queue's limit bite. */
  bufferedAmount = 0;
  readonly frames: SentFrame[] = [];
  readonly messages: ServerMessage[] = [];
  readonly pingTimes: number[] = [];
  readonly closes: Closed[] = [];
  /** Called on every ping received (e.g. to answer with a pong). */
  onPing: (() => void) | undefined;
  /** When set, send() throws it (a socket write failure). */
  failWith: Error | undefined;

  send(frame: Buffer): void {
    if (this.failWith) throw this.failWith;
    const text = frame.toString('utf8');
    this.frames.push({ text, at: Date.now() });
    for (const line of text.split('\n')) {
      if (line === '{}') {
        this.pingTimes.push(Date.now());
        this.onPing?.();
        continue;
      }
      this.messages.push(JSON.parse(line) as ServerMessage);
    }
  }

  close(d: Disconnect): void {
    this.closes.push({ ...d, at: Date.now() });
  }

  get pings(): number {
    return this.pingTimes.length;
  }

  /** The first close, if any. */
  get closed(): Closed | undefined {
    return this.closes[0];
  }

  /** waitFor resolves with the first message (from index `from`) that `pred` accepts. */
  async waitFor(pred: (m: ServerMessage) => boolean, ms = 1000, label = 'message', from = 0): Promise<ServerMessage> {
    let found: ServerMessage | undefined;
    await waitUntil(
      () => (found = this.messages.slice(from).find(pred)) !== undefined,
      ms,
      `${label}; got ${JSON.stringify(this.messages)}`,
    );
    return found as ServerMessage;
  }

  /** reply waits for the reply to command `id`. */
  reply(id: number, ms = 1000): Promise<ServerMessage> {
    return this.waitFor((m) => m.id === id, ms, `reply ${id}`);
  }

  /** waitClose waits until the session closed the transport. */
  async waitClose(ms = 1000): Promise<Closed> {
    await waitUntil(() => this.closes.length > 0, ms, 'transport close');
    return this.closes[0] as Closed;
  }

  /** pubs lists the publication pushes received on `channel`, in order. */
  pubs(channel: string): ServerMessage[] {
    return this.messages.filter((m) => m.push?.channel === channel && m.push.pub !== undefined);
  }
}

// ---------------------------------------------------------------- client

/** FakeClient is a session on a fake transport, with a client's calls. */
export class FakeClient {
  readonly session: ClientSession;
  readonly transport: FakeTransport;
  #nextId = 1;

  constructor(session: ClientSession, transport: FakeTransport) {
    this.session = session;
    this.transport = transport;
  }

  /** nextId reserves a command id. */
  nextId(): number {
    return this.#nextId++;
  }

  /** send hands the session one frame holding `cmds` (newline-separated, as the protocol pipelines). */
  send(...cmds: object[]): void {
    this.session.handleFrame(Buffer.from(cmds.map((c) => JSON.stringify(c)).join('\n')));
  }

  /** call sends `{id, [method]: body}` and resolves with its reply. */
  call(method: string, body: object = {}, ms?: number): Promise<ServerMessage> {
    const id = this.nextId();
    this.send({ id, [method]: body });
    return this.transport.reply(id, ms);
  }

  /** connect sends a connect command (with `token` when given) and resolves with its reply. */
  connect(token?: string, extra: object = {}): Promise<ServerMessage> {
    return this.call('connect', token === undefined ? extra : { token, ...extra });
  }

  /** pong answers a ping. */
  pong(): void {
    this.session.handleFrame(Buffer.from('{}'));
  }
}

// ---------------------------------------------------------------- context

/** Namespaces of every fake context (a `channel.namespaces` override replaces the list). */
export const fakeNamespaces = [
  {
    // History with forced recovery; subscribers publish.
    name: 'chat',
    history_size: 100,
    history_ttl: '300s',
    force_recovery: true,
    allow_subscribe_for_client: true,
    allow_publish_for_subscriber: true,
    allow_publish_for_client: true,
  },
  // Plain fan-out: no history.
  { name: 'news', allow_subscribe_for_client: true },
  // No permissions at all: only tokens reach it.
  { name: 'locked' },
];

/** SessionContext as the fake builds it: the node parts tests change are writable. */
export interface FakeSessionContext extends SessionContext {
  readonly hub: Hub<ClientSession>;
  readonly shedder: { read: boolean; connect: boolean };
  readonly rpcHandlers: Map<string, RpcHandler>;
  messageHandler: MessageHandler | undefined;
}

/** FakeContextOptions: config input merged over the base, and parts that replace the real ones. */
export interface FakeContextOptions {
  /** Config input (file form: durations as strings), merged deeply over the fake's base. */
  config?: Obj;
  /** The broker (started by the fake with the hub as its handler); default a MemoryBroker. */
  broker?: Broker;
  presence?: PresenceManager;
  /** Any other part of the context, replacing what the fake built (applied last). */
  parts?: Partial<SessionContext>;
}

/** FakeNode is a fake context with what tests need around it. */
export interface FakeNode {
  readonly ctx: FakeSessionContext;
  readonly config: Readonly<Config>;
  readonly hub: Hub<ClientSession>;
  readonly broker: Broker;
  readonly metrics: Metrics;
  /** HMAC secret of connection and subscription tokens. */
  readonly secret: string;
  /** The real verifier of those tokens (to wrap in a `parts.verifyConnectToken` override). */
  readonly verifier: TokenVerifier;
  /** token signs a connection token for `user`. */
  token(user: string, opts?: TestTokenOptions): Promise<string>;
  /** subToken signs a subscription token. */
  subToken(user: string, channel: string, opts?: TestSubTokenOptions): Promise<string>;
  /** client opens a session on a fake transport (not connected yet). */
  client(): FakeClient;
  /** connected opens a session and connects it as `user`; rejects unless the reply is a connect result. */
  connected(user: string): Promise<FakeClient>;
  /** publish publishes to a channel as the server API does (history as the namespace says). */
  publish(channel: string, data: unknown): Promise<StreamPosition>;
  /** counter reads a metric's value (summed over label sets that `labels` matches). */
  counter(name: keyof Metrics, labels?: Record<string, string>): Promise<number>;
  /** close closes every session, the engine, the wheel and the flush scheduler. */
  close(): Promise<void>;
}

/** fakeNode builds a fake SessionContext. Call `close()` after the test (t.after). */
export async function fakeNode(opts: FakeContextOptions = {}): Promise<FakeNode> {
  const secret = randomBytes(16).toString('hex');
  const base: Obj = {
    client: { token: { hmac_secret_key: secret } },
    http_api: { key: 'unused' },
    channel: { namespaces: fakeNamespaces },
  };
  const config = loadConfig({ object: deepMerge(base, opts.config ?? {}) });
  const log = pino({ level: 'silent' });
  const rules = new ChannelRules(config.channel);
  const metrics = new Metrics('fake');
  const burstLog = new BurstLog(log, config.protection.log_interval);
  const hub = new Hub<ClientSession>();
  const broker = opts.broker ?? new MemoryBroker({ sweepIntervalMs: 0 });
  const presence = opts.presence ?? new MemoryPresenceManager({ sweepIntervalMs: 0 });
  const wheel = new TimerWheel(10);
  const verifier = new TokenVerifier(tokenVerifierOptions(config.client.token, 'client.token'));
  const sessions = new Set<ClientSession>();

  const mapBroker = new MemoryMapBroker({ sweepIntervalMs: 0 });
  const handler = {
    onPublication: (channel: string, pub: Publication, epoch: string) => {
      const n = hub.broadcastPublication(channel, pub, epoch);
      if (n > 0) metrics.deliveries.inc(n);
    },
    onJoin: (channel: string, info: ClientInfo) => hub.broadcastJoin(channel, info),
    onLeave: (channel: string, info: ClientInfo) => hub.broadcastLeave(channel, info),
    onControl: () => undefined,
  };
  await broker.start(handler);
  await mapBroker.start(handler);

  // The node's own pieces for what a node does for its sessions: shared broker subscriptions,
  // flush passes, and publishing with the namespace's options. They read `ctx` when called,
  // so a test's `parts` override of the broker applies to them too.
  const services = new SessionServices({
    config,
    log,
    rules,
    hub,
    get broker() {
      return ctx.broker;
    },
    get presence() {
      return ctx.presence;
    },
    mapBroker,
    presenceTtlMs: Math.round(config.client.presence_update_interval * 2.5),
  });
  const publish = (rc: ResolvedChannel, data: RawJSON, info?: ClientInfo, o?: NodePublishOptions) =>
    publishResolved({ config, rules, broker: ctx.broker, metrics }, rc, data, info, o);

  const ctx: FakeSessionContext = {
    config,
    rules,
    hub,
    permissions: new Permissions(config.client.insecure, rules),
    broker,
    presence,
    mapBroker,
    metrics,
    log,
    rateLimiter: new CommandRateLimiter(config.protection.rate_limit),
    shedder: { read: false, connect: false },
    killSwitches: new KillSwitches(),
    burstLog,
    nodeId: randomUUID(),
    version,
    rpcHandlers: new Map(),
    messageHandler: undefined,
    verifyConnectToken: (token, expectedUser) =>
      verifier.verifyConnectToken(token, expectedUser === undefined ? {} : { expectedUser }),
    verifySubscriptionToken: (token, channel, user, clientId, purpose) =>
      verifier.verifySubscriptionToken(token, channel, user, { clientId, purpose }),
    scheduleFlush: (queue, urgent) => services.scheduleFlush(queue, urgent),
    nodeSubscribe: (channel) => services.nodeSubscribe(channel),
    nodeUnsubscribe: (channel) => services.nodeUnsubscribe(channel),
    publishFromClient: (rc, data, info, o) => publish(rc, data, info, o),
    proxies: new ProxyResolver(config),
    backend: new BackendProxy(
      new HttpProxyClient({ maxResponseBytes: config.proxy.max_response_size, observer: metrics, burstLog, version }),
    ),
    rpcCache: new RpcCache(config.proxy.cache, undefined),
    wheel,
    presenceTtlMs: Math.round(config.client.presence_update_interval * 2.5),
    ...(opts.parts as Partial<FakeSessionContext>),
  };

  const client = (): FakeClient => {
    const transport = new FakeTransport();
    const session = new ClientSession(ctx, transport);
    sessions.add(session);
    return new FakeClient(session, transport);
  };

  return {
    ctx,
    config,
    hub,
    broker,
    metrics,
    secret,
    verifier,
    token: (user, o = {}) => signConnectionToken({ ...o, secret, user }),
    subToken: (user, channel, o = {}) => signSubscriptionToken({ ...o, secret, user, channel }),
    client,
    async connected(user) {
      const c = client();
      const reply = await c.connect(await signConnectionToken({ secret, user }));
      if (!reply.connect) throw new Error(`connect failed: ${JSON.stringify(reply)}`);
      return c;
    },
    publish: (channel, data) => publish(rules.resolve(channel), asRaw(data)),
    async counter(name, labels = {}) {
      const metric = metrics[name] as unknown as {
        get(): Promise<{ values: Array<{ value: number; labels: Record<string, string | number> }> }>;
      };
      const { values } = await metric.get();
      return values
        .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
        .reduce((sum, v) => sum + v.value, 0);
    },
    async close() {
      for (const s of sessions) s.onTransportClose();
      wheel.close();
      services.close();
      metrics.close();
      await ctx.broker.close();
      await ctx.presence.close();
      ctx.rpcCache.close();
    },
  };
}
