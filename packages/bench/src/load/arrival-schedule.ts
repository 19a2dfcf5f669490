/**
 * An open-loop arrival schedule of new players: consecutive phases, each with a constant
 * arrival rate, e.g. a warm-up at the normal rate, a ramp in steps to 10× it, then a tail
 * without new arrivals. Arrivals are spaced evenly within a phase and happen on schedule
 * whatever the server does (see pacing.ts on why open loop).
 *
 * @module
 */

/** Phase is one stretch of the schedule with a constant arrival rate. */
export interface Phase {
  /** Short name for tables ("warm-up", "3x", "tail"). */
  label: string;
  /** Multiple of the normal rate (0 for a phase without arrivals). */
  multiplier: number;
  /** Arrivals per second. */
  rate: number;
  /** Start and end, ms since the schedule started. */
  startMs: number;
  endMs: number;
}

/**
 * rampMultipliers are `steps` multipliers rising evenly from 1 to `top` (one step: just
 * `top`), rounded to 2 decimals: 10 steps to 10 give 1, 2, … 10.
 */
export function rampMultipliers(steps: number, top: number): number[] {
  if (steps < 1) return [];
  if (steps === 1) return [top];
  return Array.from({ length: steps }, (_, i) => Math.round((1 + ((top - 1) * i) / (steps - 1)) * 100) / 100);
}

/** ScheduleOptions shape {@link hugSchedule}. */
export interface ScheduleOptions {
  /** Normal arrivals per second. */
  rate: number;
  /** Seconds at the normal rate before the ramp (0: none). */
  warmupSeconds: number;
  /** Ramp steps, from 1× to `top`×. */
  steps: number;
  stepSeconds: number;
  top: number;
  /** Seconds without new arrivals after the ramp (refused clients' retries still come). */
  tailSeconds: number;
}

/** hugSchedule lays out warm-up, ramp steps and tail as consecutive phases. */
export function hugSchedule(o: ScheduleOptions): Phase[] {
  const phases: Phase[] = [];
  let t = 0;
  const add = (label: string, multiplier: number, seconds: number) => {
    if (seconds <= 0) return;
    phases.push({ label, multiplier, rate: o.rate * multiplier, startMs: t, endMs: t + seconds * 1000 });
    t += seconds * 1000;
  };
  add('warm-up', 1, o.warmupSeconds);
  for (const m of rampMultipliers(o.steps, o.top)) add(`${m}x`, m, o.stepSeconds);
  add('tail', 0, o.tailSeconds);
  return phases;
}

/**
 * arrivalsDue is how many arrivals the schedule has called for by `elapsedMs`: the integral of
 * the rate, floored. Arrival k (from 1) of a phase of rate r is due k/r seconds into it (the
 * first one a gap after the start, so phases never double up at a boundary).
 */
export function arrivalsDue(phases: readonly Phase[], elapsedMs: number): number {
  let sum = 0;
  for (const p of phases) {
    if (elapsedMs <= p.startMs) break;
    sum += (p.rate * (Math.min(elapsedMs, p.endMs) - p.startMs)) / 1000;
  }
  // The epsilon absorbs float error (0.1 + 0.2), so an arrival due exactly now is not a tick late.
  return Math.floor(sum + 1e-9);
}

/** plannedArrivals is the schedule's total arrivals. */
export function plannedArrivals(phases: readonly Phase[]): number {
  const last = phases[phases.length - 1];
  return last ? arrivalsDue(phases, last.endMs) : 0;
}

/** phaseAt is the index of the phase holding `elapsedMs` (before the start: 0; after the end: the last). */
export function phaseAt(phases: readonly Phase[], elapsedMs: number): number {
  for (let i = 0; i < phases.length; i++) if (elapsedMs < (phases[i] as Phase).endMs) return i;
  return Math.max(0, phases.length - 1);
}

/**
 * phaseOfArrival is the index of the phase that schedules arrival `k` (0-based): the first
 * phase by whose end more than k arrivals are due. An arrival sent late (the load generator
 * catching up) still belongs to the phase that called for it.
 */
export function phaseOfArrival(phases: readonly Phase[], k: number): number {
  for (let i = 0; i < phases.length; i++) if (arrivalsDue(phases, (phases[i] as Phase).endMs) > k) return i;
  return Math.max(0, phases.length - 1);
}
