/**
 * The jetstream scenario (issue 16): a backend publishes its game events to a JetStream stream
 * in the documented message format (docs/JETSTREAM.md), and Bulwark's JetStream consumer
 * publishes them to lean subscribers. First a fixed rate, then a ramp (each step the rate ×
 * ramp-factor, stopping at the first failing step). Reported per phase: messages/s consumed,
 * JetStream publish → client delivery latency p50/p99, loss, duplicates and order (which must be
 * none), the consumer's lag, server and load-generator CPU; and which side saturated first.
 * Loopback only; bounded in time (see maxRunSeconds) and count; the stream and Bulwark's durable
 * consumer are deleted at the end. Bulwark runs on the memory engine, one process.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { check, type Scenario } from '../../harness/scenario.js';
import { bulwarkAvailable, onFreshBulwark } from '../../harness/targets.js';
import { JetStreamBackend } from './backend.js';
import { jetstreamFlags, maxRunSeconds, readOptions, type JetStreamOptions } from './options.js';
import { jetstreamTable } from './report.js';
import { runPhases, type RunResult } from './run.js';

/** bulwarkConfig is the consumer's config for one run (stream, subjects and durable name are the run's own). */
export function bulwarkConfig(
  o: JetStreamOptions,
  names: { stream: string; subject: string; durable: string },
): Record<string, unknown> {
  return {
    consumers: {
      jetstream: {
        enabled: true,
        url: o.natsUrl,
        stream_name: names.stream,
        subjects: [`${names.subject}.>`],
        durable_consumer_name: names.durable,
        deliver_policy: 'all',
        max_ack_pending: o.maxAckPending,
        batch_size: o.batch,
        fetch_expires: '1s',
        retry_interval: '100ms',
      },
    },
    channel: { namespaces: [{ name: 'board', allow_subscribe_for_client: true }] },
  };
}

export const jetstreamScenario: Scenario = {
  name: 'jetstream',
  summary:
    'Bulwark consuming a JetStream stream: msg/s, publish-to-client latency, exactly once, consumer lag, which side saturates (issue 16)',
  flags: Object.values(jetstreamFlags),
  async run(ctx) {
    const o = readOptions(ctx.flags);
    if (!bulwarkAvailable(ctx.bulwark.bulwarkMain)) throw new Error('jetstream: Bulwark is not built');
    const id = randomBytes(4).toString('hex');
    const names = { stream: `BENCH_JS_${id}`, subject: `bench.${id}.events`, durable: `bulwark_bench_${id}` };
    ctx.log(`jetstream: stream ${names.stream} on ${o.natsUrl}; at most ${Math.round(maxRunSeconds(o))} s of phases`);
    const backend = await JetStreamBackend.open(o.natsUrl, names.stream, names.subject, o);
    let r: RunResult;
    try {
      r = await onFreshBulwark(ctx.bulwark, bulwarkConfig(o, names), 'jetstream', ctx.log, (server) =>
        runPhases(o, server, backend, names.durable, ctx.log, ctx.progress),
      );
    } finally {
      await backend.close(ctx.log);
    }
    if (backend.firstError !== undefined) ctx.log(`jetstream: first publish error: ${backend.firstError}`);
    // Messages left in the consumer when a drain timed out are late, not lost: not counted.
    const drained = r.phases.filter((p) => p.lagAfterDrain === 0 && p.publishErrors === 0);
    const sum = (k: 'missing' | 'duplicates' | 'outOfOrder', phases = r.phases) => phases.reduce((s, p) => s + p[k], 0);
    const fixed = r.phases[0]!;
    const checks = [
      check('deliveries lost', sum('missing', drained), '==', 0, 'deliveries'),
      check('duplicate deliveries', sum('duplicates'), '==', 0, 'deliveries'),
      check('deliveries out of order', sum('outOfOrder'), '==', 0, 'deliveries'),
      check('fixed rate consumed', fixed.consumedPerSec, '>=', Math.floor(o.rate * 0.95), 'msg/s'),
      check('fixed rate p99', fixed.latencyMs.p99, '<=', o.p99LimitMs, 'ms'),
    ];
    const table = jetstreamTable(o, r);
    return { options: o, results: r, checks, charts: [], table };
  },
};
