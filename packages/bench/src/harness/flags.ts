/**
 * Command-line flags declared once: a {@link FlagSpec} holds a flag's name, default, quick
 * value and help text, and the same declaration drives `parseArgs` ({@link parseOptionsOf}),
 * the `--help` line ({@link helpLine}) and reading the value ({@link readFlags}), so that the
 * help can no longer state a default the code does not use.
 *
 * @module
 */

/** FlagSpec declares one command-line flag. */
export interface FlagSpec {
  name: string;
  /** Placeholder of the value in --help ("N", "MS", "LIST"); a switch (boolean flag) has none. */
  arg?: string;
  /** What the flag sets, one line for --help (the default is appended). */
  help: string;
  /** Value when the flag is absent. */
  default?: number | string;
  /** Value when the flag is absent and --quick is given, if it differs from `default`. */
  quick?: number | string;
  /**
   * --help's account of the default when it is computed from other flags (the reader is then
   * given the computed value), e.g. "2 × rate × session: 8000; quick 1200". Replaces the
   * generated "default D; quick Q".
   */
  defaultText?: string;
  /** Smallest number accepted (default 0). */
  min?: number;
}

/** Width of the flag column of --help (`--name ARG`). */
const FLAG_COLUMN = 20;

/** helpLine is the flag's line of --help: `--name ARG   help (default D; quick Q)`. */
export function helpLine(f: FlagSpec): string {
  const left = `--${f.name}${f.arg ? ` ${f.arg}` : ''}`;
  const generated = f.default === undefined ? '' : `${f.default}${f.quick !== undefined ? `; quick ${f.quick}` : ''}`;
  const dflt = f.defaultText ?? generated;
  const text = [f.help, dflt ? `(default ${dflt})` : ''].filter(Boolean).join(' ');
  return `${left.padEnd(FLAG_COLUMN)} ${text}`;
}

/** parseOptionsOf turns declarations into `parseArgs` options; a name declared twice must agree on its type. */
export function parseOptionsOf(specs: readonly FlagSpec[]): Record<string, { type: 'string' | 'boolean' }> {
  const out: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const f of specs) {
    const type = f.arg ? 'string' : 'boolean';
    const seen = out[f.name];
    if (seen && seen.type !== type) throw new Error(`flag --${f.name} is declared both with and without a value`);
    out[f.name] = { type };
  }
  return out;
}

/** Flags reads parsed command-line values through their declarations. */
export interface Flags {
  /**
   * A number ≥ the flag's min (throws a clear error otherwise). Absent: `computed` if given,
   * else the flag's quick value under --quick, else its default.
   */
  num(f: FlagSpec, computed?: number): number;
  /** An integer ≥ the flag's min. */
  int(f: FlagSpec, computed?: number): number;
  str(f: FlagSpec, computed?: string): string;
  /** Whether a switch was given. */
  bool(f: FlagSpec): boolean;
  /** Whether the flag was given at all. */
  given(f: FlagSpec): boolean;
}

/** readFlags reads `parseArgs` values, with the quick defaults when `quick`. */
export function readFlags(values: Record<string, unknown>, quick: boolean): Flags {
  const fallback = (f: FlagSpec, computed: number | string | undefined): number | string => {
    const v = computed ?? (quick && f.quick !== undefined ? f.quick : f.default);
    if (v === undefined) throw new Error(`--${f.name} has no default`);
    return v;
  };
  const num = (f: FlagSpec, computed?: number): number => {
    const v = values[f.name];
    if (v === undefined) return Number(fallback(f, computed));
    const n = Number(v);
    const min = f.min ?? 0;
    if (!Number.isFinite(n) || n < min) throw new Error(`--${f.name} must be a number ≥ ${min}, got "${String(v)}"`);
    return n;
  };
  return {
    num,
    int: (f, computed) => {
      const n = num(f, computed);
      if (!Number.isInteger(n)) throw new Error(`--${f.name} must be an integer, got "${String(values[f.name])}"`);
      return n;
    },
    str: (f, computed) =>
      typeof values[f.name] === 'string' ? (values[f.name] as string) : String(fallback(f, computed)),
    bool: (f) => values[f.name] === true,
    given: (f) => values[f.name] !== undefined,
  };
}
