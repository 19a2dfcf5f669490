/**
 * Draining and shutdown sequencing: a drain refuses new connections and disconnects the
 * connected clients (3001, reconnect allowed) spread uniformly over a window, so their
 * reconnects reach the other nodes as a trickle, not a storm; a shutdown drains, then stops
 * the node's parts in order, all bounded by shutdown.timeout.
 *
 * @module
 */
import type { Logger } from 'pino';
import type { ClientSession } from '../client/session.js';
import type { Config } from '../config/schema.js';
import { DisconnectCode, disconnect } from '../protocol/codes.js';

type Session = Pick<ClientSession, 'disconnect'>;

/** DrainContext is what draining and shutdown need from their node. */
export interface DrainContext {
  /** drain.window and shutdown.timeout. */
  readonly config: Readonly<Config>;
  readonly log: Logger;
  /** This node's sessions: connected, and still connecting (the hub). */
  readonly hub: {
    readonly numClients: number;
    sessions(): Iterable<Session>;
    connecting(): Iterable<Session>;
  };
}

/** ShutdownSteps are the node's steps of a shutdown, after the drain, in this order. */
export interface ShutdownSteps {
  /** halt stops the node's timers, load shedding and engine retries. */
  halt(): void;
  /** close tells the other nodes this one leaves, then closes the listener, the engine and the caches. */
  close(): Promise<void>;
  /** release frees what is left (metrics, timer wheel, flush scheduler), closed or timed out. */
  release(): void;
}

/** Drainer drains and shuts down one node. */
export class Drainer {
  readonly #ctx: DrainContext;
  readonly #steps: ShutdownSteps;
  #draining = false;
  /** The drain in progress (API drain or shutdown), if any. */
  #run: Promise<void> | undefined;
  /** Set when shutdown.timeout cut the drain short: the drain loop stops. */
  #cut = false;
  /** The one shutdown in progress (every shutdown() call waits for it). */
  #stopping: Promise<void> | undefined;

  constructor(ctx: DrainContext, steps: ShutdownSteps) {
    this.#ctx = ctx;
    this.#steps = steps;
  }

  /** draining is true once a drain (or shutdown) began. */
  get draining(): boolean {
    return this.#draining;
  }

  /** stopping is true once shutdown began. */
  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /**
   * drain stops admitting connections and disconnects the connected clients spread uniformly
   * over `windowMs`. A second call while a drain runs changes nothing. Returns the number of
   * clients to disconnect.
   */
  drain(windowMs: number): { clients: number; windowMs: number } {
    const clients = this.#ctx.hub.numClients;
    if (this.#run !== undefined) return { clients, windowMs: 0 };
    this.#draining = true;
    this.#ctx.log.info({ clients, windowMs }, 'draining');
    this.#run = this.#drain(windowMs);
    return { clients, windowMs };
  }

  /** shutdown drains and stops the node; a second call waits for the same shutdown. */
  shutdown(): Promise<void> {
    this.#stopping ??= this.#shutdown();
    return this.#stopping;
  }

  async #shutdown(): Promise<void> {
    const ctx = this.#ctx;
    const cfg = ctx.config;
    this.drain(cfg.drain.window);
    const timedOut = Symbol('timeout');
    const deadline = new Promise<typeof timedOut>((resolve) =>
      setTimeout(() => resolve(timedOut), cfg.shutdown.timeout).unref(),
    );
    // At the deadline the drain is cut short: whoever is still connected leaves (3001) now,
    // and the listener closes, so nothing of the node outlives shutdown().
    await Promise.race([this.#run, deadline]);
    this.#cut = true;
    this.#steps.halt();
    // Connected sessions left after the drain, and those that never sent connect (not in the
    // hub's session index): none may keep shutdown waiting for its stale timeout.
    for (const s of [...ctx.hub.sessions(), ...ctx.hub.connecting()]) s.disconnect(disconnect(DisconnectCode.Shutdown));
    // After a timed-out drain the deadline has passed: this resolves at once, while the
    // listener is already closed (close() closes it synchronously) and the engine closes behind.
    const outcome = await Promise.race([this.#steps.close(), deadline]);
    this.#steps.release();
    if (outcome === timedOut) ctx.log.warn({ timeoutMs: cfg.shutdown.timeout }, 'shutdown timed out; stopping anyway');
    ctx.log.info('bulwark stopped');
  }

  async #drain(windowMs: number): Promise<void> {
    const sessions = [...this.#ctx.hub.sessions()];
    if (windowMs <= 0) {
      for (const s of sessions) s.disconnect(disconnect(DisconnectCode.Shutdown));
      return;
    }
    // Uniform spread: session i leaves at i/n of the window (shuffled so no group leaves together).
    for (let i = sessions.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [sessions[i], sessions[j]] = [sessions[j] as Session, sessions[i] as Session];
    }
    const started = Date.now();
    const n = sessions.length;
    let i = 0;
    // Each wake-up disconnects every session already due: timers cannot sleep under ~1 ms,
    // and 100k sessions in a 10 s window need 10 per millisecond.
    while (i < n) {
      const now = Date.now();
      while (i < n && started + (windowMs * i) / n <= now) {
        sessions[i++]?.disconnect(disconnect(DisconnectCode.Shutdown));
      }
      if (i >= n) return;
      const wait = Math.max(1, started + (windowMs * i) / n - Date.now());
      await new Promise((r) => setTimeout(r, wait));
      if (this.#cut) return;
    }
  }
}
