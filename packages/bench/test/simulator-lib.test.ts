/**
 * Tests of the simulator's shared reporting pieces: pass/fail checks, time buckets, the
 * progress bar and the HTML report.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeHtml, niceScale, renderChart, renderHtmlReport } from '../src/harness/html-report.js';
import { renderBar } from '../src/harness/progress.js';
import { check } from '../src/harness/scenario.js';
import { Timeline } from '../src/harness/timeline.js';

describe('check', () => {
  it('compares with each operator', () => {
    assert.equal(check('a', 5, '<=', 5).pass, true);
    assert.equal(check('a', 6, '<=', 5).pass, false);
    assert.equal(check('a', 5, '<', 5).pass, false);
    assert.equal(check('a', 5, '>=', 5).pass, true);
    assert.equal(check('a', 4, '>', 5).pass, false);
    assert.equal(check('a', 0, '==', 0).pass, true);
    assert.equal(check('a', 1, '==', 0).pass, false);
  });

  it('fails a value that is not a number, whatever the operator', () => {
    assert.equal(check('a', Number.NaN, '<=', 5).pass, false);
    assert.equal(check('a', Number.POSITIVE_INFINITY, '>=', 5).pass, false);
  });
});

describe('Timeline', () => {
  it('turns counts into rates per second and running totals', () => {
    const t = new Timeline(500, 0);
    t.count('msg', 10, 100); // bucket 0
    t.count('msg', 5, 400); // bucket 0
    t.count('msg', 20, 1_200); // bucket 2
    assert.deepEqual(t.rate('msg').points, [
      [0, 30],
      [0.5, 0],
      [1, 40],
    ]);
    assert.deepEqual(t.total('msg').points, [
      [0.5, 15],
      [1, 15],
      [1.5, 35],
    ]);
  });

  it('gives nearest-rank percentiles per bucket and leaves out empty buckets', () => {
    const t = new Timeline(1000, 0);
    for (let i = 1; i <= 100; i++) t.sample('lat', i, 10);
    t.sample('lat', 7, 2_500);
    const p99 = t.quantile('lat', 99);
    assert.deepEqual(p99.points, [
      [0, 99],
      [2, 7],
    ]);
    assert.equal(p99.label, 'lat p99');
  });

  it('counts events before the start in the first bucket', () => {
    const t = new Timeline(1000, 5_000);
    t.count('x', 1, 4_000);
    assert.deepEqual(t.rate('x').points, [[0, 1]]);
  });
});

describe('renderBar', () => {
  it('draws a bar clamped to 0..100 %', () => {
    assert.equal(renderBar(0.5, 10), '[#####.....]  50%');
    assert.equal(renderBar(2, 4), '[####] 100%');
    assert.equal(renderBar(Number.NaN, 4), '[....]   0%');
  });
});

describe('HTML report', () => {
  it('escapes text', () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;');
  });

  it('ends an axis at the first nice step at or above the largest value', () => {
    assert.deepEqual(niceScale(0), { top: 1, step: 0.25 });
    assert.deepEqual(niceScale(27), { top: 30, step: 10 });
    assert.deepEqual(niceScale(100), { top: 100, step: 25 });
    assert.deepEqual(niceScale(730), { top: 800, step: 200 });
    assert.deepEqual(niceScale(3.2), { top: 4, step: 1 });
  });

  it('draws one polyline per series with points inside the plot', () => {
    const svg = renderChart(
      {
        title: 'p99',
        xLabel: 's',
        yLabel: 'ms',
        series: [
          {
            label: 'push',
            points: [
              [0, 1],
              [1, 2],
              [2, 4],
            ],
          },
          {
            label: 'poll',
            points: [
              [0, 100],
              [1, 200],
            ],
          },
        ],
      },
      400,
      200,
    );
    assert.equal(svg.match(/<polyline/g)?.length, 2);
    for (const m of svg.matchAll(/points="([^"]+)"/g)) {
      for (const pair of (m[1] as string).split(' ')) {
        const [x, y] = pair.split(',').map(Number) as [number, number];
        assert.ok(x >= 0 && x <= 400 && y >= 0 && y <= 200, `point ${pair} outside the chart`);
      }
    }
  });

  it('shows the verdict and each check, and escapes the table', () => {
    const html = renderHtmlReport({
      scenario: 'cold-cache',
      timestamp: '2026-11-22T00:00:00Z',
      checks: [check('origin calls', 1000, '<=', 1050, 'calls'), check('peak rate', 2500, '<=', 2000, '/s')],
      charts: [],
      table: 'a < b',
    });
    assert.match(html, /Verdict: FAIL \(1\/2 checks\)/);
    assert.match(html, /<td>PASS<\/td><td>origin calls<\/td>/);
    assert.match(html, /<td>FAIL<\/td><td>peak rate<\/td>/);
    assert.match(html, /a &#60; b/);
    assert.doesNotMatch(html, /<script/);
  });
});
