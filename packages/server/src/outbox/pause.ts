/**
 * Back-pressure shared by the consumers that publish a backend's events (the outbox consumer,
 * docs/OUTBOX.md, and the JetStream consumer, docs/JETSTREAM.md): while the node sheds load or
 * its engine is not ready (or it drains), a consumer stops taking events and they wait where
 * they are (the outbox table, the stream). The gate reports each change in its gauge
 * (`reason` label) and in the log.
 *
 * @module
 */
import type { Logger } from 'pino';
import type { SheddingState } from '../protection/load-shedder.js';

/** PauseReason is why a consumer is paused: the node sheds load, or is not ready. */
export type PauseReason = 'shedding' | 'not_ready';

/** PauseSource is what the gate reads from the node. */
export interface PauseSource {
  readonly log: Logger;
  readonly shedder: SheddingState;
  /** The engine is started and reachable, and the node not draining. */
  readonly ready: boolean;
}

/** PauseGauge is the consumer's `..._paused{reason}` gauge. */
export interface PauseGauge {
  set(labels: { reason: PauseReason }, value: number): void;
}

/** PauseGate decides whether a consumer may take events now. */
export class PauseGate {
  readonly #src: PauseSource;
  readonly #gauge: PauseGauge;
  readonly #what: string;
  readonly #fields: Record<string, unknown>;
  #paused: PauseReason | undefined;

  /** `what` names the consumer in the log ("outbox consumer"); `fields` go into its lines. */
  constructor(src: PauseSource, gauge: PauseGauge, what: string, fields: Record<string, unknown>) {
    this.#src = src;
    this.#gauge = gauge;
    this.#what = what;
    this.#fields = fields;
  }

  /** paused is true while the consumer must not take events; a change is logged and gauged. */
  paused(): boolean {
    const src = this.#src;
    const reason: PauseReason | undefined =
      src.shedder.connect || src.shedder.read ? 'shedding' : !src.ready ? 'not_ready' : undefined;
    if (reason !== this.#paused) {
      if (this.#paused !== undefined) this.#gauge.set({ reason: this.#paused }, 0);
      if (reason !== undefined) {
        this.#gauge.set({ reason }, 1);
        src.log.warn({ ...this.#fields, reason }, `${this.#what} paused`);
      } else src.log.info(this.#fields, `${this.#what} resumed`);
      this.#paused = reason;
    }
    return reason !== undefined;
  }

  /** clear zeroes the gauge (the consumer stopped). */
  clear(): void {
    for (const reason of ['shedding', 'not_ready'] as const) this.#gauge.set({ reason }, 0);
    this.#paused = undefined;
  }
}
