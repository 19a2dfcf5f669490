/**
 * The neighbour scenario's shapes: its options, each variant's outcome, the verdict, the result.
 *
 * @module
 */
import { type CpuReading } from '../../harness/proc.js';
import { type LatencySummary } from '../../harness/stats.js';

/** NeighbourOptions size the neighbour scenario. */
export interface NeighbourOptions {
  /** CPU-hungry neighbour processes (busy loops) during each variant's window. */
  hogs: number;
  /** CPU the hogs are pinned to (the server's), or null when pinning is off. */
  hogsCpu: number | null;
  /** Probes per second: each a new player opening a WebSocket, connecting, subscribing, reading history. */
  rate: number;
  /** Seconds of probing per variant with the neighbours running. */
  seconds: number;
  /** Seconds of probing before the neighbours start (warms the server; not measured). */
  warmupSeconds: number;
  /** How long the hogs get to start spinning before the window opens, ms. */
  settleMs: number;
  /** protection.shedding.connect_lag and read_lag of both variants, as given and in ms. */
  connectLag: string;
  connectLagMs: number;
  readLag: string;
  readLagMs: number;
  /** Publications kept in the demo channel's history, and read by each probe. */
  historySize: number;
  /** Timeout of each reply (connect, subscribe, history), ms. */
  replyTimeoutMs: number;
  /** How long the end of a window waits for probes still in flight, ms. */
  settleProbesMs: number;
}

/** SheddingLogLine is one `load shedding…` line of the server's log. */
export interface SheddingLogLine {
  msg: string;
  level: string | undefined;
  lagMs: number | undefined;
  utilization: number | undefined;
}

/** VariantKey names a variant: the default config, or the lag alone deciding. */
export type VariantKey = 'default' | 'lag-only';

/** NeighbourVariant is one variant's outcome (one fresh server, its own hogs). */
export interface NeighbourVariant extends CpuReading {
  key: VariantKey;
  label: string;
  /** protection.shedding as the server was given it (utilization absent: the server's default). */
  shedding: Record<string, unknown>;
  /** Probes started in the window. */
  attempts: number;
  /** Probes that got in, connected, subscribed and read history. */
  completed: number;
  /** Upgrades refused with an HTTP status (503: shedding or admission), by status. */
  refusedUpgrades: number;
  refusedByStatus: Record<string, number>;
  /** History reads refused with error 111 (the node shedding reads). */
  refusedReads: number;
  /** Probes that failed otherwise (timeouts, resets, other errors), by kind. */
  failed: number;
  failedByKind: Record<string, number>;
  firstFailure: string | undefined;
  /** Probe start → subscribe confirmed, ms, of admitted probes. */
  handshakeMs: LatencySummary;
  /** History command → reply, ms, of served reads. */
  historyMs: LatencySummary;
  /** From the server's /metrics, the change over the window: times a shedding level turned on, by level. */
  sheddingStarted: Record<string, number>;
  /** bulwark_rejections_total{reason=~"overload.*"} over the window, by reason. */
  overloadRejections: Record<string, number>;
  /**
   * The server's own `load shedding…` log lines (level warn when a level turns on, at most once per
   * level per protection.log_interval), with the smoothed lag and utilization that decided it.
   */
  sheddingLog: SheddingLogLine[];
  /** The server's event-loop lag p99 (bulwark_event_loop_lag_p99_seconds, per 1 s scrape), ms: highest and median scrape. */
  serverLagP99Ms: { max: number; median: number };
  /** The hogs' CPU over the window, % of one core (all hogs together), and how many ran. */
  hogsCpuPercent: number;
  hogsRunning: number;
}

/** NeighbourVerdict judges the default variant; the lag-only variant is reported, not judged. */
export interface NeighbourVerdict {
  pass: boolean;
  reasons: string[];
  /** Whether lag alone refused anyone or turned shedding on (the neighbours did delay the loop past a threshold). */
  lagOnlyShed: boolean;
  /** What the lag-only variant says about this run, one line. */
  lagOnlyNote: string;
}

/** NeighbourResult is the whole scenario's outcome. */
export interface NeighbourResult {
  variants: NeighbourVariant[];
  verdict: NeighbourVerdict;
}
