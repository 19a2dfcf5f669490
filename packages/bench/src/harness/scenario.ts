/**
 * The contract every scenario of the simulator follows: one file exports one {@link Scenario}
 * (registered in `scenarios/index.ts`), which declares its flags, runs against servers it starts
 * itself, and hands back its results with pass/fail {@link Check}s against thresholds, the time
 * series the HTML report draws ({@link Chart}) and the text table printed at the end.
 *
 * @module
 */
import type { Progress } from './progress.js';
import type { StartOptions, TargetName } from './targets.js';

/** Check is one pass/fail verdict: `value` compared with a threshold. */
export interface Check {
  /** What is checked, e.g. "origin calls per key". */
  name: string;
  value: number;
  /** How value must compare with limit to pass. */
  op: '<=' | '>=' | '<' | '>' | '==';
  limit: number;
  /** Unit of value and limit, for tables ("ms", "%", "calls"). */
  unit: string;
  pass: boolean;
}

/** check builds a {@link Check}; a non-finite value always fails. */
export function check(name: string, value: number, op: Check['op'], limit: number, unit = ''): Check {
  const ok =
    op === '<='
      ? value <= limit
      : op === '>='
        ? value >= limit
        : op === '<'
          ? value < limit
          : op === '>'
            ? value > limit
            : value === limit;
  return { name, value, op, limit, unit, pass: Number.isFinite(value) && ok };
}

/** Series is one line of a chart: points of (x, y), x usually seconds since the run started. */
export interface Series {
  label: string;
  points: Array<[number, number]>;
}

/** Chart is one line chart of the HTML report (e.g. "p99 latency over time"). */
export interface Chart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
}

/** FlagSpec declares one command-line option of a scenario (shared names are declared once). */
export interface FlagSpec {
  name: string;
  type: 'string' | 'boolean';
  /** One line for --help, e.g. "--keys N   unique keys requested (default 1000; quick 100)". */
  help: string;
}

/** Flags reads parsed command-line values with defaults and validation. */
export interface Flags {
  /** A number ≥ min (throws a clear error otherwise); `fallback` when the flag is absent. */
  num(name: string, fallback: number, min?: number): number;
  /** An integer ≥ min. */
  int(name: string, fallback: number, min?: number): number;
  str(name: string, fallback: string): string;
  bool(name: string): boolean;
}

/** ScenarioContext is what the runner gives a scenario. */
export interface ScenarioContext {
  /** Smoke-test mode: small counts and durations; numbers not meaningful. */
  quick: boolean;
  flags: Flags;
  /** Progress and notes, on stderr (never stdout, which holds tables or JSON). */
  log(msg: string): void;
  /** The live progress line. */
  progress: Progress;
  /**
   * How to start Bulwark: pinned CPU, CLI entry, WebSocket path and the user's --bulwark-config
   * (pass to `startServer`/`onFreshBulwark`, which deep-merge the scenario's own config).
   */
  bulwark: StartOptions;
  /** Targets asked for with --target (scenarios that only run on Bulwark ignore it). */
  targets: TargetName[];
  /** CPU the load generator is pinned to, if any (the other CPU is the server's). */
  loadgenCpu: number | null;
}

/** ScenarioOutput is what a scenario hands back. */
export interface ScenarioOutput {
  /** The options the scenario ran with, resolved (defaults filled in). */
  options: object;
  /** Everything measured, for the JSON results file. */
  results: object;
  /** Pass/fail verdicts; the run fails (exit 1) when any fails. */
  checks: Check[];
  /** Time series for the HTML report. */
  charts: Chart[];
  /** The final text table (what a person reads in the terminal). */
  table: string;
}

/** Scenario is one runnable scenario of the simulator. */
export interface Scenario {
  name: string;
  /** One line for --help. */
  summary: string;
  /** The scenario's own flags (shared ones such as --duration may be declared by several). */
  flags: FlagSpec[];
  run(ctx: ScenarioContext): Promise<ScenarioOutput>;
}
