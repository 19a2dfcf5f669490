/**
 * Prometheus metrics of one node, on a registry of its own (several nodes in one process,
 * as in tests or an embedding game backend, never collide).
 *
 * @module
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DeferredCounter, DeferredHistogram, type CounterChild, type HistogramChild } from './util/deferred-metrics.js';
import { throttleConnectionSizedCollectors } from './util/throttled-collectors.js';

/** Latency buckets of commands (seconds): a cached reply to a slow backend proxy call. */
const durationBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Metrics holds every metric a node exports at /metrics. */
export class Metrics {
  readonly registry = new Registry();
  readonly connections: Gauge;
  readonly connectionsOpened: Counter;
  readonly connectionsClosed: Counter;
  readonly subscriptions: Gauge;
  readonly commands: DeferredCounter<'method' | 'result'>;
  readonly apiCommands: DeferredCounter<'method' | 'result'>;
  readonly publications: DeferredCounter<'source'>;
  readonly publicationsSuppressed: Counter<'reason'>;
  readonly variantDeliveries: Counter<'variant'>;
  readonly mapWrites: Counter<'op' | 'from'>;
  readonly mapSuppressed: Counter<'reason'>;
  readonly deliveries: Counter;
  readonly recoveries: Counter<'result'>;
  readonly disconnects: Counter<'code'>;
  readonly rejections: Counter<'reason'>;
  readonly slowDisconnects: Counter;
  readonly eventLoopLag: Gauge;
  readonly shedding: Gauge<'level'>;
  readonly sheddingTransitions: Counter<'level'>;
  readonly killSwitches: Gauge;
  readonly engineUp: Gauge;
  /** The outbox consumer (docs/OUTBOX.md). */
  readonly outbox: {
    readonly lag: Gauge;
    readonly published: Counter;
    readonly quarantined: Counter<'reason'>;
    readonly failures: Counter<'reason'>;
    readonly paused: Gauge<'reason'>;
  };
  /** The JetStream consumer (docs/JETSTREAM.md). */
  readonly jetstream: {
    readonly pending: Gauge;
    readonly published: Counter;
    readonly terminated: Counter<'reason'>;
    readonly failures: Counter<'reason'>;
    readonly paused: Gauge<'reason'>;
  };
  readonly proxyCalls: Counter<'proxy' | 'target' | 'result'>;
  readonly proxyProtection: Counter<'target' | 'outcome'>;
  readonly proxyBreakerOpen: Gauge<'target'>;
  readonly proxyConcurrencyLimit: Gauge<'target'>;
  readonly rpcCache: Gauge<'method' | 'stat'>;
  readonly rpcCacheShared: Gauge<'stat'>;
  readonly admissionOpen: Gauge;
  readonly admissionLimit: Gauge;
  readonly httpPendingSockets: Gauge;
  readonly httpSocketsClosed: Counter<'reason'>;
  readonly transportConnections: Counter<'transport'>;
  readonly emulationRequests: Counter<'result'>;
  #httpPendingSource: (() => number) | undefined;
  #admissionSource: (() => { open: number; limit: number }) | undefined;
  #drainingSource: (() => boolean) | undefined;
  readonly draining: Gauge;
  #rpcCacheSource: (() => void) | undefined;
  readonly proxyDuration: Histogram<'proxy' | 'target'>;
  readonly commandDuration: DeferredHistogram<'method'>;
  readonly apiCommandDuration: DeferredHistogram<'method'>;
  readonly #durationChildren = new Map<string, HistogramChild>();
  readonly #histogram: IntervalHistogram;
  /**
   * Bound counters per label value: prom-client hashes the label set on every inc(), which
   * costs more than a refused command itself under a storm of refusals. Client and API
   * commands' (keyed `c…`, `a…`) and publications' are deferred (util/deferred-metrics.ts).
   */
  readonly #commandChildren = new Map<string, CounterChild>();
  /** Per API method: one lookup per call (issue 18). */
  readonly #apiChildren = new Map<string, Record<'ok' | 'error', CounterChild> & { time: HistogramChild }>();
  /** bulwark_publications_total of the two sources every publish counts in (no lookup per publish). */
  readonly #published: Record<'api' | 'client', CounterChild>;
  readonly #rejectionChildren = new Map<string, { inc(): void }>();
  readonly #httpClosedChildren = new Map<string, { inc(): void }>();

  constructor(nodeName: string) {
    const r = this.registry;
    r.setDefaultLabels({ node: nodeName });
    // Under their stock names (process_cpu_seconds_total, nodejs_eventloop_lag_seconds, …), so
    // the usual Node.js dashboards work unchanged.
    collectDefaultMetrics({ register: r });
    throttleConnectionSizedCollectors(r);
    const registers = [r];
    this.connections = new Gauge({ name: 'bulwark_connections', help: 'Connected clients.', registers });
    this.connectionsOpened = new Counter({
      name: 'bulwark_connections_opened_total',
      help: 'Transport connections accepted.',
      registers,
    });
    this.connectionsClosed = new Counter({
      name: 'bulwark_connections_closed_total',
      help: 'Transport connections closed.',
      registers,
    });
    this.subscriptions = new Gauge({ name: 'bulwark_subscriptions', help: 'Client subscriptions.', registers });
    this.commands = new DeferredCounter({
      name: 'bulwark_client_commands_total',
      help: 'Client protocol commands by method and result (ok, error, disconnect).',
      labelNames: ['method', 'result'],
      registers,
    });
    this.apiCommands = new DeferredCounter({
      name: 'bulwark_api_commands_total',
      help: 'Server API commands by method and result.',
      labelNames: ['method', 'result'],
      registers,
    });
    this.publications = new DeferredCounter({
      name: 'bulwark_publications_total',
      help: 'Publications accepted, by source (client, api, outbox, jetstream).',
      labelNames: ['source'],
      registers,
    });
    this.#published = {
      api: this.publications.child({ source: 'api' }),
      client: this.publications.child({ source: 'client' }),
    };
    this.publicationsSuppressed = new Counter({
      name: 'bulwark_publications_suppressed_total',
      help: 'Publishes not published, by reason (idempotency: a repeated idempotency_key; version: not newer than the channel).',
      labelNames: ['reason'],
      registers,
    });
    this.mapWrites = new Counter({
      name: 'bulwark_map_writes_total',
      help: 'Map channel writes applied, by operation (publish, remove) and source (client, api, presence).',
      labelNames: ['op', 'from'],
      registers,
    });
    this.mapSuppressed = new Counter({
      name: 'bulwark_map_writes_suppressed_total',
      help: 'Map channel writes that changed nothing, by reason (key_exists, key_not_found, position_mismatch, version, idempotency).',
      labelNames: ['reason'],
      registers,
    });
    this.variantDeliveries = new Counter({
      name: 'bulwark_variant_deliveries_total',
      help: 'Deliveries of publications with variants, by the payload sent: default (the data) or the variant index.',
      labelNames: ['variant'],
      registers,
    });
    this.deliveries = new Counter({
      name: 'bulwark_deliveries_total',
      help: 'Publications handed to subscribers.',
      registers,
    });
    this.recoveries = new Counter({
      name: 'bulwark_recoveries_total',
      help: 'Subscribe recoveries by result (recovered, not_recovered).',
      labelNames: ['result'],
      registers,
    });
    this.disconnects = new Counter({
      name: 'bulwark_disconnects_total',
      help: 'Disconnects by protocol code (3000: closed by the client or network).',
      labelNames: ['code'],
      registers,
    });
    this.rejections = new Counter({
      name: 'bulwark_rejections_total',
      help: 'Requests refused by a limit, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.slowDisconnects = new Counter({
      name: 'bulwark_slow_disconnects_total',
      help: 'Clients disconnected because their write queue exceeded client.queue_max_size.',
      registers,
    });
    this.shedding = new Gauge({
      name: 'bulwark_shedding',
      help: 'Load shedding level on (1) or off (0): connect (new connections refused), read (history, presence, rpc refused).',
      labelNames: ['level'],
      registers,
    });
    this.shedding.set({ level: 'connect' }, 0);
    this.shedding.set({ level: 'read' }, 0);
    this.sheddingTransitions = new Counter({
      name: 'bulwark_shedding_started_total',
      help: 'Times a load shedding level turned on.',
      labelNames: ['level'],
      registers,
    });
    this.killSwitches = new Gauge({ name: 'bulwark_kill_switches', help: 'Kill switches on.', registers });
    this.engineUp = new Gauge({
      name: 'bulwark_engine_up',
      help: 'The engine (Redis) is reachable (1) or not (0); the memory engine is always 1.',
      registers,
    });
    this.engineUp.set(1);
    this.outbox = {
      lag: new Gauge({
        name: 'bulwark_outbox_lag_seconds',
        help: 'Age of the oldest outbox row waiting to be published (0 when none), as this node last saw it.',
        registers,
      }),
      published: new Counter({
        name: 'bulwark_outbox_published_total',
        help: 'Outbox rows this node published (a replay the idempotency key suppressed included) and deleted.',
        registers,
      }),
      quarantined: new Counter({
        name: 'bulwark_outbox_quarantined_total',
        help: 'Outbox rows quarantined, by reason (bad_channel, bad_data, too_large, publish_failed).',
        labelNames: ['reason'],
        registers,
      }),
      failures: new Counter({
        name: 'bulwark_outbox_failures_total',
        help: 'Outbox failures, by reason (engine: a publish failed as unavailable or outcome unknown, retried; publish: another publish error, counted as an attempt; database: the outbox database failed).',
        labelNames: ['reason'],
        registers,
      }),
      paused: new Gauge({
        name: 'bulwark_outbox_paused',
        help: 'The outbox consumer is paused (1), by reason (shedding: the node sheds load; not_ready: its engine is not ready or it is draining).',
        labelNames: ['reason'],
        registers,
      }),
    };
    this.jetstream = {
      pending: new Gauge({
        name: 'bulwark_jetstream_pending',
        help: 'Messages of the stream the JetStream consumer has not yet been handed (its lag), as this node last saw it.',
        registers,
      }),
      published: new Counter({
        name: 'bulwark_jetstream_published_total',
        help: 'JetStream messages this node published (a redelivery the idempotency key suppressed included) and acknowledged.',
        registers,
      }),
      terminated: new Counter({
        name: 'bulwark_jetstream_terminated_total',
        help: 'JetStream messages terminated (never redelivered), by reason (bad_data, bad_channel, too_large, publish_failed).',
        labelNames: ['reason'],
        registers,
      }),
      failures: new Counter({
        name: 'bulwark_jetstream_failures_total',
        help: 'JetStream consumer failures, by reason (engine: a publish failed as unavailable, retried; publish: another publish error, counted as an attempt; nats: NATS or the stream failed).',
        labelNames: ['reason'],
        registers,
      }),
      paused: new Gauge({
        name: 'bulwark_jetstream_paused',
        help: 'The JetStream consumer is paused (1), by reason (shedding: the node sheds load; not_ready: its engine is not ready or it is draining).',
        labelNames: ['reason'],
        registers,
      }),
    };
    this.proxyProtection = new Counter({
      name: 'bulwark_proxy_protected_calls_total',
      help: 'Backend calls through the protections, by target and outcome (ok, timeout, overloaded, circuit_open, killed, origin_error).',
      labelNames: ['target', 'outcome'],
      registers,
    });
    this.proxyBreakerOpen = new Gauge({
      name: 'bulwark_proxy_breaker_open',
      help: 'Circuit breaker of a backend target: 0 closed, 1 open or half-open (probing).',
      labelNames: ['target'],
      registers,
    });
    this.proxyConcurrencyLimit = new Gauge({
      name: 'bulwark_proxy_concurrency_limit',
      help: 'Concurrency limit of a backend target now: the adaptive limit (proxy.adaptive), or proxy.max_concurrent when it is off.',
      labelNames: ['target'],
      registers,
    });
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- read in prom-client's collect callback
    const self = this;
    this.rpcCache = new Gauge({
      name: 'bulwark_rpc_cache',
      help: 'Cacheable RPC counters by method: hits, negativeHits, misses, coalesced, staleServes, originCalls, originErrors, evictions, size.',
      labelNames: ['method', 'stat'],
      registers,
      collect() {
        self.#rpcCacheSource?.();
      },
    });
    // Read at scrape from the admission itself: nothing on the connect path.
    this.draining = new Gauge({
      name: 'bulwark_draining',
      help: '1 while this node drains (drain API method or shutdown): it refuses new connections and disconnects its clients.',
      registers,
      collect() {
        this.set(self.#drainingSource?.() === true ? 1 : 0);
      },
    });
    this.admissionOpen = new Gauge({
      name: 'bulwark_admission_connections',
      help: 'WebSocket connections admission counts against client.connection_limit (accepted, not closed yet, authenticated or not).',
      registers,
      collect() {
        const a = self.#admissionSource?.();
        if (a) this.set(a.open);
      },
    });
    this.admissionLimit = new Gauge({
      name: 'bulwark_admission_connection_limit',
      help: 'The connection limit admission enforces: client.connection_limit, or what the open-file limit holds; 0: none.',
      registers,
      collect() {
        const a = self.#admissionSource?.();
        if (a) this.set(a.limit);
      },
    });
    this.httpPendingSockets = new Gauge({
      name: 'bulwark_http_pending_sockets',
      help: 'HTTP connections that have not finished a request (new, or kept alive between requests): admission counts them with the WebSockets against what the open-file limit holds.',
      registers,
      collect() {
        const n = self.#httpPendingSource?.();
        if (n !== undefined) this.set(n);
      },
    });
    this.transportConnections = new Counter({
      name: 'bulwark_transport_connections_total',
      help: 'Client connections accepted, by transport (websocket, http_stream, sse, uni_http_stream, uni_sse).',
      labelNames: ['transport'],
      registers,
    });
    this.emulationRequests = new Counter({
      name: 'bulwark_emulation_requests_total',
      help: 'Requests to /emulation by result: delivered (to a session here), relayed (to its node), unknown_session (dropped), unknown_node (404), bad_request (400), too_large (413), relay_failed (503).',
      labelNames: ['result'],
      registers,
    });
    this.httpSocketsClosed = new Counter({
      name: 'bulwark_http_sockets_closed_total',
      help: 'HTTP connections closed before their request was complete, by reason: headers_timeout (http_server.headers_timeout, 408), request_timeout (http_server.request_timeout, 408), fd_pressure (the longest-waiting ones, closed so the open-file limit is never reached).',
      labelNames: ['reason'],
      registers,
    });
    this.rpcCacheShared = new Gauge({
      name: 'bulwark_rpc_cache_shared',
      help: "The RPC cache's shared Redis tier on this node (Redis engine only): sharedHits, sharedMisses, lockWaits, waitTimeouts (waits for another node's load that ran out; this node then called the backend itself), redisErrors, fallbacks (backend calls made because Redis failed).",
      labelNames: ['stat'],
      registers,
    });
    this.proxyCalls = new Counter({
      name: 'bulwark_proxy_calls_total',
      help: 'Proxy calls to the backend by event (connect, refresh, subscribe, publish, sub_refresh, rpc), target (config path or proxies[] name) and result (ok, error, disconnect: answered by the backend; timeout, unavailable, http_error, malformed, rejected: failed, the client got error 100 temporary).',
      labelNames: ['proxy', 'target', 'result'],
      registers,
    });
    this.commandDuration = new DeferredHistogram({
      name: 'bulwark_client_command_duration_seconds',
      help: 'Duration of client commands by method, from decoding to the reply (errors included).',
      labelNames: ['method'],
      buckets: durationBuckets,
      registers,
    });
    this.apiCommandDuration = new DeferredHistogram({
      name: 'bulwark_api_command_duration_seconds',
      help: 'Duration of server API calls by method, from the parsed body to the answer (errors included).',
      labelNames: ['method'],
      buckets: durationBuckets,
      registers,
    });
    this.proxyDuration = new Histogram({
      name: 'bulwark_proxy_call_duration_seconds',
      help: 'Duration of proxy calls to the backend (guard queueing included), by event and target.',
      labelNames: ['proxy', 'target'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    // Event-loop lag as p99 of the last scrape interval: the one number that says "overloaded".
    this.#histogram = monitorEventLoopDelay({ resolution: 10 });
    this.#histogram.enable();
    const histogram = this.#histogram;
    this.eventLoopLag = new Gauge({
      name: 'bulwark_event_loop_lag_p99_seconds',
      help: 'p99 event-loop delay since the previous scrape.',
      registers,
      collect() {
        this.set(histogram.percentile(99) / 1e9);
        histogram.reset();
      },
    });
  }

  /**
   * command counts one client command by method and result and, given when it started
   * (performance.now()), observes its duration.
   */
  command(method: string, result: 'ok' | 'error' | 'disconnect', startedAt?: number): void {
    this.#count(this.commands, `c${method}\u0000${result}`, { method, result });
    if (startedAt !== undefined) this.#observe(this.commandDuration, 'c', method, startedAt);
  }

  /** apiCommand counts one server API call by method and result, and its duration since `startedAt` (performance.now()). */
  apiCommand(method: string, result: 'ok' | 'error', startedAt: number): void {
    let m = this.#apiChildren.get(method);
    if (m === undefined) {
      const [c, h] = [this.apiCommands, this.apiCommandDuration];
      m = {
        ok: c.child({ method, result: 'ok' }),
        error: c.child({ method, result: 'error' }),
        time: h.child({ method }),
      };
      this.#apiChildren.set(method, m);
    }
    m[result].inc();
    m.time.observe((performance.now() - startedAt) / 1000);
  }

  /** published counts one publication accepted from `source` (bulwark_publications_total). */
  published(source: 'api' | 'client'): void {
    this.#published[source].inc();
  }

  #count<T extends string>(c: DeferredCounter<T>, key: string, labels: Record<T, string>): void {
    let child = this.#commandChildren.get(key);
    if (child === undefined) this.#commandChildren.set(key, (child = c.child(labels)));
    child.inc();
  }

  #observe(h: DeferredHistogram<'method'>, kind: string, method: string, startedAt: number): void {
    const key = `${kind}${method}`;
    let child = this.#durationChildren.get(key);
    if (child === undefined) this.#durationChildren.set(key, (child = h.child({ method })));
    child.observe((performance.now() - startedAt) / 1000);
  }

  /** reject counts one request refused by a check or limit (bulwark_rejections_total{reason}). */
  reject(reason: string): void {
    let child = this.#rejectionChildren.get(reason);
    if (child === undefined) this.#rejectionChildren.set(reason, (child = this.rejections.labels({ reason })));
    child.inc();
  }

  /** httpSocketClosed counts one HTTP connection closed before its request was complete (bulwark_http_sockets_closed_total{reason}). */
  httpSocketClosed(reason: string): void {
    let child = this.#httpClosedChildren.get(reason);
    if (child === undefined) this.#httpClosedChildren.set(reason, (child = this.httpSocketsClosed.labels({ reason })));
    child.inc();
  }

  /** setHttpPendingSource sets what bulwark_http_pending_sockets reads at each scrape. */
  setHttpPendingSource(source: () => number): void {
    this.#httpPendingSource = source;
  }

  /** setRpcCacheSource sets what fills bulwark_rpc_cache at each scrape. */
  setRpcCacheSource(source: () => void): void {
    this.#rpcCacheSource = source;
  }

  /** setRpcCacheStats copies one method's cache counters into bulwark_rpc_cache. */
  setRpcCacheStats(method: string, stats: object): void {
    for (const [stat, value] of Object.entries(stats)) {
      if (typeof value === 'number') this.rpcCache.set({ method, stat }, value);
    }
  }

  /**
   * loopLagP99 is the p99 event-loop delay (seconds) since the last scrape, read without
   * resetting it: the console polls this, and must not shorten Prometheus's window.
   */
  loopLagP99(): number {
    return this.#histogram.percentile(99) / 1e9;
  }

  /** setDrainingSource sets what bulwark_draining reads at each scrape. */
  setDrainingSource(source: () => boolean): void {
    this.#drainingSource = source;
  }

  /** setAdmissionSource sets what bulwark_admission_connections and _connection_limit read at each scrape. */
  setAdmissionSource(source: () => { open: number; limit: number }): void {
    this.#admissionSource = source;
  }

  /** setRpcCacheSharedStats copies the shared tier's counters into bulwark_rpc_cache_shared. */
  setRpcCacheSharedStats(stats: object): void {
    for (const [stat, value] of Object.entries(stats)) {
      if (typeof value === 'number') this.rpcCacheShared.set({ stat }, value);
    }
  }

  /** proxyCall counts one proxy call to the backend and its duration. */
  // Label values as strings: the proxy's observer interface (proxy/http-proxy-client.ts) names
  // them exactly, and metrics, below the proxy, takes whatever it is given.
  proxyCall(kind: string, target: string, result: string, seconds: number): void {
    this.proxyCalls.inc({ proxy: kind, target, result });
    this.proxyDuration.observe({ proxy: kind, target }, seconds);
  }

  /** setNodeName labels every metric with the node's name once it is known (after listen). */
  setNodeName(name: string): void {
    this.registry.setDefaultLabels({ node: name });
  }

  /** close stops background sampling. */
  close(): void {
    this.#histogram.disable();
  }
}
