/**
 * The fanout-mixed scenario's shapes: channel classes, options, layout and results.
 *
 * @module
 */
import { type WireProtocol } from '../../load/lean-client.js';
import { type KernelNetCounters } from '../../harness/proc.js';
import type { SeqTracker } from '../../harness/stats.js';
import { type LatencySummary, type LossSummary } from '../../harness/stats.js';
import type { Timeline } from '../../harness/timeline.js';

/** The three channel classes, in table order. */
export const CLASSES = ['personal', 'team', 'world'] as const;

/** ChannelClass names one class of channels. */
export type ChannelClass = (typeof CLASSES)[number];

export const PERSONAL = 0;

export const TEAM = 1;

export const WORLD = 2;

/** FanoutMixedOptions size the scenario. */
export interface FanoutMixedOptions {
  players: number;
  teamSize: number;
  /** Publications per second to the world channel. */
  worldRate: number;
  /** Publications per second to each team channel. */
  teamRate: number;
  /** Publications per second over all personal channels (each to a random player). */
  personalRate: number;
  /** Seconds of measured publishing. */
  seconds: number;
  /** Seconds of unmeasured publishing first (JIT and heap growth happen there, not in the window). */
  warmupSeconds: number;
  /** Padding bytes in each publication's data. */
  padBytes: number;
  p99LimitMs: number;
  /** How long to wait after publishing for the last deliveries. */
  drainTimeoutMs: number;
  /** Players set up (connect + three subscribes) in flight. */
  concurrency: number;
}

/**
 * MixedLayout maps players to channels. Channel indices (the `bch` marker): 0 is the world
 * channel, 1 … teams are the team channels, then one personal channel per player.
 */
export interface MixedLayout {
  players: number;
  teamSize: number;
  teams: number;
  /** Channel index of each class's channel for player `i`, by class (personal, team, world). */
  channelsOf(i: number): [number, number, number];
  teamChannel(t: number): number;
  personalChannel(i: number): number;
  /** Subscribers of team `t` (the last team may be smaller). */
  teamMembers(t: number): number;
  /** The channel's name, e.g. `bench:team.3`. */
  channelName(index: number): string;
  /** Number of channel indices (world + teams + players). */
  channelCount: number;
}

/** ClassResult is one channel class's outcome. */
export interface ClassResult {
  channels: number;
  /** Subscribers per channel (the mean, for teams when the last one is smaller). */
  subscribersPerChannel: number;
  publications: number;
  expectedDeliveries: number;
  deliveries: number;
  /** Deliveries over the delivery window (publishing plus the drain tail). */
  deliveriesPerSec: number;
  /** What the options ask for (publication rates × subscribers). */
  expectedDeliveriesPerSec: number;
  latencyMs: LatencySummary;
  loss: LossSummary;
}

/** FanoutMixedResult is one server's outcome. */
export interface FanoutMixedResult {
  target: string;
  players: number;
  teams: number;
  teamSize: number;
  /** Setup; `refusedUpgrades`: connects refused with HTTP 503 (load shedding) and retried. */
  setup: { seconds: number; connections: number; subscribes: number; refusedUpgrades: number };
  /** Seconds the publisher took to send the window's publications (≈ the duration when on time). */
  publishSeconds: number;
  /** Seconds deliveries are counted over: from the first publication to the last delivery. */
  deliverySeconds: number;
  classes: Record<ChannelClass, ClassResult>;
  /** Pushes on a channel the receiving player is not subscribed to (must be 0). */
  wrongChannel: number;
  /** Publish replies with an error (Bulwark). */
  publishErrors: number;
  /** Players disconnected during the measured window. */
  disconnects: number;
  /** Whether every expected delivery arrived before the drain timeout. */
  drained: boolean;
  serverCpuMicrosPerDelivery: number;
  /** Server CPU use over the window, % of one core. */
  serverCpuPercent: number;
  loadgenCpuPercent: number;
  loadgenLoopDelayMs: { p99: number; max: number };
  kernel: KernelNetCounters;
}

/**
 * MixedRunDetail is what the measurement tests look at besides the result: each player's
 * trackers (personal, team, world) and what was published to every channel index.
 */
export interface MixedRunDetail {
  layout: MixedLayout;
  trackers: Array<[SeqTracker, SeqTracker, SeqTracker]>;
  /** Publications per channel index in the measured window. */
  published: number[];
  /** Deliveries per second and latency per class over the window (for charts). */
  timeline: Timeline;
}

/** MixedServer is what {@link runFanoutMixed} needs of a server (a `RunningServer` has it). */
export interface MixedServer {
  name: string;
  pid: number;
  wsUrl: string;
  protocol: WireProtocol;
  tokenSecret: string;
}

/** What {@link runFanoutMixed} reports progress to (optional: tests pass nothing). */
export interface MixedHooks {
  log?: (msg: string) => void;
  progress?: { begin(label: string): void; update(fraction: number | undefined, detail?: string): void };
}
