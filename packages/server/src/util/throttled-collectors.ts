/**
 * prom-client's default metrics that are too dear to collect at every scrape on a node with many
 * connections, and the throttle that re-reads them at most every 10 s (metrics.ts installs it).
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';

/**
 * prom-client's default metrics whose collection walks every open file or handle: with 10,000
 * connections one scrape spent ~20 ms listing /proc/self/fd and ~8 ms counting handles, so a
 * console or Prometheus scraping every second cost ~9 % of the CPU a burst of connects needs.
 * They are re-read at most every {@link SLOW_COLLECT_INTERVAL_MS}; scrapes in between report
 * the last reading (fd headroom and handle counts move slowly enough for that).
 */
const connectionSizedCollectors = [
  'process_open_fds',
  'nodejs_active_handles',
  'nodejs_active_handles_total',
  'nodejs_active_resources',
  'nodejs_active_resources_total',
];
const SLOW_COLLECT_INTERVAL_MS = 10_000;

/** throttleConnectionSizedCollectors makes those of `registry`'s metrics collect at most once per interval. */
export function throttleConnectionSizedCollectors(registry: Registry): void {
  for (const name of connectionSizedCollectors) {
    // prom-client calls a metric's `collect` (set from its config) before reading it.
    const metric = registry.getSingleMetric(name) as unknown as { collect?: () => unknown } | undefined;
    const collect = metric?.collect;
    if (metric === undefined || collect === undefined) continue;
    let last = -Infinity;
    metric.collect = function (this: unknown): unknown {
      const now = performance.now();
      if (now - last < SLOW_COLLECT_INTERVAL_MS) return undefined;
      last = now;
      return collect.call(this);
    };
  }
}
