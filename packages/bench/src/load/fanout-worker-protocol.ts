/**
 * The IPC messages between the fan-out scenario's process ({@link FanoutFleet}) and its
 * subscriber workers (`fanout-worker.js` child processes, one {@link SubscriberSet} each).
 *
 * Why worker processes: one Node process reading every delivery was the fan-out ceiling for
 * every server measured (issue 18); the subscribers are spread over P processes, each reporting
 * per-interval delivery counts, a mergeable latency histogram and its own CPU time.
 *
 * @module
 */
import type { PhaseTally, SubscriberSetOptions } from './fanout-subscribers.js';

/** Parent → worker. Every request but `close` is answered by the reply of the same `id`. */
export type ToFanoutWorker =
  | { type: 'open'; id: number; options: SubscriberSetOptions }
  /** Clock probe: the worker answers its `performance.now()` in µs. */
  | { type: 'clock'; id: number }
  /** This process's clock minus the publisher's (µs), from the probes. */
  | { type: 'offset'; id: number; micros: number }
  | { type: 'phase'; id: number; first: number[]; startMicros: number }
  | { type: 'finish'; id: number; publishedPer: number[]; drainTimeoutMs: number }
  | { type: 'revive'; id: number }
  | { type: 'close' };

/** Worker → parent. */
export type FromFanoutWorker =
  /** First message: the worker listens (an ES module registers its handler only once loaded). */
  | { type: 'ready' }
  /** The reply to request `id`; `cpuMicros` is the worker's CPU time so far (user + system). */
  | { type: 'reply'; id: number; cpuMicros: number; body: FanoutWorkerReply }
  /** Every PROGRESS_MS while deliveries arrive: deliveries since the previous report, CPU so far. */
  | { type: 'progress'; delivered: number; cpuMicros: number };

/** The bodies of the replies. */
export type FanoutWorkerReply =
  | { failures: string[] }
  | { nowMicros: number }
  | { tally: PhaseTally }
  | { revived: number; errors: string[] }
  | Record<string, never>;

/** How often a worker reports its deliveries (only when there were some). */
export const PROGRESS_MS = 100;
