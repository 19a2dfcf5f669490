/**
 * The contract every scenario of the simulator follows: each exports one {@link Scenario}
 * (registered in `scenarios/index.ts`), which declares its flags, runs against servers it starts
 * itself, and hands back its results with pass/fail {@link Check}s against thresholds, the time
 * series the HTML report draws ({@link Chart}) and the text table printed at the end.
 *
 * Layers: `harness/` (this contract, measurement, formatting, starting servers, reports) is the
 * bottom; `load/` (the load clients) and `servers/` (the reference servers and origins) build on
 * it; `scenarios/` on all three; `main.ts` (the CLI) on top. Nothing imports upward.
 *
 * @module
 */
import type { FlagSpec, Flags } from './flags.js';
import type { Progress } from './progress.js';
import type { InfoRatio, Ratio } from './report.js';
import type { StartOptions, TargetName } from './targets.js';

/** Log writes one progress message line (a scenario's `ctx.log`). */
export type Log = (msg: string) => void;

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

/** ScenarioContext is what the runner gives a scenario. */
export interface ScenarioContext {
  /** Smoke-test mode: small counts and durations; numbers not meaningful. */
  quick: boolean;
  /** The command line's values, read through the scenario's flag declarations. */
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
  /** Targets asked for with --target, else the scenario's default (Bulwark-only scenarios ignore it). */
  targets: TargetName[];
  /** --workers: Bulwark's worker processes in the comparison runs (1: one process, pinned). */
  workers: number;
  /** CPU the load generator is pinned to, if any (the other CPU is the server's). */
  loadgenCpu: number | null;
}

/** ScenarioOutput is what a scenario hands back. */
export interface ScenarioOutput {
  /** The options the scenario ran with, resolved (defaults filled in). */
  options: object;
  /** Everything measured, for the JSON results file. */
  results: object;
  /** Bulwark/raw comparisons with their targets (the comparison scenarios). */
  ratios?: Ratio[];
  /** Bulwark/Socket.IO comparisons, informational. */
  socketioRatios?: InfoRatio[];
  /** Set when part of the run failed without throwing (a target's error in a comparison). */
  failed?: boolean;
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
  /** The scenario's own flags (a name such as --duration may be declared by several, each with its default). */
  flags: FlagSpec[];
  /** Targets when --target is absent: `all` (raw, Bulwark, Socket.IO) or `both` (raw, Bulwark; the default). */
  defaultTarget?: 'all' | 'both';
  run(ctx: ScenarioContext): Promise<ScenarioOutput>;
}
