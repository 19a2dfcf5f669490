/**
 * The retry-storm scenario (incident 4, Halo 4's launch: a client bug sent 10× the expected
 * requests to one API, the storage behind it throttled, and the client retried every failure
 * three times; a kill switch on the API stopped the bleeding).
 *
 * Players, each on its own connection with its own JWT, call RPCs that Bulwark proxies to one
 * game backend (an {@link RpcOrigin} with a fixed capacity that queues, then throttles with
 * 503, and keeps working on calls whose caller gave up):
 * - everyone's normal gameplay calls `match.state` every `interval` (jittered ±50 %), without
 *   retries;
 * - the buggy build (`--buggy-percent` of the players) also calls `inbox.sync` at
 *   `buggy-factor`× that rate from the storm's start, and retries each failed call
 *   `retries` times at once, whatever the error (the incident's client bug);
 * - both methods go to the same backend target (`rpc.proxy`), as the incident's broken API
 *   shared its storage with the rest of the service.
 *
 * The origin is provisioned at 1.6× the normal load. The storm's first attempts bring a second
 * normal load (10 % of the players at 10×): 133 % of capacity, and every failure is sent again
 * up to 3 times (up to 333 %). Bulwark runs a connection's commands one at a time, so a buggy
 * player has at most one call at the backend and the rest wait in its session: the origin is
 * overrun when the buggy players' calls in flight exceed what it holds (workers + queue), and
 * its quick 503s come back as quick retries.
 *
 * Variants, each on a fresh Bulwark and a fresh origin: `unprotected` (rate limits, shedding,
 * breaker and the proxy concurrency limit off), `defaults` (Bulwark as shipped), `tuned`
 * (per-connection rpc rate limit sized to the game, proxy limits sized to the backend) and
 * `kill-switch` (proxy sized to the backend, generic rate limits; mid-storm the operator sets
 * `kill_switch_set {kind: rpc, target: inbox.sync}` through the server API).
 *
 * Measured per window (calls are assigned to a window by send time): well-behaved players'
 * success, goodput and latency of successful calls; the buggy feature's attempts and outcomes;
 * what the origin was offered (arrivals per second against its capacity) and what it throttled.
 *
 * @module
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { RpcClient } from '../../load/rpc-client.js';
import { fetchMetrics, metricSeries, ServerApi } from '../../harness/api.js';
import { fmt } from '../../harness/format.js';
import { reconnectDelayMs, shouldRetry, type CallOutcome, type RetryPolicy } from '../../load/retry-policy.js';
import { methodOf, RpcOrigin, type OriginArrival } from '../../servers/rpc-origin.js';
import { type ScenarioContext, type Log } from '../../harness/scenario.js';
import { onFreshBulwark, type RunningServer } from '../../harness/targets.js';
import { Timeline } from '../../harness/timeline.js';
import { mapLimit, round, sleep, waitFor } from '../../harness/util.js';
import { sizedProxy } from './options.js';
import {
  windowIndex,
  addOutcome,
  windowsOf,
  newWindowTally,
  originQueueOf,
  buggyCount,
  isBuggy,
  pct,
  summarizeWindow,
} from './plan.js';
import {
  type VariantName,
  type RetryStormOptions,
  type Window,
  type WindowTally,
  FEATURE_METHOD,
  type VariantResult,
  GAME_METHOD,
} from './types.js';

// ---------------------------------------------------------------- the load model (pure)

// ---------------------------------------------------------------- windows (pure)

// ---------------------------------------------------------------- accounting (pure)

// ---------------------------------------------------------------- Bulwark configs

/** variantConfig is the Bulwark config of a variant (without the proxy endpoint). */
export function variantConfig(v: VariantName, o: RetryStormOptions): Record<string, unknown> {
  switch (v) {
    case 'unprotected':
      return {
        protection: {
          rate_limit: { connection: { rpc: { rate: 0 } }, user: { rpc: { rate: 0 } } },
          shedding: { enabled: false },
        },
        proxy: { max_concurrent: 100_000, max_queue: 0, adaptive: { enabled: false }, breaker: { failure_rate: 0 } },
      };
    case 'defaults':
      return {};
    case 'tuned':
      return {
        protection: { rate_limit: { connection: { rpc: { rate: o.rpcRate, burst: o.rpcBurst } } } },
        proxy: sizedProxy(o),
      };
    case 'kill-switch':
      return { proxy: sizedProxy(o) };
  }
}

// ---------------------------------------------------------------- running a variant

/** A player: one connection, reconnecting with the SDK's backoff when closed. */
export interface Player {
  user: string;
  buggy: boolean;
  client: RpcClient | undefined;
  connected: boolean;
  reconnectAttempt: number;
  timers: Set<NodeJS.Timeout>;
}

/** Rig is a variant's run in progress. */
export interface Rig {
  server: RunningServer;
  windows: Window[];
  tallies: WindowTally[];
  timeline: Timeline;
  t0: number;
  /** Load is being generated (schedules and retries run). */
  running: boolean;
  /** Teardown: closes are expected. */
  closing: boolean;
  disconnects: { good: Record<string, number>; buggy: Record<string, number> };
  reconnects: number;
  policy: RetryPolicy;
}

export const elapsed = (rig: Rig) => performance.now() - rig.t0;

export function later(p: Player, ms: number, fn: () => void): void {
  const t = setTimeout(() => {
    p.timers.delete(t);
    fn();
  }, ms);
  p.timers.add(t);
}

/** connectPlayer opens a connection for `p`; closes after it connected count as disconnects and reconnect. */
export async function connectPlayer(rig: Rig, p: Player): Promise<void> {
  const c: RpcClient = new RpcClient(rig.server.wsUrl, (code) => onClosed(rig, p, c, code));
  p.client = c;
  p.connected = false;
  try {
    await c.connect(p.user, rig.server.tokenSecret);
  } catch (err) {
    c.terminate();
    throw err;
  }
  p.connected = true;
}

/** Connect attempts per player at the start (an SDK keeps trying; admission may refuse some while the node is busy). */
export const INITIAL_CONNECT_ATTEMPTS = 8;

/** connectWithRetries connects `p` before the load starts, retrying with the SDK's backoff. */
export async function connectWithRetries(rig: Rig, p: Player): Promise<void> {
  for (let n = 0; ; n++) {
    try {
      await connectPlayer(rig, p);
      return;
    } catch (err) {
      if (n + 1 >= INITIAL_CONNECT_ATTEMPTS) throw err;
      await sleep(reconnectDelayMs(n, Math.random()));
    }
  }
}

export function onClosed(rig: Rig, p: Player, c: RpcClient, code: number): void {
  if (p.client !== c || rig.closing) return;
  if (p.connected) {
    const d = p.buggy ? rig.disconnects.buggy : rig.disconnects.good;
    d[code] = (d[code] ?? 0) + 1;
    rig.timeline.count(p.buggy ? 'buggy.disconnect' : 'good.disconnect');
  }
  p.client = undefined;
  p.connected = false;
  if (!rig.running) return;
  later(p, reconnectDelayMs(p.reconnectAttempt++, Math.random()), () => {
    if (!rig.running || rig.closing) return;
    connectPlayer(rig, p).then(
      () => {
        p.reconnectAttempt = 0;
        rig.reconnects++;
      },
      () => undefined, // the close handler schedules the next attempt
    );
  });
}

export type CallKind = 'good' | 'buggyGame' | 'feature';

/** attempt sends attempt number `n` of a call and accounts for it; the buggy feature retries. */
export function attempt(rig: Rig, p: Player, method: string, data: string, n: number): void {
  const kind: CallKind = !p.buggy ? 'good' : method === FEATURE_METHOD ? 'feature' : 'buggyGame';
  const wi = windowIndex(elapsed(rig), rig.windows);
  const tally = wi >= 0 ? rig.tallies[wi] : undefined;
  if (kind === 'feature') {
    rig.timeline.count('feature.attempt');
    if (n === 0 && tally) tally.featureCalls++;
  }
  const record = (outcome: CallOutcome, latencyMs: number): void => {
    if (tally) addOutcome(tally[kind], outcome);
    if (kind === 'good') {
      if (outcome === 0) {
        tally?.goodLatency.add(latencyMs);
        rig.timeline.count('good.ok');
        rig.timeline.sample('good.latency', latencyMs);
      } else rig.timeline.count('good.failed');
    }
  };
  const sent = p.client?.send(method, data, (outcome, latencyMs) => {
    record(outcome, latencyMs);
    if (kind === 'feature' && rig.running && shouldRetry(outcome, n, rig.policy)) attempt(rig, p, method, data, n + 1);
  });
  if (!sent) record('offline', 0);
}

/**
 * every calls `fire` for player `p` from `fromMs` (plus a random phase) to `toMs` after the
 * load started, at intervals of `periodMs` jittered ±50 %. Times are planned from the schedule,
 * not from when a timer ran, so a late load generator does not lower the offered rate.
 */
export function every(rig: Rig, p: Player, periodMs: number, fromMs: number, toMs: number, fire: () => void): void {
  let next = fromMs + Math.random() * periodMs;
  const arm = () => {
    if (next >= toMs) return;
    later(p, Math.max(0, next - elapsed(rig)), () => {
      if (!rig.running) return;
      fire();
      next += periodMs * (0.5 + Math.random());
      arm();
    });
  };
  arm();
}

/** How often the proxy's concurrency limit is read from /metrics during a run (ms). */
export const LIMIT_POLL_MS = 500;

/** runVariant runs one variant on a fresh origin and Bulwark, and always tears both down. */
export async function runVariant(
  ctx: ScenarioContext,
  o: RetryStormOptions,
  v: VariantName,
): Promise<{
  result: VariantResult;
  timeline: Timeline;
}> {
  const log: Log = ctx.log;
  const killSwitch = v === 'kill-switch';
  const windows = windowsOf(o, killSwitch);
  const tallies = windows.map(() => newWindowTally());
  const timeline = new Timeline(500);
  let t0 = performance.now();
  const onArrival = ({ atMs, method, fate }: OriginArrival) => {
    const t = atMs - t0;
    timeline.count('origin.arrival');
    if (fate === 'throttle') timeline.count('origin.throttled');
    const wi = windowIndex(t, windows);
    const tally = wi >= 0 ? tallies[wi] : undefined;
    if (!tally) return;
    tally.originByMethod[method] = (tally.originByMethod[method] ?? 0) + 1;
    if (fate === 'throttle') tally.originThrottled++;
  };
  const origin = await RpcOrigin.start({
    workers: o.originWorkers,
    serviceMs: o.originServiceMs,
    queueLimit: originQueueOf(o),
    answer: (req) => ({ result: { data: { method: methodOf(req), ok: true } } }),
    onArrival,
  });
  const capacity = origin.capacity;
  const config = variantConfig(v, o);
  const bulwarkConfig = {
    ...config,
    rpc: { proxy: { endpoint: `${origin.url}/rpc` }, without_namespace: { proxy_enabled: true } },
  };
  try {
    const out = await onFreshBulwark(ctx.bulwark, bulwarkConfig, `retry-storm / ${v}`, log, async (server) => {
      const rig: Rig = {
        server,
        windows,
        tallies,
        timeline,
        t0,
        running: false,
        closing: false,
        disconnects: { good: {}, buggy: {} },
        reconnects: 0,
        policy: { retries: o.retries },
      };
      const nBuggy = buggyCount(o.clients, o.buggyPercent);
      const players: Player[] = Array.from({ length: o.clients }, (_, i) => ({
        user: `player-${i}`,
        buggy: isBuggy(i, o.clients, nBuggy),
        client: undefined,
        connected: false,
        reconnectAttempt: 0,
        timers: new Set(),
      }));
      const api = new ServerApi(server);
      const lag = monitorEventLoopDelay({ resolution: 10 });
      const timers: { sweeper?: NodeJS.Timeout; killSwitch?: NodeJS.Timeout; limit?: NodeJS.Timeout } = {};
      const limitSeries: [number, number][] = [];
      try {
        ctx.progress.begin(`retry-storm / ${v}: connecting`);
        const failures: string[] = [];
        let connected = 0;
        await mapLimit(
          players.length,
          o.connectConcurrency,
          async (i) => {
            await connectWithRetries(rig, players[i] as Player);
            ctx.progress.update(++connected / players.length, `${fmt(connected)} players connected`);
          },
          (_i, err) => failures.push((err as Error).message),
        );
        if (failures.length) {
          throw new Error(`${failures.length}/${players.length} players failed to connect; first: ${failures[0]}`);
        }
        const stormAt = o.warmupSeconds * 1000;
        const endAt = stormAt + o.seconds * 1000;
        ctx.progress.begin(`retry-storm / ${v}`);
        lag.enable();
        rig.t0 = t0 = performance.now();
        timeline.restart(t0);
        rig.running = true;
        players.forEach((p, i) => {
          const gameData = `{"match":${i % 64}}`;
          every(rig, p, o.intervalMs, 0, endAt, () => attempt(rig, p, GAME_METHOD, gameData, 0));
          if (p.buggy) {
            every(rig, p, o.intervalMs / o.buggyFactor, stormAt, endAt, () =>
              attempt(rig, p, FEATURE_METHOD, '{"report":"suspicious"}', 0),
            );
          }
        });
        let switchAtSeconds: number | undefined;
        if (killSwitch) {
          const switchAt = stormAt + o.switchAfterSeconds * 1000;
          timers.killSwitch = setTimeout(
            () => {
              api
                .call(
                  'kill_switch_set',
                  JSON.stringify({ kind: 'rpc', target: FEATURE_METHOD, reason: 'inbox.sync off: client bug' }),
                )
                .then(
                  () => {
                    switchAtSeconds = round(elapsed(rig) / 1000, 2);
                  },
                  (err: unknown) => log(`  kill_switch_set failed: ${(err as Error).message}`),
                );
            },
            Math.max(0, switchAt - elapsed(rig)),
          );
        }
        // The proxy's concurrency limit as /metrics shows it (adaptive: where it settles).
        timers.limit = setInterval(() => {
          const at = round(elapsed(rig) / 1000, 2);
          fetchMetrics(server, 2000).then(
            (text) => {
              const limit = metricSeries(text, 'bulwark_proxy_concurrency_limit', 'target').get('rpc.proxy');
              if (limit !== undefined) limitSeries.push([at, limit]);
            },
            () => undefined,
          );
        }, LIMIT_POLL_MS);
        timers.sweeper = setInterval(() => {
          const now = performance.now();
          for (const p of players) p.client?.expire(now, o.callTimeoutMs);
          const t = now - t0;
          const wi = windowIndex(t, windows);
          const w = wi >= 0 ? (tallies[wi] as WindowTally) : undefined;
          const phase = w ? (windows[wi] as Window).name : 'ending';
          const goodOk = w ? pct(w.good.outcomes.ok ?? 0, w.good.attempts) : Number.NaN;
          ctx.progress.update(
            Math.min(1, t / endAt),
            `${phase}: well-behaved ok ${fmt(goodOk, 1)}%, origin in flight ${origin.inFlight}`,
          );
        }, 100);
        await waitFor(() => elapsed(rig) >= endAt, endAt + 5000, 50);
        // Stop sending (and retrying); replies to calls in flight are still accounted.
        rig.running = false;
        for (const p of players) for (const t of p.timers) clearTimeout(t);
        await waitFor(() => players.every((p) => (p.client?.pending ?? 0) === 0), o.callTimeoutMs + 1000, 50);
        if (killSwitch && switchAtSeconds === undefined) throw new Error('the kill switch was never set');
        const server_ = await fetchMetrics(server).then(
          (text) => ({
            protectedCalls: Object.fromEntries(metricSeries(text, 'bulwark_proxy_protected_calls_total', 'outcome')),
            rejections: Object.fromEntries(metricSeries(text, 'bulwark_rejections_total', 'reason')),
            lagP99Ms: round((metricSeries(text, 'bulwark_event_loop_lag_p99_seconds').get('') ?? Number.NaN) * 1000, 1),
          }),
          () => undefined,
        );
        return {
          rig,
          switchAtSeconds,
          server: server_,
          loadgenLagP99Ms: round(lag.percentile(99) / 1e6, 1),
          limitSeries,
        };
      } finally {
        rig.running = false;
        rig.closing = true;
        lag.disable();
        clearInterval(timers.sweeper);
        clearInterval(timers.limit);
        clearTimeout(timers.killSwitch);
        for (const p of players) {
          for (const t of p.timers) clearTimeout(t);
          p.client?.terminate();
        }
        api.close();
        ctx.progress.end();
      }
    });
    const result: VariantResult = {
      variant: v,
      config,
      windows: windows.map((w, i) => summarizeWindow(w, tallies[i] as WindowTally, capacity)),
      disconnects: out.rig.disconnects,
      reconnects: out.rig.reconnects,
      origin: origin.stats(),
      ...(out.switchAtSeconds !== undefined ? { switchAtSeconds: out.switchAtSeconds } : {}),
      ...(out.server
        ? { server: { protectedCalls: out.server.protectedCalls, rejections: out.server.rejections } }
        : {}),
      runSeconds: 0,
      proxyLimit: out.limitSeries,
      lagP99Ms: { loadgen: out.loadgenLagP99Ms, server: out.server?.lagP99Ms ?? Number.NaN },
    };
    return { result, timeline };
  } finally {
    await origin.close();
  }
}

// ---------------------------------------------------------------- report

// ---------------------------------------------------------------- the scenario
