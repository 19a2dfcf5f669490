/**
 * The NATS JetStream consumer (docs/JETSTREAM.md): a durable pull consumer on a stream a
 * backend publishes publish commands to (message.ts); each message is published through the
 * node's normal publish path with the idempotency key `jetstream:<stream>:<stream sequence>`
 * (or the envelope's own) and acknowledged only after the publish succeeded. A node that dies
 * holding a message leaves it to JetStream, which hands it out again after ack_wait; its
 * second publish is then suppressed by the key (ack_wait < channel.idempotent_result_ttl, a
 * config rule): nothing is published twice, nothing skipped.
 *
 * Order: one node handles its messages one after the other in stream order, and holds a
 * message that failed (retrying it every retry_interval) instead of letting later ones pass;
 * with max_ack_pending 1 JetStream hands out the next message only after this one was
 * acknowledged or terminated, so all nodes together publish in stream order.
 *
 * A message that can never be published (not an envelope, bad channel, too large, or
 * max_attempts failed publishes) is terminated (`term`, never redelivered) with its reason
 * logged and counted. Back-pressure: while the node sheds load or is not ready it pulls
 * nothing (../outbox/pause.ts) and the messages wait in the stream.
 *
 * @module
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type Consumer, type JsMsg } from '@nats-io/jetstream';
import type { ConsumerMessages } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import type { Config } from '../config/schema.js';
import { natsAccessHint, natsAccessOptions } from '../engine/nats/access.js';
import { natsAddress } from '../engine/nats/fanout-nats.js';
import type { Metrics } from '../metrics.js';
import { publishEvent, type EventSourceContext } from '../outbox/event-publisher.js';
import { classifyChannelError, describe, type Outcome } from '../outbox/outcome.js';
import { PauseGate } from '../outbox/pause.js';
import { WakeableSleep } from '../util/wakeable-sleep.js';
import { parseCommand } from './message.js';

/** JetStreamContext is what the consumer needs from its node. */
export interface JetStreamContext extends EventSourceContext {
  readonly metrics: Pick<Metrics, 'jetstream' | 'publications'>;
}

/** JetStreamConsumer consumes one stream for one node; start it once, stop it once. */
export class JetStreamConsumer {
  readonly #ctx: JetStreamContext;
  readonly #cfg: Config['consumers']['jetstream'];
  readonly #gate: PauseGate;
  readonly #fields: Record<string, unknown>;
  #running = false;
  #loop: Promise<void> | undefined;
  readonly #pause = new WakeableSleep();
  #nc: NatsConnection | undefined;
  #consumer: Consumer | undefined;
  #fetch: ConsumerMessages | undefined;

  constructor(ctx: JetStreamContext) {
    this.#ctx = ctx;
    this.#cfg = ctx.config.consumers.jetstream;
    this.#fields = { stream: this.#cfg.stream_name, consumer: this.#cfg.durable_consumer_name };
    this.#gate = new PauseGate(ctx, ctx.metrics.jetstream.paused, 'jetstream consumer', this.#fields);
  }

  /** start begins consuming in the background. */
  start(): void {
    if (this.#running || this.#loop !== undefined) return;
    this.#running = true;
    this.#ctx.log.info({ ...this.#fields, url: natsAddress(this.#cfg.url) }, 'jetstream consumer started');
    this.#loop = this.#run();
  }

  /** stop ends the pull in flight, finishes (or gives back) the message at hand, and closes the connection. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#pause.wake();
    this.#fetch?.stop();
    await this.#loop;
    await this.#nc?.close().catch(() => undefined);
    this.#gate.clear();
  }

  async #run(): Promise<void> {
    while (this.#running) {
      if (this.#gate.paused()) {
        await this.#pause.sleep(this.#cfg.retry_interval);
        continue;
      }
      try {
        const consumer = this.#consumer ?? (await this.#bind());
        await this.#pull(consumer);
      } catch (err) {
        if (!this.#running) break;
        this.#consumer = undefined;
        this.#natsFailed(err);
        await this.#pause.sleep(this.#cfg.retry_interval);
      }
    }
  }

  /** #bind connects (once; the client reconnects by itself) and creates or updates the durable consumer. */
  async #bind(): Promise<Consumer> {
    const c = this.#cfg;
    if (this.#nc === undefined) {
      this.#nc = await connect({
        ...natsAccessOptions(c, 'consumers.jetstream'),
        servers: c.url.split(',').map((u) => u.trim()),
        name: 'bulwark-jetstream',
        timeout: c.connect_timeout,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: c.retry_interval,
      });
    }
    const jsm = await jetstreamManager(this.#nc, { timeout: c.connect_timeout });
    const settings = {
      max_ack_pending: c.max_ack_pending,
      ack_wait: nanos(c.ack_wait),
      max_deliver: -1, // never dropped by JetStream: the consumer terminates what it gives up on
      // One subject as filter_subject, which every JetStream server takes; several need NATS 2.10.
      ...(c.subjects.length === 1 ? { filter_subject: c.subjects[0] } : {}),
      ...(c.subjects.length > 1 ? { filter_subjects: c.subjects } : {}),
    };
    try {
      await jsm.consumers.info(c.stream_name, c.durable_consumer_name);
      await jsm.consumers.update(c.stream_name, c.durable_consumer_name, settings);
    } catch (err) {
      if (!/consumer not found/i.test(describe(err))) throw err;
      await jsm.consumers.add(c.stream_name, {
        ...settings,
        durable_name: c.durable_consumer_name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: c.deliver_policy === 'all' ? DeliverPolicy.All : DeliverPolicy.New,
      });
    }
    const consumer = await jetstream(this.#nc, { timeout: c.connect_timeout }).consumers.get(
      c.stream_name,
      c.durable_consumer_name,
    );
    this.#consumer = consumer;
    this.#ctx.log.info(this.#fields, 'jetstream consumer bound');
    return consumer;
  }

  /** #pull asks for one batch and handles its messages in order, until it ends or the node pauses. */
  async #pull(consumer: Consumer): Promise<void> {
    const msgs = await consumer.fetch({ max_messages: this.#cfg.batch_size, expires: this.#cfg.fetch_expires });
    this.#fetch = msgs;
    try {
      for await (const m of msgs) {
        if (!this.#running || this.#gate.paused()) {
          m.nak(); // handed out again first: nothing behind it passes it
          msgs.stop();
          break;
        }
        this.#ctx.metrics.jetstream.pending.set(m.info.pending);
        await this.#handle(m);
      }
    } finally {
      this.#fetch = undefined;
    }
    const err = await msgs.closed();
    if (err) throw err;
  }

  /** #handle publishes one message, retrying it in place, and acknowledges or terminates it. */
  async #handle(m: JsMsg): Promise<void> {
    const key = `jetstream:${m.info.stream}:${m.info.streamSequence}`;
    let attempts = 0;
    for (;;) {
      const outcome = await this.#publish(m, key);
      if (outcome.kind === 'published') {
        m.ack();
        this.#ctx.metrics.jetstream.published.inc();
        return;
      }
      if (outcome.kind === 'attempt') attempts++;
      if (outcome.kind === 'quarantine' || attempts >= this.#cfg.max_attempts) {
        const reason = outcome.kind === 'quarantine' ? outcome.reason : 'publish_failed';
        m.term(); // no reason text: NATS before 2.10.4 takes only a bare +TERM (the reason is logged here)
        this.#ctx.metrics.jetstream.terminated.inc({ reason });
        this.#ctx.log.warn(
          { ...this.#fields, seq: m.info.streamSequence, subject: m.subject, reason, detail: outcome.detail },
          'jetstream message terminated',
        );
        return;
      }
      this.#failed(m, outcome, attempts);
      await this.#pause.sleep(this.#cfg.retry_interval);
      if (!this.#running) {
        m.nak(); // another node (or this one, started again) takes it at once, in order
        return;
      }
      m.working(); // keep it: ack_wait restarts, so JetStream does not hand it to another node
    }
  }

  /**
   * #publish publishes a message's command. A broadcast checks every channel first and publishes
   * nowhere when one is bad (as the server API's broadcast); a retry after a failure publishes to
   * every channel again, and the key suppresses it where it was already published.
   */
  async #publish(m: JsMsg, key: string): Promise<Outcome> {
    const cmd = parseCommand(m.data);
    if ('kind' in cmd) return cmd;
    const idempotencyKey = cmd.idempotencyKey ?? key;
    if (cmd.channels.length === 1) {
      return publishEvent(this.#ctx, 'jetstream', cmd.channels[0] as string, cmd.data, idempotencyKey);
    }
    for (const channel of cmd.channels) {
      try {
        this.#ctx.rules.resolve(channel);
      } catch (err) {
        return classifyChannelError(err);
      }
    }
    const outcomes = await Promise.all(
      cmd.channels.map((ch) => publishEvent(this.#ctx, 'jetstream', ch, cmd.data, idempotencyKey)),
    );
    // The worst outcome decides: hold and retry (engine, attempt) before giving up (quarantine).
    for (const kind of ['engine', 'attempt', 'quarantine'] as const) {
      const worst = outcomes.find((o) => o.kind === kind);
      if (worst !== undefined) return worst;
    }
    return { kind: 'published' };
  }

  #failed(m: JsMsg, outcome: Outcome & { detail: string }, attempts: number): void {
    const reason = outcome.kind === 'engine' ? 'engine' : 'publish';
    this.#ctx.metrics.jetstream.failures.inc({ reason });
    this.#ctx.burstLog.error(
      `jetstream.${reason}`,
      { ...this.#fields, seq: m.info.streamSequence, attempts, detail: outcome.detail },
      outcome.kind === 'engine'
        ? 'jetstream publish failed: engine unavailable; the message is held and retried'
        : 'jetstream publish failed; the message is retried up to consumers.jetstream.max_attempts',
    );
  }

  #natsFailed(err: unknown): void {
    this.#ctx.metrics.jetstream.failures.inc({ reason: 'nats' });
    this.#ctx.burstLog.error(
      'jetstream.nats',
      { ...this.#fields, url: natsAddress(this.#cfg.url), err: describe(err) },
      `jetstream consumer: NATS or the stream failed (${natsAccessHint(err, 'consumers.jetstream') ?? 'check consumers.jetstream.url and stream_name'}); retrying every consumers.jetstream.retry_interval`,
    );
  }
}
