/**
 * Every metric name the documentation mentions (`bulwark_…`, and the stock `process_…` and
 * `nodejs_…` ones, in docs/*.md and README.md) exists
 * in a running node's /metrics, so an alert copied from the docs watches something real. The
 * node runs the Redis engine (the shared Redis, under a random prefix), which exports every
 * metric the memory engine does and the Redis-only ones. A name ending in `_` is a prefix (some
 * metric must start with it); a histogram's `_bucket`, `_sum` and `_count` series count as the
 * histogram.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { before, it } from 'node:test';
import { describeRedis, redisUrl, removeKeys, uniquePrefix } from './helpers/redis.js';
import { startTestServer } from './helpers/server.js';

const root = new URL('../../../../', import.meta.url);

/** docMentions maps each `bulwark_…` name in docs/*.md and README.md to the files naming it. */
function docMentions(): Map<string, string[]> {
  const files = [
    'README.md',
    ...readdirSync(new URL('docs/', root))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  const names = new Map<string, string[]>();
  for (const file of files) {
    const text = readFileSync(new URL(file, root), 'utf8');
    for (const [name] of text.matchAll(/\b(?:bulwark|process|nodejs)_[a-z0-9_]*/g)) {
      const where = names.get(name) ?? [];
      if (!where.includes(file)) where.push(file);
      names.set(name, where);
    }
  }
  return names;
}

/** exported lists every metric name a /metrics text declares (its `# TYPE` lines) and each series. */
function exported(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (!type) continue;
    const [, name, kind] = type as unknown as [string, string, string];
    names.add(name);
    if (kind === 'histogram' || kind === 'summary') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
  }
  return names;
}

/** deployMentions maps each metric name the alert rules and the Grafana dashboard query to its file. */
function deployMentions(): Map<string, string[]> {
  const names = new Map<string, string[]>();
  const add = (file: string, expr: string) => {
    for (const [name] of expr.matchAll(/\b(?:bulwark|process|nodejs)_[a-z0-9_]*/g)) {
      const where = names.get(name) ?? [];
      if (!where.includes(file)) where.push(file);
      names.set(name, where);
    }
  };
  const alerts = 'deploy/prometheus/bulwark-alerts.yml';
  for (const line of readFileSync(new URL(alerts, root), 'utf8').split('\n')) {
    const m = /^\s*expr:\s*(.+)$/.exec(line);
    if (m) add(alerts, m[1]!);
  }
  const dashboard = 'deploy/grafana/bulwark-dashboard.json';
  const json = JSON.parse(readFileSync(new URL(dashboard, root), 'utf8')) as {
    panels: { targets: { expr: string }[] }[];
    templating: { list: { query?: unknown }[] };
  };
  for (const panel of json.panels) for (const target of panel.targets) add(dashboard, target.expr);
  for (const v of json.templating.list) if (typeof v.query === 'string') add(dashboard, v.query);
  return names;
}

/**
 * SQL names the docs show that merely look like metrics: the outbox table's default name and
 * its indexes (docs/OUTBOX.md), and the PostgreSQL engine's publish function (docs/POSTGRESQL.md).
 */
const sqlNames = new Set(['bulwark_outbox', 'bulwark_outbox_waiting', 'bulwark_outbox_channel', 'bulwark_publish']);

/** missingFrom lists the names of `mentions` that `names` lacks (a name ending in `_` is a prefix). */
function missingFrom(names: Set<string>, mentions: Map<string, string[]>): string[] {
  return [...mentions]
    .filter(([name]) => !sqlNames.has(name))
    .filter(([name]) => (name.endsWith('_') ? ![...names].some((n) => n.startsWith(name)) : !names.has(name)))
    .map(([name, files]) => `${name} (${files.join(', ')})`);
}

void describeRedis('docs: metric names', () => {
  let names: Set<string>;
  before(async () => {
    const prefix = uniquePrefix();
    const srv = await startTestServer({ engine: { type: 'redis', redis: { address: [redisUrl], prefix } } });
    try {
      names = exported(await (await fetch(`${srv.httpUrl}/metrics`)).text());
    } finally {
      await srv.close();
      await removeKeys(prefix);
    }
  });

  it('every metric the docs mention exists in /metrics', () => {
    const mentions = docMentions();
    assert.ok(mentions.size > 10, `found only ${mentions.size} metric names in the docs`);
    const missing = missingFrom(names, mentions);
    assert.deepEqual(missing, [], `metric names in the docs that /metrics does not have: ${missing.join('; ')}`);
  });

  it('every metric the alert rules and the Grafana dashboard query exists in /metrics', () => {
    const mentions = deployMentions();
    assert.ok(mentions.size > 15, `found only ${mentions.size} metric names in deploy/`);
    const missing = missingFrom(names, mentions);
    assert.deepEqual(missing, [], `metric names in deploy/ that /metrics does not have: ${missing.join('; ')}`);
  });
});
