/**
 * Load shedding on event-loop lag (incidents 1 and 5: work arriving faster than one core
 * can serve it).
 *
 * Why event-loop lag, not an adaptive concurrency limit: a Bulwark node is one JavaScript
 * thread, and everything it does — reading frames, answering commands, writing fan-out —
 * waits in the same loop. The lag of a timer is exactly the time every piece of work spends
 * queued behind the rest, so it measures overload directly, for every kind of work at once,
 * with one timer and no per-request bookkeeping. Concurrency limits fit calls that wait on
 * something outside the process, whose latency is not ours: Bulwark puts one (fixed, with a
 * bounded queue and a circuit breaker) on each backend target of the proxy.
 *
 * Priority, cheapest to refuse and least harmful first:
 * 1. over `connect_lag`: new connections are refused before the upgrade (HTTP 503 with a
 *    jittered Retry-After, admission reason `overload`);
 * 2. over `read_lag`: history, presence, presence_stats and rpc are also refused (error 111,
 *    temporary, so SDKs back off).
 * Publications to connected clients, and publishing itself, are never shed: delivering the
 * live stream is what the node is for, and a shed publication would be lost.
 *
 * Each level turns off below half its threshold (hysteresis), so a lag hovering around a
 * threshold does not flap the node in and out of shedding on every sample.
 *
 * @module
 */
import { clearInterval, setInterval } from 'node:timers';
import type { Config } from '../config/schema.js';

/** Weight of a new sample in the smoothed lag: about the last four samples count. */
const SMOOTHING = 0.25;

/** SheddingState is what the shedder decided at its last sample. */
export interface SheddingState {
  /** New connections are refused. */
  readonly connect: boolean;
  /** Reads (history, presence, presence_stats) and rpc are refused. */
  readonly read: boolean;
}

/** LoadShedderEvents lets the node count and log transitions. */
export interface LoadShedderEvents {
  /** A level turned on or off; `lagMs` is the smoothed lag that decided it. */
  onChange(level: keyof SheddingState, on: boolean, lagMs: number): void;
}

/** LoadShedder samples the event-loop lag and decides what to shed. */
export class LoadShedder implements SheddingState {
  readonly #cfg: Config['protection']['shedding'];
  readonly #events: LoadShedderEvents | undefined;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  /** When the next sample is due: a turn of the loop running past it is lag already happening. */
  #expected = 0;
  #lag = 0;
  #connect = false;
  #read = false;

  constructor(cfg: Config['protection']['shedding'], events?: LoadShedderEvents, now = () => performance.now()) {
    this.#cfg = cfg;
    this.#events = events;
    this.#now = now;
  }

  /**
   * connect: new connections are refused — the level is on, or the loop turn running now is
   * already later than connect_lag past the sampler (a long burst of work, measured from
   * inside it: a sample would only come after the burst).
   */
  get connect(): boolean {
    return this.#connect || (this.#timer !== undefined && this.#now() - this.#expected > this.#cfg.connect_lag);
  }

  /** read: history/presence/rpc are refused — the level is on, or the running turn is past read_lag. */
  get read(): boolean {
    return this.#read || (this.#timer !== undefined && this.#now() - this.#expected > this.#cfg.read_lag);
  }

  /** lagMs is the smoothed event-loop lag, in milliseconds. */
  get lagMs(): number {
    return this.#lag;
  }

  /** start samples every shedding.sample_interval (no-op when shedding is disabled). */
  start(): void {
    if (!this.#cfg.enabled || this.#timer !== undefined) return;
    const interval = this.#cfg.sample_interval;
    this.#expected = this.#now() + interval;
    this.#timer = setInterval(() => {
      const now = this.#now();
      // How late this tick ran: the time any work queued with it waited behind the rest.
      this.sample(Math.max(0, now - this.#expected));
      this.#expected = now + interval;
    }, interval);
    // Never keeps the process alive by itself.
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#lag = 0;
    this.sample(0);
  }

  /** sample folds one lag measurement (ms) into the smoothed lag and updates the levels. */
  sample(lagMs: number): void {
    this.#lag += (lagMs - this.#lag) * SMOOTHING;
    const { connect_lag: connectLag, read_lag: readLag } = this.#cfg;
    const connect = this.#connect ? this.#lag >= connectLag / 2 : this.#lag > connectLag;
    if (connect !== this.#connect) {
      this.#connect = connect;
      this.#events?.onChange('connect', connect, this.#lag);
    }
    const read = this.#read ? this.#lag >= readLag / 2 : this.#lag > readLag;
    if (read !== this.#read) {
      this.#read = read;
      this.#events?.onChange('read', read, this.#lag);
    }
  }
}
