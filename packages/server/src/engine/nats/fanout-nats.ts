/**
 * The NATS fan-out: one core NATS connection per node (no JetStream: delivery is at most once,
 * as with Redis pub/sub; history stays in the engine). Channel events go to
 * `<prefix>.ch.<channel>` and control messages to `<prefix>.control` (subjects.ts); the node
 * subscribes to the subjects of the channels it has subscribers for. The client reconnects
 * by itself and subscribes again; this module turns its status into readiness and into errors
 * that name `broker.nats.url`.
 *
 * @module
 */
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { BulwarkError } from '../../errors.js';
import { natsAccessHint, natsAccessOptions, type NatsAccess } from './access.js';
import type { RawJSON } from '../../protocol/types.js';
import { EngineUnavailableError } from '../errors.js';
import type { Fanout, FanoutEvent, FanoutEvents } from '../fanout.js';
import { decodeEvent, encodeEvent, MalformedEventError } from '../fanout-codec.js';
import { Subjects } from './subjects.js';

/** The config key naming NATS, in every message about reaching it. */
const URL_KEY = 'broker.nats.url (BULWARK_BROKER_NATS_URL)';

/** NatsFanoutOptions configure a {@link NatsFanout} (durations in ms). */
export interface NatsFanoutOptions {
  /** One or more `nats://` URLs, separated by commas. */
  url: string;
  prefix: string;
  dialTimeoutMs: number;
  reconnectMaxDelayMs: number;
  pingIntervalMs: number;
  /** Connection name shown by the NATS server's monitoring. */
  name?: string;
  /** Token and TLS (`broker.nats.token`, `broker.nats.tls`); none when absent. */
  access?: NatsAccess;
}

/** natsAddress returns the servers of `url` without credentials (for logs and errors). */
export function natsAddress(url: string): string {
  return url
    .split(',')
    .map((u) => u.trim())
    .map((u) => {
      try {
        const parsed = new URL(u.includes('://') ? u : `nats://${u}`);
        return `${parsed.protocol}//${parsed.host}`;
      } catch {
        return '(unparsable URL)';
      }
    })
    .join(',');
}

/** NatsFanout implements {@link Fanout} on core NATS; see the module comment. */
export class NatsFanout implements Fanout {
  readonly address: string;
  readonly subjects: Subjects;
  readonly #o: NatsFanoutOptions;
  readonly #subs = new Map<string, Subscription>();
  #nc: NatsConnection | undefined;
  #events: FanoutEvents | undefined;
  #up = false;
  #closed = false;
  /** Set after the first error of an outage was reported; cleared when NATS is back. */
  #reported = false;

  constructor(options: NatsFanoutOptions) {
    this.#o = options;
    this.address = natsAddress(options.url);
    this.subjects = new Subjects(options.prefix);
  }

  /** isReady tells whether the connection is up now. */
  isReady(): boolean {
    return this.#up;
  }

  /** unavailable makes the error of a call while NATS cannot be reached, naming the config key. */
  unavailable(cause?: unknown): EngineUnavailableError {
    const why = cause instanceof Error ? cause.message : cause === undefined ? 'connection is down' : String(cause);
    const check = natsAccessHint(cause, 'broker.nats') ?? `check that NATS runs there and ${URL_KEY}`;
    const err = new Error(`NATS at ${this.address} is not reachable (${why}): ${check}`, { cause });
    return new EngineUnavailableError(this.address, { cause: err });
  }

  /** start connects, listens to control messages and follows the connection's status. */
  async start(events: FanoutEvents): Promise<void> {
    this.#events = events;
    let nc: NatsConnection;
    try {
      nc = await connect({
        ...(this.#o.access === undefined ? {} : natsAccessOptions(this.#o.access, 'broker.nats')),
        servers: this.#o.url.split(',').map((u) => u.trim()),
        name: this.#o.name ?? 'bulwark',
        timeout: this.#o.dialTimeoutMs,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: this.#o.reconnectMaxDelayMs,
        reconnectJitter: Math.min(100, this.#o.reconnectMaxDelayMs),
        pingInterval: this.#o.pingIntervalMs,
        maxPingOut: 2,
      });
    } catch (err) {
      throw this.unavailable(err);
    }
    if (this.#closed) {
      await nc.close().catch(() => undefined);
      return;
    }
    this.#nc = nc;
    nc.subscribe(this.subjects.control, {
      callback: (err, msg) => {
        if (err === null) this.#events?.onControl(msg.string() as RawJSON);
      },
    });
    try {
      await this.#flush(nc);
    } catch (err) {
      await this.close();
      throw err;
    }
    this.#up = true;
    void this.#watch(nc);
  }

  /** subscribe makes this node receive the channel's events; resolves once NATS confirmed it. */
  async subscribe(channel: string): Promise<void> {
    const nc = this.#nc;
    if (nc === undefined || !this.#up) throw this.unavailable();
    if (!this.#subs.has(channel)) {
      const subject = this.subjects.channel(channel);
      const sub = nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err !== null || this.#subs.get(channel) !== sub) return;
          let event: FanoutEvent;
          try {
            event = decodeEvent(msg.string());
          } catch (e) {
            const why = e instanceof MalformedEventError ? e.why : String(e);
            this.#events?.onError(
              new BulwarkError('BW_ERR_NATS_MALFORMED', `malformed NATS message on ${subject}: ${why}; skipped`),
            );
            return;
          }
          this.#events?.onEvent(channel, event);
        },
      });
      this.#subs.set(channel, sub);
    }
    // The PING/PONG round trip proves the server holds the subscription.
    await this.#flush(nc);
  }

  /** unsubscribe stops the channel's events at once. */
  async unsubscribe(channel: string): Promise<void> {
    const sub = this.#subs.get(channel);
    if (sub === undefined) return;
    this.#subs.delete(channel);
    try {
      sub.unsubscribe();
    } catch {
      // The connection is closed: the subscription went with it.
    }
  }

  /**
   * publish hands one channel event to NATS; throws while NATS is down (nothing sent). Refusing
   * then, instead of letting the client buffer until it reconnects, keeps a publication from
   * reaching the other nodes long after the subscribers' recovery already gave it to them.
   */
  async publish(channel: string, event: FanoutEvent): Promise<void> {
    this.#send(this.subjects.channel(channel), encodeEvent(event));
  }

  /** publishControl hands a control message to NATS, for every node (this one included). */
  async publishControl(data: RawJSON): Promise<void> {
    this.#send(this.subjects.control, data);
  }

  /** notHandedOver makes BW_ERR_NATS_FANOUT: a stored publication that never reached NATS. */
  notHandedOver(what: string, cause: unknown): BulwarkError {
    const why = cause instanceof Error ? cause.message : String(cause);
    return new BulwarkError('BW_ERR_NATS_FANOUT', `${what} but was not handed to NATS: ${why}`, { cause });
  }

  /** close ends the connection; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#up = false;
    this.#events = undefined;
    this.#subs.clear();
    const nc = this.#nc;
    this.#nc = undefined;
    if (nc !== undefined) await nc.close().catch(() => undefined);
  }

  #send(subject: string, payload: string): void {
    const nc = this.#nc;
    if (nc === undefined || !this.#up) throw this.unavailable();
    try {
      nc.publish(subject, payload);
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  /** #flush waits for a PING/PONG round trip, at most dial_timeout. */
  async #flush(nc: NatsConnection): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${this.#o.dialTimeoutMs} ms`)),
        this.#o.dialTimeoutMs,
      );
    });
    try {
      await Promise.race([nc.flush(), timeout]);
    } catch (err) {
      throw this.unavailable(err);
    } finally {
      clearTimeout(timer);
    }
  }

  /** #watch follows the connection: down on disconnect, up once reconnected (subscriptions renewed). */
  async #watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (this.#nc !== nc) return;
      if (s.type === 'disconnect' || s.type === 'staleConnection') {
        this.#setUp(false);
        if (!this.#reported) {
          this.#reported = true;
          this.#events?.onError(this.unavailable(new Error(`connection lost (${s.type})`)));
        }
      } else if (s.type === 'reconnect') {
        this.#reported = false;
        this.#setUp(true);
      } else if (s.type === 'error') {
        this.#events?.onError(this.unavailable(s.error));
      }
    }
  }

  #setUp(up: boolean): void {
    if (this.#closed || up === this.#up) return;
    this.#up = up;
    try {
      this.#events?.onStateChange(up);
    } catch (err) {
      this.#events?.onError(err);
    }
  }
}
