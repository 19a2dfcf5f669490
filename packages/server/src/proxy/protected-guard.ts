/**
 * The protected guard: every backend call of the HTTP proxy goes through one
 * {@link ProtectedTarget} per target (a section's own proxy or a named one), so the backend is
 * never the thing Bulwark knocks over (incidents 2 and 4): a `proxy` kill switch, a circuit
 * breaker, a concurrency limit with a bounded queue, and a deadline that covers the wait.
 *
 * What the client gets when the guard refuses: a `proxy` kill switch → 108 `disabled: <reason>`
 * (final, like every kill switch); a full queue → 111 (temporary: SDKs back off); an open
 * breaker or a deadline passed in the queue → 100 (temporary). Failures of the call itself
 * (timeout, backend down, bad answer) are left to the HTTP proxy client, which counts them by
 * kind and answers 100 (temporary); for the breaker they count as failures.
 *
 * @module
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { KillSwitches } from '../protection/kill-switches.js';
import { ErrorCode, ProtocolError } from '../protocol/codes.js';
import { OriginError, ProxyError, ProxyKilledError, ProxyOverloadedError, ProxyTimeoutError } from './errors.js';
import type { ProxyGuard } from './http-proxy-client.js';
import { ProxyCallError } from './proxy-call-error.js';
import { ProtectedTarget } from './protected-call.js';
import type { ProxyTarget } from './proxies.js';

/** ProtectedGuardContext is what the guard needs from its node. */
export interface ProtectedGuardContext {
  readonly config: Readonly<Config>;
  readonly killSwitches: KillSwitches;
  readonly metrics: Metrics;
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
  readonly guard: ProxyGuard = async (target, fn) => {
    try {
      return await this.#target(target).call(async (signal) => {
        try {
          return await fn(signal);
        } catch (err) {
          throw forBreaker(target.name, err);
        }
      });
    } catch (err) {
      throw forClient(err);
    }
  };

  /** targets lists the protected targets made so far (for metrics and tests). */
  targets(): ProtectedTarget[] {
    return [...this.#targets.values()];
  }

  #target(t: ProxyTarget): ProtectedTarget {
    let p = this.#targets.get(t.name);
    if (p !== undefined) return p;
    const { metrics, log, killSwitches } = this.#ctx;
    const cfg = this.#ctx.config.proxy;
    p = new ProtectedTarget(t.name, {
      // One deadline for the wait in the queue and the call: the client waits at most the proxy's timeout.
      timeoutMs: t.timeoutMs,
      maxConcurrent: cfg.max_concurrent,
      maxQueue: cfg.max_queue,
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
      onOutcome: (outcome) => metrics.proxyProtection.inc({ target: t.name, outcome }),
    });
    metrics.proxyBreakerOpen.set({ target: t.name }, 0);
    this.#targets.set(t.name, p);
    return p;
  }
}

/**
 * forBreaker tells the breaker what a failed call says about the backend: every failure of
 * the HTTP exchange (timeout, unreachable, non-200, malformed answer) is a temporary origin
 * error, which counts against it. The original error rides along as the cause.
 */
function forBreaker(target: string, err: unknown): unknown {
  if (err instanceof ProxyCallError) return new OriginError(target, err.message, { temporary: true, cause: err });
  return err;
}

/**
 * forClient turns what the protected target threw back into what the HTTP proxy client
 * expects: the ProxyCallError of a failed exchange (it counts and answers those), or a
 * ProtocolError for a refusal by the protections.
 */
function forClient(err: unknown): unknown {
  if (err instanceof OriginError && err.cause instanceof ProxyCallError) return err.cause;
  if (!(err instanceof ProxyError)) return err;
  if (err instanceof ProxyKilledError)
    return new ProtocolError(ErrorCode.NotAvailable, `disabled: ${err.reason}`, false);
  if (err instanceof ProxyOverloadedError) {
    return new ProtocolError(ErrorCode.TooManyRequests, 'too many requests: backend busy', true);
  }
  if (err instanceof ProxyTimeoutError && !err.queued) {
    return new ProxyCallError('timeout', err.message, { cause: err });
  }
  // Circuit open, or the deadline passed while waiting for a slot.
  return new ProtocolError(ErrorCode.Internal, 'internal server error: backend unavailable', true);
}
