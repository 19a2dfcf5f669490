/**
 * How the simulator writes numbers for people: thousands separators, MiB, p50 / p99 pairs,
 * shares in per cent, counts by key, left-aligned tables and the PASS/FAIL verdict lines. Every
 * scenario's report formats through here, so one number looks the same in every table.
 *
 * @module
 */
import { type Check } from './scenario.js';
import { type LatencySummary } from './stats.js';

/** Bytes in a mebibyte. */
export const MiB = 2 ** 20;

/** formatTable lays out rows as left-aligned, space-padded columns. */
export function formatTable(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '))
    .join('\n');
}

/** fmt formats a number with thousands separators and `digits` decimals; '-' when missing or not finite. */
export const fmt = (v: number | undefined, digits = 0): string =>
  v === undefined || !Number.isFinite(v)
    ? '-'
    : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** fmtCounts formats counts by key (e.g. close codes) as `5× 3008, 2× 1006`; '-' when empty. */
export const fmtCounts = (counts: Record<string, number>): string =>
  Object.entries(counts)
    .map(([key, n]) => `${fmt(n)}× ${key}`)
    .join(', ') || '-';

/** fmtMiB formats bytes as MiB (no unit), `digits` decimals. */
export const fmtMiB = (bytes: number, digits = 1): string => fmt(bytes / MiB, digits);

/** p50p99 formats a latency summary as `p50 / p99` (1 decimal), '-' when it holds no sample. */
export const p50p99 = (s: LatencySummary): string => (s.count > 0 ? `${fmt(s.p50, 1)} / ${fmt(s.p99, 1)}` : '-');

/**
 * percentOf is part/whole in per cent, unrounded (a rounded value would pass a check it fails:
 * 1.0025 % ≤ 1 %; tables round for display), and `ifEmpty` when whole is 0.
 */
export const percentOf = (part: number, whole: number, ifEmpty = 0): number =>
  whole > 0 ? (part / whole) * 100 : ifEmpty;

/** checksTable renders a scenario's pass/fail verdicts ('' when it has none). */
export function checksTable(checks: readonly Check[]): string {
  if (checks.length === 0) return '';
  const rows = checks.map((c) => {
    const v = Number.isInteger(c.value) ? c.value.toLocaleString('en-US') : c.value.toFixed(2);
    const unit = c.unit ? ` ${c.unit}` : '';
    return `  ${c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${v}${unit} (must be ${c.op} ${c.limit.toLocaleString('en-US')}${unit})`;
  });
  const passed = checks.filter((c) => c.pass).length;
  return [`verdict: ${passed === checks.length ? 'PASS' : 'FAIL'} (${passed}/${checks.length} checks)`, ...rows].join(
    '\n',
  );
}
