/**
 * The protected guard: every backend call of the HTTP proxy goes through one
 * {@link ProtectedTarget} per target (a section's own proxy or a named one), so the backend is
 * never the thing Bulwark knocks over (incidents 2 and 4): a `proxy` kill switch, a circuit
 * breaker, and a concurrency limit (adaptive by default, `proxy.adaptive`, with
 * `proxy.max_concurrent` as its ceiling; its value is the gauge
 * `bulwark_proxy_concurrency_limit{target}`) with a bounded queue, all within the deadline the HTTP proxy
 * client set for the call (the proxy's `timeout`, covering the wait for a slot).
 *
 * Refusals and failures come out as the ProxyErrors of errors.ts, unchanged; the HTTP proxy
 * client counts them and answers the client (see clientReply in errors.ts). For the breaker,
 * every failure of the exchange with the backend counts — a timeout, a backend that cannot be
 * reached, any status other than 200, a malformed answer — since a proxy endpoint answers 200
 * whatever it decides (its own errors are in the body).
 *
 * @module
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { KillSwitches } from '../protection/kill-switches.js';
import { OriginError } from './errors.js';
import type { ProxyGuard } from './http-proxy-client.js';
import { ProtectedTarget, type CallOutcome } from './protected-call.js';
import type { ProxyTarget } from './proxies.js';

/** ProtectedGuardMetrics are the metrics the guard keeps (implemented by Metrics). */
export interface ProtectedGuardMetrics {
  readonly proxyBreakerOpen: { set(labels: { target: string }, value: number): void };
  readonly proxyProtection: { inc(labels: { target: string; outcome: CallOutcome }): void };
  readonly proxyConcurrencyLimit: { set(labels: { target: string }, value: number): void };
}

/** ProtectedGuardContext is what the guard needs from its node. */
export interface ProtectedGuardContext {
  readonly config: Readonly<Config>;
  readonly killSwitches: KillSwitches;
  readonly metrics: ProtectedGuardMetrics;
  readonly log: Logger;
}

/** ProtectedGuard holds the protections of every backend target of one node. */
export class ProtectedGuard {
  readonly #ctx: ProtectedGuardContext;
  readonly #targets = new Map<string, ProtectedTarget>();

  constructor(ctx: ProtectedGuardContext) {
    this.#ctx = ctx;
  }

  /** guard is the {@link ProxyGuard} to give the HTTP proxy client. */
  readonly guard: ProxyGuard = (target, fn, deadline, caller) =>
    this.#target(target).call(fn, { signal: deadline, caller });

  /** targets lists the protected targets made so far (for metrics and tests). */
  targets(): ProtectedTarget[] {
    return [...this.#targets.values()];
  }

  #target(t: ProxyTarget): ProtectedTarget {
    let p = this.#targets.get(t.name);
    if (p !== undefined) return p;
    const { metrics, log, killSwitches } = this.#ctx;
    const cfg = this.#ctx.config.proxy;
    const limitGauge = (limit: number): void => metrics.proxyConcurrencyLimit.set({ target: t.name }, limit);
    const a = cfg.adaptive;
    p = new ProtectedTarget(t.name, {
      maxConcurrent: cfg.max_concurrent,
      maxQueue: cfg.max_queue,
      fair: cfg.fair_queue,
      adaptive: a.enabled
        ? {
            initialLimit: a.initial_limit,
            minLimit: a.min_limit,
            tolerance: a.tolerance,
            backoff: a.backoff,
            windowMs: a.window,
            onChange: limitGauge,
          }
        : undefined,
      breaker: {
        failureRateThreshold: cfg.breaker.failure_rate,
        minRequests: cfg.breaker.min_requests,
        windowMs: cfg.breaker.window,
        openMs: cfg.breaker.open_time,
        halfOpenProbes: cfg.breaker.probes,
        onStateChange: (from, to) => {
          metrics.proxyBreakerOpen.set({ target: t.name }, to === 'closed' ? 0 : 1);
          if (to === 'open') log.warn({ target: t.name, from }, 'proxy circuit breaker open: backend calls fail fast');
          else log.info({ target: t.name, from, to }, `proxy circuit breaker ${to}`);
        },
      },
      killSwitch: () => killSwitches.find('proxy', t.name)?.reason,
      countsAgainstBreaker: (err) => err.temporary || err instanceof OriginError,
      onOutcome: (outcome) => metrics.proxyProtection.inc({ target: t.name, outcome }),
    });
    metrics.proxyBreakerOpen.set({ target: t.name }, 0);
    limitGauge(p.stats().limit);
    this.#targets.set(t.name, p);
    return p;
  }
}
