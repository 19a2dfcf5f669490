/**
 * Test helpers: an in-process Bulwark node on a random port with random secrets, a tiny raw
 * WebSocket client for protocol-level tests, a factory for the real `centrifuge` SDK client,
 * and small async utilities (timeouts, waiting for events).
 *
 * Every client made here is remembered, and `TestServer.close()` closes the clients of its
 * server before shutting the node down, so a test that forgets one cannot hang the run
 * (a Centrifuge client would otherwise keep reconnecting to the closed port).
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { Centrifuge, type EventMap, type Options, type TypedEventEmitter } from 'centrifuge';
import { Centrifuge as ProtobufCentrifuge } from 'centrifuge/build/protobuf';
import WebSocket from 'ws';
import {
  signConnectionToken,
  signSubscriptionToken,
  type ConnectionTokenOptions,
  type SubscriptionTokenOptions,
} from '../../src/auth/token-signer.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { Node, type NodeOptions } from '../../src/node.js';
import { checkedLogger } from './log-check.js';

// ---------------------------------------------------------------- small async utilities

/** sleep resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** withTimeout rejects with "timeout: <label>" when `promise` does not settle within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${label}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** waitUntil polls `predicate` every 5 ms until it is true; rejects after `ms`. */
export async function waitUntil(predicate: () => boolean, ms = 3000, label = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timeout after ${ms} ms waiting for ${label}`);
    await sleep(5);
  }
}

/**
 * nextEvent resolves with the first argument of the next `event` emitted by a Centrifuge
 * client or subscription (optionally the next one `filter` accepts); rejects after `ms`.
 */
export function nextEvent<Ev extends EventMap, E extends keyof Ev & string>(
  emitter: TypedEventEmitter<Ev>,
  event: E,
  ms = 3000,
  filter?: (ctx: Parameters<Ev[E]>[0]) => boolean,
): Promise<Parameters<Ev[E]>[0]> {
  return withTimeout(
    new Promise((resolve) => {
      const listener = ((ctx: Parameters<Ev[E]>[0]) => {
        if (filter && !filter(ctx)) return;
        emitter.off(event, listener);
        resolve(ctx);
      }) as Ev[E];
      emitter.on(event, listener);
    }),
    ms,
    `event "${event}"`,
  );
}

// ---------------------------------------------------------------- client registry

interface Closable {
  url: string;
  close(): void | Promise<void>;
}

/** Clients made by rawClient/newCentrifuge that were not closed yet. */
const openClients = new Set<Closable>();

async function closeClientsOf(baseUrl: string): Promise<void> {
  const mine = [...openClients].filter((c) => c.url.startsWith(baseUrl));
  await Promise.all(mine.map((c) => c.close()));
}

// ---------------------------------------------------------------- test server

/** Options of a test connection token (everything but the signing key and user). */
export type TestTokenOptions = Omit<Partial<ConnectionTokenOptions>, 'secret' | 'privateKey' | 'alg' | 'user'>;
/** Options of a test subscription token (everything but the signing key, user and channel). */
export type TestSubTokenOptions = Omit<
  Partial<SubscriptionTokenOptions>,
  'secret' | 'privateKey' | 'alg' | 'user' | 'channel'
>;

/** ApiResponse is a server API answer: the HTTP status and the parsed JSON body. */
export interface ApiResponse {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- API replies are free-form JSON
  body: any;
}

/** ApiCallOptions changes how `TestServer.api` calls: another key (null: none), or a raw body. */
export interface ApiCallOptions {
  key?: string | null;
  rawBody?: string | Buffer;
}

/** TestServer is a started node with what tests need to talk to it. */
export interface TestServer {
  node: Node;
  port: number;
  /** WebSocket endpoint: ws://127.0.0.1:<port>/connection/websocket */
  url: string;
  /** HTTP base: http://127.0.0.1:<port> */
  httpUrl: string;
  /** HMAC secret of connection and subscription tokens. */
  secret: string;
  /** Server API key. */
  apiKey: string;
  /** api POSTs `body` to /api/<method> and returns the status and parsed JSON answer. */
  api(method: string, body?: unknown, opts?: ApiCallOptions): Promise<ApiResponse>;
  /** token signs a connection token for `user`. */
  token(user: string, opts?: TestTokenOptions): Promise<string>;
  /** subToken signs a subscription token for `user` and `channel`. */
  subToken(user: string, channel: string, opts?: TestSubTokenOptions): Promise<string>;
  /** close closes this server's remaining test clients, then shuts the node down (idempotent). */
  close(): Promise<void>;
}

/** Namespaces every test server has (overrides with the same name replace them). */
export const baseNamespaces = [
  {
    // A chat room: subscribers publish, read history and presence; recovery is forced.
    name: 'chat',
    history_size: 100,
    history_ttl: '300s',
    force_recovery: true,
    presence: true,
    join_leave: true,
    allow_subscribe_for_client: true,
    allow_publish_for_subscriber: true,
    allow_history_for_subscriber: true,
    allow_presence_for_subscriber: true,
  },
  {
    // Everything allowed to every client (authenticated or anonymous), recovery on request.
    name: 'open',
    history_size: 100,
    history_ttl: '300s',
    allow_recovery: true,
    allow_positioning: true,
    presence: true,
    join_leave: true,
    allow_subscribe_for_client: true,
    allow_subscribe_for_anonymous: true,
    allow_publish_for_client: true,
    allow_publish_for_anonymous: true,
    allow_presence_for_client: true,
    allow_presence_for_anonymous: true,
    allow_history_for_client: true,
    allow_history_for_anonymous: true,
  },
  {
    // Plain fan-out: no history, subscribe allowed.
    name: 'news',
    allow_subscribe_for_client: true,
  },
  {
    // A tiny history: publishing more than 5 while a client is away makes it unrecoverable.
    name: 'tiny',
    history_size: 5,
    history_ttl: '300s',
    force_recovery: true,
    allow_subscribe_for_client: true,
  },
  {
    // No permissions at all: only tokens and the server API reach it.
    name: 'locked',
  },
];

/** Obj is a plain JSON object (a config being merged). */
export type Obj = Record<string, unknown>;

function isPlainObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** deepMerge merges `over` into `base` (new object): objects recursively, anything else replaced. */
export function deepMerge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

/** mergeNamespaces merges namespace lists by name: an override replaces its namesake. */
function mergeNamespaces(base: Obj[], over: Obj[]): Obj[] {
  const byName = new Map(base.map((ns) => [ns['name'], ns]));
  for (const ns of over) byName.set(ns['name'], ns);
  return [...byName.values()];
}

/**
 * startTestServer starts a node on 127.0.0.1 with a random port, random secrets, checked
 * logging, no drain window, no load shedding and the {@link baseNamespaces}. `overrides` is merged in deeply;
 * `channel.namespaces` entries are merged by name (same name replaces, new names are added).
 * `nodeOptions` can inject a broker or presence manager. The node logs at debug level into
 * {@link checkedLogger}, which fails the test file if any line is not clean JSON.
 */
export async function startTestServer(
  overrides: ConfigInput = {},
  nodeOptions: Omit<NodeOptions, 'logger'> = {},
): Promise<TestServer> {
  const secret = randomBytes(24).toString('hex');
  const apiKey = randomBytes(24).toString('hex');
  const base: Obj = {
    http_server: { address: '127.0.0.1', port: 0 },
    log: { level: 'silent' },
    client: { token: { hmac_secret_key: secret } },
    http_api: { key: apiKey },
    drain: { window: '0s' },
    shutdown: { timeout: '5s' },
    // No load shedding unless a test turns it on: the node runs in the test's process, and on a
    // machine busy with other work (or other test files) the test's own bursts lag the loop
    // enough that a connect or a read was refused now and then, in tests about something else.
    protection: { shedding: { enabled: false } },
    channel: { namespaces: baseNamespaces },
  };
  const over = overrides as Obj;
  const merged = deepMerge(base, over);
  const overNs = isPlainObject(over['channel']) ? over['channel']['namespaces'] : undefined;
  if (Array.isArray(overNs)) {
    (merged['channel'] as Obj)['namespaces'] = mergeNamespaces(baseNamespaces, overNs as Obj[]);
  }
  const node = new Node(merged as ConfigInput, { ...nodeOptions, logger: checkedLogger() });
  const { port } = await node.start();
  const httpUrl = `http://127.0.0.1:${port}`;
  const url = `ws://127.0.0.1:${port}/connection/websocket`;
  let closing: Promise<void> | undefined;

  const api = async (method: string, body: unknown = {}, opts: ApiCallOptions = {}): Promise<ApiResponse> => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const key = opts.key === undefined ? apiKey : opts.key;
    if (key !== null) headers['x-api-key'] = key;
    const res = await fetch(`${httpUrl}/api/${method}`, {
      method: 'POST',
      headers,
      body: opts.rawBody ?? JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // keep the text: a test will say what it expected
    }
    return { status: res.status, body: parsed };
  };

  return {
    node,
    port,
    url,
    httpUrl,
    secret,
    apiKey,
    api,
    token: (user, opts = {}) => signConnectionToken({ ...opts, secret, user }),
    subToken: (user, channel, opts = {}) => signSubscriptionToken({ ...opts, secret, user, channel }),
    close: () => {
      closing ??= (async () => {
        await closeClientsOf(`ws://127.0.0.1:${port}/`);
        await node.shutdown();
      })();
      return closing;
    },
  };
}

// ---------------------------------------------------------------- raw client

/** WireClientInfo is a ClientInfo as it travels in JSON. */
export interface WireClientInfo {
  user: string;
  client: string;
  conn_info?: unknown;
  chan_info?: unknown;
}

/** WirePublication is a publication as it travels in JSON. */
export interface WirePublication {
  data: unknown;
  info?: WireClientInfo;
  offset?: number;
  tags?: Record<string, string>;
}

/** WireSubscribeResult is a subscribe result as it travels in JSON. */
export interface WireSubscribeResult {
  expires?: boolean;
  ttl?: number;
  recoverable?: boolean;
  epoch?: string;
  publications?: WirePublication[];
  recovered?: boolean;
  offset?: number;
  positioned?: boolean;
  data?: unknown;
  was_recovering?: boolean;
}

/** ServerMessage is one protocol message from the server: a reply or a push. */
export interface ServerMessage {
  id?: number;
  error?: { code: number; message: string; temporary?: boolean };
  push?: {
    channel?: string;
    pub?: WirePublication;
    join?: { info: WireClientInfo };
    leave?: { info: WireClientInfo };
    unsubscribe?: { code: number; reason: string };
    subscribe?: WireSubscribeResult;
    message?: { data: unknown };
    refresh?: { expires: boolean; ttl: number };
    disconnect?: { code: number; reason: string };
  };
  connect?: {
    client: string;
    version: string;
    expires?: boolean;
    ttl?: number;
    subs?: Record<string, WireSubscribeResult>;
    ping?: number;
    pong?: boolean;
    node?: string;
  };
  subscribe?: WireSubscribeResult;
  history?: { publications?: WirePublication[]; offset?: number; epoch?: string };
  presence?: { presence: Record<string, WireClientInfo> };
  presence_stats?: { num_clients: number; num_users: number };
  rpc?: { data?: unknown };
  refresh?: { client: string; expires?: boolean; ttl?: number };
  [key: string]: unknown;
}

/** CloseInfo is how a WebSocket closed. */
export interface CloseInfo {
  code: number;
  reason: string;
}

/** RawClientOptions tune a raw client. */
export interface RawClientOptions {
  /** Answer server pings (`{}`) with pongs. Default true. */
  autoPong?: boolean;
  /** Keep received messages (default true); off for clients that receive megabytes. See also `discardIncoming`. */
  keepMessages?: boolean;
}

/**
 * RawClient is a minimal protocol-level client: it sends frames as given and queues every
 * received message (frames split on newlines, parsed). Server pings are counted, not queued.
 */
export interface RawClient {
  readonly ws: WebSocket;
  readonly url: string;
  /** Received messages not consumed yet by next/waitFor/call. */
  readonly messages: ServerMessage[];
  /** Every text frame received, unsplit, in order. */
  readonly frames: string[];
  /** Server pings received. */
  readonly pings: number;
  /** Resolves when the socket closed, with the close code and reason. */
  readonly closed: Promise<CloseInfo>;
  /** True until the socket closed. */
  readonly open: boolean;
  /** send writes one WebSocket message: a string or bytes as given (text frame), an object as JSON. */
  send(frame: string | Buffer | object, opts?: { binary?: boolean }): void;
  /** next resolves with the next message (consumed). */
  next(ms?: number): Promise<ServerMessage>;
  /** waitFor resolves with (and consumes) the first message `pred` accepts. */
  waitFor(pred: (m: ServerMessage) => boolean, ms?: number, label?: string): Promise<ServerMessage>;
  /** call sends `{id, [method]: body}` with a fresh id and resolves with its reply. */
  call(method: string, body?: object, ms?: number): Promise<ServerMessage>;
  /** connect sends a connect command (with `token` when given) and resolves with its reply. */
  connect(token?: string, extra?: object, ms?: number): Promise<ServerMessage>;
  /** waitClose resolves with the close code and reason, or rejects after `ms`. */
  waitClose(ms?: number): Promise<CloseInfo>;
  /** discardIncoming stops keeping received messages from now on (for clients about to receive megabytes). */
  discardIncoming(): void;
  /** pauseReading stops reading from the TCP socket (a consumer that stopped reading). */
  pauseReading(): void;
  /** resumeReading reads from the TCP socket again. */
  resumeReading(): void;
  /** close terminates the socket at once (no close handshake). */
  close(): void;
}

/**
 * rawClient opens a WebSocket to `url` and resolves once it is open (rejects if the upgrade
 * fails). See {@link RawClient}.
 */
export function rawClient(url: string, opts: RawClientOptions = {}): Promise<RawClient> {
  const autoPong = opts.autoPong ?? true;
  let keep = opts.keepMessages ?? true;
  const ws = new WebSocket(url);
  const messages: ServerMessage[] = [];
  const frames: string[] = [];
  const waiters = new Set<() => void>();
  let pings = 0;
  let open = true;
  let nextId = 1;
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  const closed = new Promise<CloseInfo>((resolve) => {
    ws.on('close', (code: number, reason: Buffer) => {
      open = false;
      openClients.delete(entry);
      resolve({ code, reason: reason.toString('utf8') });
      wake();
    });
  });
  ws.on('error', () => undefined); // close follows; the test looks at the close code
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!keep) return;
    const text = isBinary ? `<binary ${data.length} bytes>` : data.toString('utf8');
    frames.push(text);
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      let msg: ServerMessage;
      try {
        msg = JSON.parse(line) as ServerMessage;
      } catch {
        msg = { unparsed: line };
      }
      if (Object.keys(msg).length === 0) {
        pings++;
        if (autoPong && ws.readyState === WebSocket.OPEN) ws.send('{}');
        continue;
      }
      messages.push(msg);
    }
    wake();
  });

  const waitFor = (pred: (m: ServerMessage) => boolean, ms = 3000, label = 'message'): Promise<ServerMessage> =>
    withTimeout(
      new Promise<ServerMessage>((resolve, reject) => {
        const check = () => {
          const i = messages.findIndex(pred);
          if (i !== -1) {
            waiters.delete(check);
            resolve(messages.splice(i, 1)[0] as ServerMessage);
          } else if (!open) {
            waiters.delete(check);
            reject(new Error(`socket closed while waiting for ${label}`));
          }
        };
        waiters.add(check);
        check();
      }),
      ms,
      label,
    );

  const client: RawClient = {
    ws,
    url,
    messages,
    frames,
    get pings() {
      return pings;
    },
    closed,
    get open() {
      return open;
    },
    send(frame, sendOpts = {}) {
      const payload = typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame);
      ws.send(payload, { binary: sendOpts.binary === true });
    },
    next: (ms) => waitFor(() => true, ms, 'next message'),
    waitFor,
    call(method, body = {}, ms) {
      const id = nextId++;
      client.send({ id, [method]: body });
      return waitFor((m) => m.id === id, ms, `reply to ${method} #${id}`);
    },
    connect(token, extra = {}, ms) {
      return client.call('connect', token === undefined ? extra : { token, ...extra }, ms);
    },
    waitClose: (ms = 3000) => withTimeout(closed, ms, 'close'),
    discardIncoming() {
      keep = false;
    },
    pauseReading() {
      (ws as unknown as { _socket: Socket })._socket.pause();
    },
    resumeReading() {
      (ws as unknown as { _socket: Socket })._socket.resume();
    },
    close() {
      if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
    },
  };
  const entry: Closable = { url, close: () => client.close() };
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      openClients.add(entry);
      resolve(client);
    });
    ws.once('unexpected-response', (_req, res) => {
      reject(new Error(`upgrade refused: HTTP ${res.statusCode ?? 0}`));
      ws.terminate();
    });
    ws.once('error', (err: Error) => reject(err));
  });
}

// ---------------------------------------------------------------- centrifuge client

/**
 * newCentrifuge makes a real `centrifuge` SDK client for `url` with `ws` as its WebSocket and
 * fast reconnects (50–300 ms) unless `opts` says otherwise, in the JSON format or, with
 * `format` protobuf, the SDK's Protobuf build (payloads are bytes). It is not connected yet: call
 * `connect()`. It is disconnected by its server's `close()` if the test did not.
 */
export function newCentrifuge(
  url: string,
  opts: Partial<Options> = {},
  format: 'json' | 'protobuf' = 'json',
): Centrifuge {
  // The SDK's Protobuf build: same API, Protobuf format (payloads are bytes).
  const Sdk = format === 'protobuf' ? (ProtobufCentrifuge as unknown as typeof Centrifuge) : Centrifuge;
  const client = new Sdk(url, {
    websocket: WebSocket,
    minReconnectDelay: 50,
    maxReconnectDelay: 300,
    timeout: 3000,
    ...opts,
  });
  const entry: Closable = {
    url,
    close: () => {
      client.disconnect();
      openClients.delete(entry);
    },
  };
  openClients.add(entry);
  return client;
}

/** connected makes and connects a Centrifuge client and waits until it is connected. */
export async function connected(url: string, opts: Partial<Options> = {}): Promise<Centrifuge> {
  const client = newCentrifuge(url, opts);
  const ready = nextEvent(client, 'connected', 3000);
  client.connect();
  await ready;
  return client;
}

/**
 * connectedAs connects a real Centrifuge client to `srv` as `user` (token signed by the server's
 * secret) and disconnects it when the test `t` ends.
 */
export async function connectedAs(
  srv: TestServer,
  t: { after(fn: () => void): void },
  user: string,
  opts: Partial<Options> = {},
): Promise<Centrifuge> {
  const c = await connected(srv.url, { token: await srv.token(user), ...opts });
  t.after(() => c.disconnect());
  return c;
}
