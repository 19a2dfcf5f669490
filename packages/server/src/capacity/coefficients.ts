/**
 * The measured costs the capacity model (model.ts) is built from: what one connect, one
 * delivery, one API publish, one idle connection and one Redis command cost on one core, each
 * with where it was measured (a section of docs/BENCHMARKS.md and its date). They are this
 * project's own measurements on its 2-core VM (AMD EPYC, Node 20), server pinned to one core;
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
    value: 333,
    unit: 'µs',
    source: 'BENCHMARKS.md "The console and the latency histograms", connections without the console, 2026-12-06',
  },
  cpuPerExtraSubscribeUs: {
    value: 40,
    unit: 'µs',
    source: 'estimate: the subscribe command’s share of a connect profile (not measured on its own yet)',
  },
  cpuPerDeliveryUs: {
    value: 11.8,
    unit: 'µs',
    source: 'BENCHMARKS.md "The console and the latency histograms", fanout at 40,000 deliveries/s, 2026-12-06',
  },
  redisDeliveryFactor: {
    value: 1.05,
    unit: '×',
    source: 'BENCHMARKS.md "Scale-out": 13.4 vs 12.8 µs per delivery at 40,000/s, 2026-11-22',
  },
  cpuPerApiPublishUs: {
    value: 45,
    unit: 'µs',
    source: 'issue 18: 22,000 API publishes/s on one core, measured from outside (not by this bench yet)',
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
    value: 0.5,
    unit: 'KiB',
    source: 'estimate: a subscription’s state and hub entries (not measured on its own yet)',
  },
  memoryPerProcessMib: {
    value: 90,
    unit: 'MiB',
    source: 'BENCHMARKS.md "connections-scale": 689 MiB for a primary and 7 idle workers, 2026-11-22',
  },
  redisCommandsPerShardPerS: {
    value: 100_000,
    unit: 'commands/s',
    source: 'assumption: a conservative budget for one Redis 7 process (not measured here yet)',
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
