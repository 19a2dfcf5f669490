/**
 * The results file of one scenario run: what it holds ({@link ScenarioReport}) and writing it
 * to `<out-dir>/<scenario>-<timestamp>.json`.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { MachineInfo } from './proc.js';

/**
 * TargetOutcome is what one server produced in one scenario: a result (the field-wise median
 * of `runs` when the scenario was repeated), an error, or a skip.
 */
export type TargetOutcome<R> =
  { result: R; runs?: R[] } | { error: string; serverLog?: string[] } | { skipped: string };

/**
 * Ratio is one comparison with its target (numerator ≤ target × denominator): Bulwark (JSON) /
 * raw ws, or, when `label` says so, another pair (`Bulwark protobuf/raw`, `Protobuf/JSON`),
 * whose numerator and denominator are then held in `bulwark` and `raw`.
 */
export interface Ratio {
  name: string;
  /** What is divided by what when not Bulwark (JSON) by raw ws, e.g. "Protobuf/JSON". */
  label?: string;
  bulwark: number;
  raw: number;
  /** bulwark / raw. */
  ratio: number;
  /** Highest acceptable ratio. */
  target: number;
  met: boolean;
}

/** InfoRatio is one informational Bulwark/Socket.IO comparison (lower means Bulwark uses less). */
export interface InfoRatio {
  name: string;
  bulwark: number;
  socketio: number;
  /** bulwark / socketio. */
  ratio: number;
}

/** ScenarioReport is what a results file holds for one scenario. */
export interface ScenarioReport<R> {
  scenario: string;
  timestamp: string;
  quick: boolean;
  machine: MachineInfo;
  pinning: { serverCpu: number | null; loadgenCpu: number | null };
  options: object;
  /**
   * One outcome per column: the reference servers, Bulwark with JSON WebSocket clients
   * (`bulwark`), and Bulwark with another client kind (`bulwark-protobuf`, …) when asked for.
   */
  results: {
    raw?: TargetOutcome<R>;
    bulwark?: TargetOutcome<R>;
    socketio?: TargetOutcome<R>;
    [variant: `bulwark-${string}`]: TargetOutcome<R> | undefined;
  };
  ratios: Ratio[];
  /** Bulwark/Socket.IO comparisons (informational: no target), when Socket.IO ran too. */
  socketioRatios?: InfoRatio[];
}

/**
 * bulwarkKey is the results key of Bulwark measured with the client kind `variant`: `bulwark`
 * for JSON over WebSocket (the original column), `bulwark-<variant>` for the others.
 */
export function bulwarkKey(variant: string): 'bulwark' | `bulwark-${string}` {
  return variant === 'json' ? 'bulwark' : `bulwark-${variant}`;
}

/** resultOf is the outcome's result, if the target produced one. */
export function resultOf<R>(o: TargetOutcome<R> | undefined): R | undefined {
  return o && 'result' in o ? o.result : undefined;
}

/** writeReport writes `report` to `<dir>/<scenario>-<timestamp>.json` and returns the path. */
export function writeReport(dir: string, report: { scenario: string; timestamp: string }): string {
  mkdirSync(dir, { recursive: true });
  const stamp = report.timestamp.replace(/[:.]/g, '-');
  const file = path.join(dir, `${report.scenario}-${stamp}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}
