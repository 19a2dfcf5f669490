/**
 * The `consumers` section of the config: consumers of a backend's events that publish them
 * through this node. `consumers.jetstream` is the NATS JetStream consumer (docs/JETSTREAM.md):
 * a durable pull consumer on a stream the backend publishes Centrifugo API commands to. The
 * names follow Centrifugo's `nats_jetstream` consumer where it has one (url, stream_name,
 * subjects, durable_consumer_name, deliver_policy, max_ack_pending); the rest are Bulwark's.
 * ../cross-key-rules.ts requires stream_name with enabled, and ack_wait shorter than
 * channel.idempotent_result_ttl (a redelivery must still find the first publish's key).
 *
 * @module
 */
import { z } from 'zod';
import { duration } from './common.js';
import { natsTlsSchema, natsToken } from './nats-access.js';

/** jetstreamSchema is `consumers.jetstream`. */
const jetstreamSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        'Consume the JetStream stream consumers.jetstream.stream_name and publish its messages through this node (any engine). Several nodes may run it on one durable consumer: each message is published once; with max_ack_pending 1, in stream order.',
      ),
    url: z
      .string()
      .default('nats://127.0.0.1:4222')
      .describe(
        'NATS server(s) with JetStream: one `nats://[user:password@]host:port` URL, or several separated by commas. Credentials in it are never logged.',
      ),
    stream_name: z
      .string()
      .regex(
        /^[^\s.*>/\\]*$/,
        'stream_name must be a JetStream stream name (no whitespace, ".", "*", ">", "/", "\\\\")',
      )
      .default('')
      .describe(
        'The stream to consume; the backend creates it and publishes to its subjects. Required with consumers.jetstream.enabled.',
      ),
    subjects: z
      .array(z.string().min(1))
      .default([])
      .describe(
        "Only the stream's messages on these subjects (wildcards allowed; the consumer's filter subjects); empty: every message of the stream.",
      ),
    durable_consumer_name: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, 'durable_consumer_name must be [A-Za-z0-9_-]')
      .default('bulwark')
      .describe(
        'Name of the durable pull consumer, created on the stream if missing (its settings updated if it exists). Every node of one deployment uses the same name so they share it.',
      ),
    deliver_policy: z
      .enum(['new', 'all'])
      .default('new')
      .describe(
        'Where a newly created consumer starts: new (messages published after it was created) or all (the whole stream). An existing consumer resumes where it was.',
      ),
    max_ack_pending: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(1)
      .describe(
        'Most messages handed out and not yet acknowledged, across all nodes. 1 (the default) keeps stream order (so order per channel) across any number of nodes; more is faster but keeps order per channel only with a single node consuming (docs/JETSTREAM.md).',
      ),
    ack_wait: duration('30s').describe(
      'How long JetStream waits for the acknowledgement of a message before handing it out again (a node that died holding it). Must be shorter than channel.idempotent_result_ttl so that the key suppresses a second publish; a node retrying a message keeps it by reporting progress.',
    ),
    batch_size: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(100)
      .describe('Most messages one pull request asks for (never more than max_ack_pending are handed out at once).'),
    fetch_expires: duration('1s')
      .refine((ms) => ms >= 1000, 'fetch_expires must be at least 1s (the JetStream client refuses shorter pulls)')
      .describe(
        'Longest one pull request waits for messages (at least 1s); the consumer then checks pausing and pulls again.',
      ),
    max_attempts: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(5)
      .describe(
        'Failed publishes of one message (errors other than an unreachable engine, which is retried without counting) before it is terminated with reason publish_failed. A message that cannot be published at all (not an envelope, bad channel, too large) is terminated at once.',
      ),
    retry_interval: duration('500ms').describe(
      'Wait before publishing a failed message again (it is held meanwhile, in order), while paused, and between attempts to reach NATS or the stream.',
    ),
    connect_timeout: duration('2s').describe('Longest wait for a connection to NATS, and for one JetStream API call.'),
    token: natsToken,
    tls: natsTlsSchema,
  })
  .prefault({})
  .describe('The NATS JetStream consumer (docs/JETSTREAM.md).');

/** consumersSection is the `consumers` section. */
export const consumersSection = z
  .strictObject({
    jetstream: jetstreamSchema,
  })
  .prefault({});
