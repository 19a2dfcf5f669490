/**
 * The fan-out scenario's shapes: its options, and the result of a phase, a ramp step and a run.
 *
 * @module
 */
import type { BulwarkClientName, ReaderName } from '../../load/session-clients.js';
import { type KernelNetCounters } from '../../harness/proc.js';
import { type LatencySummary, type LossSummary } from '../../harness/stats.js';

/** FanoutOptions size the fan-out scenario. */
export interface FanoutOptions {
  /** Bulwark's client kinds (--format), each measured on a fresh server: one column each. */
  formats: BulwarkClientName[];
  /** How the subscribers read their sockets (--reader): the raw reader, the `ws` clients, or both (compare). */
  reader: ReaderName | 'compare';
  /** Subscriber processes (--sub-procs); 0 keeps them in the publisher's process. */
  subscriberProcesses: number;
  /** The CPU the load generator is pinned to (its workers are pinned there too); null/absent: unpinned. */
  loadgenCpu?: number | null;
  subscribers: number;
  channels: number;
  /** Extra bytes of padding in each publication's data. */
  padBytes: number;
  /** Publications per second (all channels together) in the fixed-rate phase. */
  fixedRate: number;
  fixedSeconds: number;
  /**
   * Seconds of unmeasured publishing at the fixed rate first, so that JIT compilation and heap
   * growth in both processes happen before the measurement, not inside it.
   */
  warmupSeconds: number;
  /** Run the ramp after the fixed phase. */
  ramp: boolean;
  rampStartRate: number;
  /** Rate multiplier per ramp step until the first failing step. */
  rampFactor: number;
  rampStepSeconds: number;
  /** Most ramp steps, retries included. */
  rampMaxSteps: number;
  /** Bisection steps between the best passing and the first failing rate. */
  rampRefineSteps: number;
  /** Retry a step once when it failed on latency alone (no loss, no disconnects). */
  rampRetryLatencyFailures: boolean;
  /** Wall-clock budget for the whole ramp. */
  rampBudgetSeconds: number;
  /** A ramp step passes only if its p99 latency is below this. */
  p99LimitMs: number;
  /** How long to wait after publishing stops for the last deliveries. */
  drainTimeoutMs: number;
  connectConcurrency: number;
  /** Publish through the server HTTP API (with `tags` when tagsFilter is set) instead of a client. */
  apiPublish: boolean;
  /**
   * Every subscriber subscribes with this tags filter (`tf`), and every publication carries tags
   * that match it: the filter's cost per delivery, against an --api-publish run without it.
   */
  tagsFilter: { filter: object; tags: Record<string, string> } | undefined;
  /**
   * Every publication carries one variant (the same data with one more field) for clients below
   * version 2; every other subscriber declares version 1.0 (--pub-variants): the cost of choosing and encoding
   * variants per delivery, against an --api-publish run without them.
   */
  variants: boolean;
}

/** PhaseResult is the outcome of publishing at one rate for a while. */
export interface PhaseResult {
  targetRate: number;
  /** Publications sent and the rate actually achieved. */
  published: number;
  achievedRate: number;
  publishSeconds: number;
  expectedDeliveries: number;
  delivered: number;
  /** Deliveries per second over the publish window (plus the drain tail). */
  deliveredPerSec: number;
  latencyMs: LatencySummary;
  /** Worst latency of the publications sent in each second of the phase (spots stalls). */
  maxLatencyBySecondMs: number[];
  loss: LossSummary;
  /** Pushes whose channel marker did not match the subscriber's channel. */
  wrongChannel: number;
  publishErrors: number;
  /** Subscribers that were disconnected during the phase. */
  disconnects: number;
  /** Whether every expected delivery arrived before the drain timeout. */
  drained: boolean;
  serverCpuMicros: number;
  /** Server CPU time per delivered message, µs. */
  serverCpuMicrosPerDelivery: number;
  /** Server CPU use over the phase, % of one core. */
  serverCpuPercent: number;
  /**
   * Load generator CPU use over the phase, % of one core: the publisher's process plus every
   * subscriber process (≥ ~90% of the cores it may use means it is the bottleneck).
   */
  loadgenCpuPercent: number;
  /** The parts of {@link loadgenCpuPercent}: the publisher's process and each subscriber worker. */
  loadgenCpu: { publisherPercent: number; workerPercents: number[] };
  /** Load generator CPU time (all its processes) per delivered message, µs. */
  loadgenCpuMicrosPerDelivery: number;
  /** Subscriber workers' CPU time per delivered message, µs (NaN with --sub-procs 0: it is in the publisher's). */
  readerCpuMicrosPerDelivery: number;
  /**
   * --reader compare: each reader's CPU time per delivery, µs (its workers' CPU over their
   * deliveries), measured side by side in the same phase; absent otherwise.
   */
  readerCompare?: Partial<Record<ReaderName, number>>;
  /** Which side saturated its CPU: server, load generator, both or neither (see `saturation`). */
  saturated: string;
  /** Deliveries that arrived in each second of the phase, all subscribers. */
  deliveredBySecond: number[];
  /**
   * The load generator's own event-loop delay (p99 and max, ms): a stall here delays every
   * delivery it holds up, so latency tails that match it are the generator's, not the server's.
   */
  loadgenLoopDelayMs: { p99: number; max: number };
  /** Machine-wide TCP retransmissions and drops during the phase (should all be 0). */
  kernel: KernelNetCounters;
}

/** RampStep is one step of the ramp with its verdict. */
export interface RampStep extends PhaseResult {
  pass: boolean;
  /** True for the retry of a step that failed on latency alone. */
  retry?: boolean;
  /** Why the step failed ('' when it passed). */
  reason: string;
}

/** FanoutResult is the whole scenario's outcome for one server. */
export interface FanoutResult {
  target: string;
  /** What the load clients spoke: Bulwark's client kind ("WebSocket, Protobuf"), else the protocol. */
  clients: string;
  /** How the subscribers read (--reader), and in how many processes (0: the publisher's). */
  reader: ReaderName | 'compare';
  subscriberProcesses: number;
  /** CPUs the load generator could use (1 when pinned): its saturation is judged against them. */
  loadgenCores: number;
  subscribers: number;
  channels: number;
  subscribersPerChannel: number;
  padBytes: number;
  setup: { connectSeconds: number; reconnects: number };
  fixed: PhaseResult;
  ramp?: {
    steps: RampStep[];
    /** Highest passing publication rate (0 when none passed). */
    maxPassingRate: number;
    maxPassingDeliveriesPerSec: number;
    /** False when even the last step passed: the real limit is higher than measured. */
    limitFound: boolean;
    /** What most likely limited the rate, judged from the first failing step's CPU use. */
    limitedBy: string;
  };
}
