/**
 * The HTML report: one self-contained file (inline SVG charts and CSS, no script, nothing
 * fetched) that a person can open from `bench-results/` or attach to a post-mortem.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Chart, Check } from './scenario.js';

/** HtmlReportInput is what the report shows. */
export interface HtmlReportInput {
  scenario: string;
  timestamp: string;
  machine?: object;
  options?: object;
  checks?: readonly Check[];
  charts?: readonly Chart[];
  /** The text table printed in the terminal. */
  table?: string;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

/** escapeHtml makes text safe inside HTML elements and attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * niceScale picks an axis for values up to `max`: a step of 1, 2, 2.5 or 5 × a power of ten that
 * gives about four ticks, and the top as the first multiple of the step at or above `max` (so a
 * 27 s run ends its axis at 30 s, not 50 s).
 */
export function niceScale(max: number): { top: number; step: number } {
  if (!(max > 0) || !Number.isFinite(max)) return { top: 1, step: 0.25 };
  const rough = max / 4;
  const p = 10 ** Math.floor(Math.log10(rough));
  const step = ([1, 2, 2.5, 5, 10].find((m) => rough <= m * p) ?? 10) * p;
  return { top: Math.ceil(max / step - 1e-9) * step, step };
}

function label(v: number): string {
  if (Math.abs(v) >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (Math.abs(v) >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(2)}`;
}

/** renderChart draws one chart as an SVG line chart with axes, ticks and a legend. */
export function renderChart(chart: Chart, width = 760, height = 280): string {
  const m = { left: 64, right: 16, top: 28, bottom: 44 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const all = chart.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = niceScale(Math.max(0, ...all.map(([x]) => x)));
  const ys = niceScale(Math.max(0, ...all.map(([, y]) => y)));
  const xMax = xs.top;
  const yMax = ys.top;
  const sx = (x: number) => m.left + (x / xMax) * w;
  const sy = (y: number) => m.top + h - (y / yMax) * h;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(chart.title)}">`,
    `<text x="${m.left}" y="18" class="title">${escapeHtml(chart.title)}</text>`,
  ];
  for (let yv = 0; yv <= yMax + ys.step / 2; yv += ys.step) {
    parts.push(
      `<line x1="${m.left}" x2="${m.left + w}" y1="${sy(yv)}" y2="${sy(yv)}" class="grid"/>`,
      `<text x="${m.left - 6}" y="${sy(yv) + 4}" text-anchor="end">${label(yv)}</text>`,
    );
  }
  for (let xv = 0; xv <= xMax + xs.step / 2; xv += xs.step) {
    parts.push(`<text x="${sx(xv)}" y="${m.top + h + 16}" text-anchor="middle">${label(xv)}</text>`);
  }
  parts.push(
    `<text x="${m.left + w / 2}" y="${height - 6}" text-anchor="middle">${escapeHtml(chart.xLabel)}</text>`,
    `<text transform="translate(14 ${m.top + h / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(chart.yLabel)}</text>`,
  );
  chart.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] as string;
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length > 1) {
      const d = pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${d}" fill="none" stroke="${color}" stroke-width="1.8"/>`);
    } else if (pts.length === 1) {
      const [x, y] = pts[0] as [number, number];
      parts.push(`<circle cx="${sx(x)}" cy="${sy(y)}" r="3" fill="${color}"/>`);
    }
    const lx = m.left + 8 + (i % 3) * 230;
    const ly = m.top + 12 + Math.floor(i / 3) * 14;
    parts.push(
      `<rect x="${lx}" y="${ly - 8}" width="10" height="10" fill="${color}"/>`,
      `<text x="${lx + 14}" y="${ly + 1}">${escapeHtml(s.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** renderHtmlReport builds the whole page. */
export function renderHtmlReport(r: HtmlReportInput): string {
  const checks = r.checks ?? [];
  const passed = checks.filter((c) => c.pass).length;
  const verdict =
    checks.length === 0
      ? ''
      : `<p class="${passed === checks.length ? 'pass' : 'fail'}">Verdict: ${passed === checks.length ? 'PASS' : 'FAIL'} (${passed}/${checks.length} checks)</p>`;
  const checkRows = checks
    .map(
      (c) =>
        `<tr class="${c.pass ? 'pass' : 'fail'}"><td>${c.pass ? 'PASS' : 'FAIL'}</td><td>${escapeHtml(c.name)}</td>` +
        `<td>${escapeHtml(String(+c.value.toFixed(3)))} ${escapeHtml(c.unit)}</td><td>${escapeHtml(c.op)} ${c.limit} ${escapeHtml(c.unit)}</td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>bulwark-bench: ${escapeHtml(r.scenario)} ${escapeHtml(r.timestamp)}</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; max-width: 1000px; }
svg text { font: 11px system-ui, sans-serif; fill: #333; } svg .title { font-weight: 600; font-size: 13px; }
svg .grid { stroke: #e4e4e4; } table { border-collapse: collapse; } td, th { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; }
.pass { color: #186a1d; } .fail { color: #b00020; font-weight: 600; } pre { background: #f6f6f6; padding: 10px; overflow-x: auto; }
details { margin: 12px 0; }
</style></head><body>
<h1>${escapeHtml(r.scenario)}</h1>
<p>Run at ${escapeHtml(r.timestamp)} by bulwark-bench.</p>
${verdict}
${checks.length ? `<table><tr><th></th><th>check</th><th>measured</th><th>threshold</th></tr>\n${checkRows}</table>` : ''}
${(r.charts ?? []).map((c) => `<figure>${renderChart(c)}</figure>`).join('\n')}
${r.table ? `<h2>Results</h2><pre>${escapeHtml(r.table)}</pre>` : ''}
<details><summary>Options</summary><pre>${escapeHtml(JSON.stringify(r.options ?? {}, null, 2))}</pre></details>
<details><summary>Machine</summary><pre>${escapeHtml(JSON.stringify(r.machine ?? {}, null, 2))}</pre></details>
</body></html>
`;
}

/** writeHtmlReport writes the page to `file` and returns its path. */
export function writeHtmlReport(file: string, r: HtmlReportInput): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, renderHtmlReport(r));
  return file;
}
