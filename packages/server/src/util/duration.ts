/**
 * Go-style durations ("25s", "1m30s", "500ms", "720h"), the format Centrifugo configs use.
 *
 * @module
 */

const unitMs: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;

/** parseDuration returns the duration in milliseconds, or undefined when `text` is not one. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (text.length === 0) return undefined;
  let total = 0;
  part.lastIndex = 0;
  while (part.lastIndex < text.length) {
    const start = part.lastIndex;
    const m = part.exec(text);
    if (!m || m.index !== start) return undefined;
    total += Number(m[1]) * (unitMs[m[2] as string] as number);
  }
  return Math.round(total);
}

/** formatDuration renders milliseconds the way the config accepts them back. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
