/**
 * The measured costs the capacity model (model.ts) is built from: what one connect, one
 * delivery, one API publish, one idle connection and one Redis command cost on one core, each
 * with where it was measured (a section of docs/BENCHMARKS.md and its date). They are this
 * project's own measurements on its 2-vCPU VM (Node 20), server pinned to one core;
 * `bulwark plan --coefficients FILE` replaces any of them with a studio's own figures.
 *
 * Why a table of figures and not a formula from first principles: CPU per operation on Node
 * depends on GC, kernel and allocation behaviour no formula predicts; what a benchmark measures
 * end to end (TCP, TLS-less loopback, JSON, the engine) is the honest input.
 *
 * @module
 */

/** Coefficient is one measured cost and where it comes from. */
export interface Coefficient {
  readonly value: number;
  readonly unit: string;
  /** The section of docs/BENCHMARKS.md and the run it was read from. */
  readonly source: string;
}

/** Coefficients are every measured cost the model uses. */
export interface Coefficients {
  /** Server CPU for one connect with a JWT and its first subscribe (TCP accept, upgrade, JWT, subscribe). */
  readonly cpuPerConnectUs: Coefficient;
  /** Server CPU for each subscribe after the first, on the same connection. */
  readonly cpuPerExtraSubscribeUs: Coefficient;
  /** Server CPU for one delivery (one publication to one subscriber), memory engine. */
  readonly cpuPerDeliveryUs: Coefficient;
  /** The Redis engine's CPU per delivery relative to the memory engine's. */
  readonly redisDeliveryFactor: Coefficient;
  /** Server CPU for one publish through the HTTP server API (request, JSON, engine, reply). */
  readonly cpuPerApiPublishUs: Coefficient;
  /** Server CPU an idle connection costs per second (pings, timers, kernel). */
  readonly cpuPerIdleConnectionUsPerS: Coefficient;
  /** Resident memory per idle connection with one subscription. */
  readonly memoryPerConnectionKib: Coefficient;
  /** Resident memory per subscription after the first. */
  readonly memoryPerExtraSubscriptionKib: Coefficient;
  /** Resident memory of an idle Bulwark process. */
  readonly memoryPerProcessMib: Coefficient;
  /** Redis commands one single-threaded Redis process serves per second (the shard budget). */
  readonly redisCommandsPerShardPerS: Coefficient;
}

/** measuredCoefficients are this project's figures (docs/CAPACITY.md lists them with their runs). */
export const measuredCoefficients: Coefficients = {
  cpuPerConnectUs: {
    value: 244,
    unit: 'µs',
    source: 'BENCHMARKS.md "Quiet-machine run": connections --target both, median of 3, 2026-12-06 17:55',
  },
  cpuPerExtraSubscribeUs: {
    value: 11,
    unit: 'µs',
    source: 'BENCHMARKS.md "Quiet-machine run": connections --subscriptions 5 vs 1 (299 vs 254 µs), 2026-12-06',
  },
  cpuPerDeliveryUs: {
    value: 10.2,
    unit: 'µs',
    source: 'BENCHMARKS.md "Quiet-machine run": fanout at 40,000 deliveries/s, memory engine, 2026-12-06 17:57',
  },
  redisDeliveryFactor: {
    value: 1.06,
    unit: '×',
    source: 'BENCHMARKS.md "Quiet-machine run": fanout on Redis with history, median 10.77 µs vs 10.2, 2026-12-06',
  },
  cpuPerApiPublishUs: {
    value: 36,
    unit: 'µs',
    source: 'BENCHMARKS.md "Quiet-machine run": api-publish, /api/publish, median of 6 runs (28–39 µs), 2026-12-06',
  },
  cpuPerIdleConnectionUsPerS: {
    value: 1.8,
    unit: 'µs/s',
    source: 'BENCHMARKS.md "connections-scale": 100,000 idle connections held at 18 % of a core, 2026-11-22',
  },
  memoryPerConnectionKib: {
    value: 7.7,
    unit: 'KiB',
    source: 'BENCHMARKS.md "connections-scale": 7.7 KiB per connection over 7 workers, 2026-11-22',
  },
  memoryPerExtraSubscriptionKib: {
    value: 0.26,
    unit: 'KiB',
    source: 'BENCHMARKS.md "Quiet-machine run": connections --subscriptions 5 vs 1 (7.46 vs 6.43 KiB), 2026-12-06',
  },
  memoryPerProcessMib: {
    value: 125,
    unit: 'MiB',
    source: 'BENCHMARKS.md "Quiet-machine run": RSS of an idle Bulwark before the connections, 2026-12-06',
  },
  redisCommandsPerShardPerS: {
    value: 110_000,
    unit: 'commands/s',
    source:
      'BENCHMARKS.md "Quiet-machine run": redis-benchmark, 50 clients: PUBLISH 121k/s, SET 138k/s, GET 114k/s, 2026-12-06',
  },
};

/** coefficientKeys lists the coefficients by name, in the order docs/CAPACITY.md shows them. */
export const coefficientKeys = Object.keys(measuredCoefficients) as (keyof Coefficients)[];

/**
 * withOverrides returns `base` with the values of `overrides` (plain numbers by coefficient
 * name, e.g. from a studio's own benchmark) replaced; an unknown name or a value that is not a
 * positive finite number throws, naming it.
 */
export function withOverrides(base: Coefficients, overrides: Readonly<Record<string, unknown>>): Coefficients {
  const out: Record<string, Coefficient> = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    if (!(key in base)) throw new Error(`unknown coefficient "${key}" (known: ${coefficientKeys.join(', ')})`);
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new Error(`coefficient "${key}" must be a positive number, got ${JSON.stringify(value)}`);
    }
    const was = base[key as keyof Coefficients];
    out[key] = { value, unit: was.unit, source: 'given with --coefficients' };
  }
  return out as unknown as Coefficients;
}
