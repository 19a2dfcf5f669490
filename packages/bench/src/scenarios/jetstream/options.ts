/**
 * The jetstream scenario's flags and the options read from them: the stream and consumer it
 * sets up, the fixed rate and the ramp that follows it (every step bounded in time), and the
 * schedule of rates that ramp walks. Pure, so the bench tests read it without NATS.
 *
 * @module
 */
import type { FlagSpec, Flags } from '../../harness/flags.js';

/** The scenario's flags; none shares a name with a global flag of main.ts (test/jetstream-scenario.test.ts). */
export const jetstreamFlags = {
  rate: {
    name: 'rate',
    arg: 'N',
    help: 'messages/s published in the fixed-rate phase',
    default: 500,
    quick: 200,
    min: 1,
  },
  duration: { name: 'duration', arg: 'S', help: 'seconds of the fixed-rate phase', default: 10, quick: 3, min: 1 },
  rampSteps: {
    name: 'ramp-steps',
    arg: 'N',
    help: 'ramp steps after it, each rate × ramp-factor (0: no ramp; the ramp stops at the first failing step)',
    default: 4,
    quick: 1,
    min: 0,
  },
  rampFactor: {
    name: 'ramp-factor',
    arg: 'X',
    help: 'rate multiplier from one step to the next',
    default: 2,
    min: 1.1,
  },
  stepSeconds: { name: 'step-seconds', arg: 'S', help: 'seconds of each ramp step', default: 5, quick: 2, min: 1 },
  drainSeconds: {
    name: 'drain',
    arg: 'S',
    help: 'longest wait after a phase for every message to arrive before it is judged',
    default: 15,
    quick: 5,
    min: 1,
  },
  channels: { name: 'channels', arg: 'N', help: 'channels the messages spread over', default: 10, quick: 4, min: 1 },
  subscribers: {
    name: 'subscribers',
    arg: 'N',
    help: 'lean subscribers per channel',
    default: 2,
    quick: 1,
    min: 1,
  },
  maxAckPending: {
    name: 'max-ack-pending',
    arg: 'N',
    help: 'consumers.jetstream.max_ack_pending (1 = stream order across nodes)',
    default: 1,
    min: 1,
  },
  batch: { name: 'batch', arg: 'N', help: 'consumers.jetstream.batch_size', default: 100, min: 1 },
  inFlight: {
    name: 'js-in-flight',
    arg: 'N',
    help: 'most JetStream publishes the backend awaits at once (past it the backend falls behind its rate)',
    default: 2000,
    min: 1,
  },
  p99LimitMs: { name: 'p99-limit', arg: 'MS', help: 'a phase fails above this p99 latency', default: 250, min: 1 },
  natsUrl: { name: 'nats-url', arg: 'URL', help: 'NATS with JetStream', default: 'nats://127.0.0.1:4222' },
  storage: { name: 'js-storage', arg: 'S', help: 'stream storage: file | memory', default: 'file' },
} satisfies Record<string, FlagSpec>;

/** JetStreamOptions are the resolved options of one run. */
export interface JetStreamOptions {
  rate: number;
  durationSeconds: number;
  rampSteps: number;
  rampFactor: number;
  stepSeconds: number;
  drainSeconds: number;
  channels: number;
  subscribersPerChannel: number;
  maxAckPending: number;
  batch: number;
  inFlight: number;
  p99LimitMs: number;
  natsUrl: string;
  storage: 'file' | 'memory';
}

/** readOptions reads the scenario's options from the command line; throws naming a bad flag. */
export function readOptions(f: Flags): JetStreamOptions {
  const storage = f.str(jetstreamFlags.storage);
  if (storage !== 'file' && storage !== 'memory') {
    throw new Error(`--js-storage must be file or memory, got "${storage}"`);
  }
  return {
    rate: f.int(jetstreamFlags.rate),
    durationSeconds: f.num(jetstreamFlags.duration),
    rampSteps: f.int(jetstreamFlags.rampSteps),
    rampFactor: f.num(jetstreamFlags.rampFactor),
    stepSeconds: f.num(jetstreamFlags.stepSeconds),
    drainSeconds: f.num(jetstreamFlags.drainSeconds),
    channels: f.int(jetstreamFlags.channels),
    subscribersPerChannel: f.int(jetstreamFlags.subscribers),
    maxAckPending: f.int(jetstreamFlags.maxAckPending),
    batch: f.int(jetstreamFlags.batch),
    inFlight: f.int(jetstreamFlags.inFlight),
    p99LimitMs: f.num(jetstreamFlags.p99LimitMs),
    natsUrl: f.str(jetstreamFlags.natsUrl),
    storage,
  };
}

/** PhasePlan is one phase of the run: a rate held for some seconds. */
export interface PhasePlan {
  /** "fixed", or "ramp 1", "ramp 2", …. */
  label: string;
  rate: number;
  seconds: number;
}

/** phasePlan lists the phases: the fixed rate, then each ramp step (rates rounded to whole messages/s). */
export function phasePlan(
  o: Pick<JetStreamOptions, 'rate' | 'durationSeconds' | 'rampSteps' | 'rampFactor' | 'stepSeconds'>,
): PhasePlan[] {
  const plan: PhasePlan[] = [{ label: 'fixed', rate: o.rate, seconds: o.durationSeconds }];
  for (let k = 1; k <= o.rampSteps; k++) {
    plan.push({ label: `ramp ${k}`, rate: Math.round(o.rate * o.rampFactor ** k), seconds: o.stepSeconds });
  }
  return plan;
}

/** maxRunSeconds bounds the run: every phase and its drain (setup and teardown aside). */
export function maxRunSeconds(o: JetStreamOptions): number {
  return phasePlan(o).reduce((s, p) => s + p.seconds + o.drainSeconds, 0);
}
