/**
 * Renders a capacity plan (model.ts) as the text `bulwark plan` prints: the forecast it
 * read, the load at the peak, where the cores go, the machines and Redis shards, and the
 * assumptions and coefficients behind them, so a reader can check each line.
 *
 * @module
 */
import { coefficientKeys, type Coefficients } from './coefficients.js';
import type { Plan } from './model.js';

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const dec = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

/** renderPlan returns `p` as lines of text (no trailing newline). */
export function renderPlan(p: Plan, c: Coefficients): string {
  const f = p.forecast;
  const out: string[] = [];
  const row = (label: string, value: string) => out.push(`  ${label.padEnd(34)} ${value}`);
  out.push('Bulwark capacity plan (docs/CAPACITY.md)', '', 'Load at the peak');
  row('concurrent connections', int.format(f.peak_ccu));
  row('connects/s during a deploy', int.format(p.load.connectsPerSecond));
  row('subscriptions', int.format(p.load.subscriptions));
  row('publications/s', int.format(p.load.publicationsPerSecond));
  row('deliveries/s', `${int.format(p.load.deliveriesPerSecond)} (audience ${dec.format(f.audience)})`);
  out.push('', 'Cores kept busy (fully busy cores)');
  row('deliveries', dec.format(p.cores.deliveries));
  row('API publishes', dec.format(p.cores.publishes));
  row('idle connections', dec.format(p.cores.idleConnections));
  row('steady peak', dec.format(p.cores.steady));
  row('deploy (steady + reconnects)', dec.format(p.cores.deploy));
  out.push('', 'Plan');
  row(
    'processes',
    `${int.format(p.processes.total)} (CPU at ${Math.round(f.target_cpu * 100)} %: ${int.format(p.processes.forCpu)}; open files: ${int.format(p.processes.forOpenFiles)} at ≤ ${int.format(p.connectionsPerProcessLimit)} connections each)`,
  );
  row('memory', `${dec.format(p.memory.totalGib)} GiB in all, ${int.format(p.memory.perProcessMib)} MiB per process`);
  row(
    'machines',
    `${int.format(p.nodes.total)} × ${f.cores_per_node} cores / ${dec.format(f.memory_per_node)} GiB` +
      (p.nodes.spare > 0 ? ` (${int.format(p.nodes.forPeak)} for the peak + ${p.nodes.spare} spare)` : '') +
      `, bulwark start --workers ${p.nodes.processesPerNode}`,
  );
  if (f.engine === 'redis') {
    row(
      'Redis',
      `${int.format(p.redis.shards)} shard(s) for ${int.format(p.redis.commandsPerSecond)} commands/s (history ${f.history ? 'on' : 'off'}, presence on ${Math.round(f.presence_share * 100)} % of subscriptions)` +
        (p.redis.shards > 1
          ? `: a Redis Cluster of ${int.format(p.redis.shards)} masters (engine.redis.cluster_address)`
          : ''),
    );
  } else {
    row('engine', 'memory (one process, no Redis)');
  }
  if (p.problems.length > 0) {
    out.push('', 'Problems');
    for (const problem of p.problems) out.push(`  ! ${problem}`);
  }
  out.push('', 'Assumptions');
  for (const a of p.assumptions) out.push(`  - ${a}`);
  out.push('', 'Coefficients (per core)');
  for (const key of coefficientKeys) {
    const k = c[key];
    out.push(`  ${key.padEnd(30)} ${dec.format(k.value)} ${k.unit}  (${k.source})`);
  }
  return out.join('\n');
}
