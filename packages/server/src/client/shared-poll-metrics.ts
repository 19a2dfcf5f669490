/**
 * The metrics of shared poll subscriptions, on the node's registry: what is tracked, what the
 * backend is asked and how often it fails, what changes reach clients, and what is refused.
 * Kept apart from metrics.ts so the feature's metrics live with it.
 *
 * @module
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** SharedPollRejection is why a shared poll subscribe or track was refused. */
export type SharedPollRejection =
  | 'type_mismatch'
  | 'bad_request'
  | 'bad_key'
  | 'signature_invalid'
  | 'signature_expired'
  | 'connection_limit'
  | 'node_limit';

/** SharedPollMetrics holds the shared poll metrics of one node. */
export class SharedPollMetrics {
  /** Tracked (connection, key) pairs on this node. */
  readonly trackedPairs: Gauge;
  /** Distinct tracked keys on this node, all channels together. */
  readonly trackedKeys: Gauge;
  /** Refresh proxy calls this node made, by result. */
  readonly originRequests: Counter<'result'>;
  /** Item changes (new versions and removals) this node stored and fanned out. */
  readonly itemsChanged: Counter;
  /** Publications pushed to trackers on this node. */
  readonly deliveries: Counter;
  /** Duration of the cycles this node ran. */
  readonly cycleDuration: Histogram;
  /** Channels on this node whose last cycle (on any node) failed: clients hold stale data. */
  readonly staleChannels: Gauge;
  /** Refused subscribes and tracks, by reason. */
  readonly rejections: Counter<'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.trackedPairs = new Gauge({
      name: 'bulwark_shared_poll_tracked_pairs',
      help: 'Tracked (connection, key) pairs of shared poll subscriptions on this node.',
      registers,
    });
    this.trackedKeys = new Gauge({
      name: 'bulwark_shared_poll_tracked_keys',
      help: 'Distinct keys tracked by shared poll subscriptions on this node.',
      registers,
    });
    this.originRequests = new Counter({
      name: 'bulwark_shared_poll_origin_requests_total',
      help: 'Shared poll refresh proxy calls this node made, by result (ok, error).',
      labelNames: ['result'],
      registers,
    });
    this.itemsChanged = new Counter({
      name: 'bulwark_shared_poll_items_changed_total',
      help: 'Shared poll item changes (new versions and removals) this node stored and sent to every node.',
      registers,
    });
    this.deliveries = new Counter({
      name: 'bulwark_shared_poll_deliveries_total',
      help: 'Shared poll publications pushed to tracking clients on this node.',
      registers,
    });
    this.cycleDuration = new Histogram({
      name: 'bulwark_shared_poll_cycle_duration_seconds',
      help: 'Duration of the shared poll refresh cycles this node ran (every batch of one channel).',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.staleChannels = new Gauge({
      name: 'bulwark_shared_poll_stale_channels',
      help: 'Shared poll channels on this node whose last refresh failed: their clients keep the last data until one succeeds.',
      registers,
    });
    this.rejections = new Counter({
      name: 'bulwark_shared_poll_rejections_total',
      help: 'Refused shared poll subscribes and tracks, by reason.',
      labelNames: ['reason'],
      registers,
    });
    for (const result of ['ok', 'error']) this.originRequests.inc({ result }, 0);
  }

  /** reject counts a refusal. */
  reject(reason: SharedPollRejection): void {
    this.rejections.inc({ reason });
  }
}
