/**
 * The delta scenario's shapes: its options, one run (a format with full payloads or with delta
 * compression) and the result.
 *
 * @module
 */
import type { BoardFormat } from '../../load/board-subscriber.js';

/** DeltaOptions size the delta scenario. */
export interface DeltaOptions {
  formats: BoardFormat[];
  subscribers: number;
  channels: number;
  /** Publications per second, all channels together. */
  rate: number;
  seconds: number;
  /** Unmeasured publishing first (JIT, heap growth). */
  warmupSeconds: number;
  /** Cells of each channel's board (16 make ~2 KB of JSON). */
  cells: number;
  drainTimeoutMs: number;
  connectConcurrency: number;
}

/** DeltaRun is one measured run: one format, full payloads or deltas, on a fresh server. */
export interface DeltaRun {
  label: string;
  format: BoardFormat;
  delta: boolean;
  published: number;
  /** Mean size of a publication's data (the board's JSON), bytes. */
  dataBytes: number;
  expectedDeliveries: number;
  delivered: number;
  /** Publications that came as deltas (JSON; -1 for Protobuf, which is not decoded that far). */
  deltaDeliveries: number;
  /** WebSocket bytes (payload + frame header) the subscribers received, per delivery. */
  wireBytesPerDelivery: number;
  serverCpuMicrosPerDelivery: number;
  serverCpuPercent: number;
  loadgenCpuPercent: number;
  disconnects: number;
}

/** DeltaComparison is one format's delta run against its full run. */
export interface DeltaComparison {
  format: BoardFormat;
  /** delta / full wire bytes per delivery. */
  bytesRatio: number;
  /** delta / full server CPU per delivery. */
  cpuRatio: number;
}

/** DeltaResult is the scenario's outcome. */
export interface DeltaResult {
  runs: DeltaRun[];
  comparisons: DeltaComparison[];
}
