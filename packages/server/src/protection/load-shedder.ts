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
 * Lag alone cannot tell the node's own overload from a neighbour's: on a busy machine a
 * timer also fires late when another process has the CPU, while this node's loop sits idle.
 * Shedding then would refuse players to a node with nothing to do (issue 12: an idle node
 * refused a demo page while another process compiled). So a level turns on only while the
 * loop is also busy with its own work (loop-meter.ts): its utilization — the share of the time
 * it could run that it spent running — is at least `utilization`, and its thread uses at least
 * `min_cpu` of a core (a node that cannot get that much is starved by neighbours, not
 * overloaded by its clients). A level turns off when the lag falls under half its threshold or
 * either measure under three quarters of its own. A node whose own work saturates its loop runs
 * near 100 % of a core; a node waiting behind a neighbour is mostly idle, or starved.
 *
 * @module
 */
import { clearInterval, setInterval } from 'node:timers';
import type { Config } from '../config/schema.js';
import { loopMeter, type LoopLoad, type LoopMeter } from './loop-meter.js';

/** How long one load measure serves the checks of a late turn (ms). */
const LOAD_REUSE_MS = 2;

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
  /** A level turned on or off; `lagMs` and `utilization` are the smoothed values that decided it. */
  onChange(level: keyof SheddingState, on: boolean, lagMs: number, utilization: number): void;
}

/** LoadShedder samples the event-loop lag and utilization and decides what to shed. */
export class LoadShedder implements SheddingState {
  readonly #cfg: Config['protection']['shedding'];
  readonly #events: LoadShedderEvents | undefined;
  readonly #now: () => number;
  readonly #meter: LoopMeter;
  #timer: NodeJS.Timeout | undefined;
  /** When the next sample is due: a turn of the loop running past it is lag already happening. */
  #expected = 0;
  #lag = 0;
  /** Smoothed event-loop utilization, 0–1. */
  #utilization = 0;
  /** Smoothed CPU of the loop thread, in cores. */
  #cpu = 0;
  /** The last load measured for #lateTurn, and when. */
  #turnLoad: LoopLoad | undefined;
  #turnLoadAt = 0;
  #connect = false;
  #read = false;

  constructor(
    cfg: Config['protection']['shedding'],
    events?: LoadShedderEvents,
    now = () => performance.now(),
    meter: LoopMeter = loopMeter(),
  ) {
    this.#cfg = cfg;
    this.#events = events;
    this.#now = now;
    this.#meter = meter;
  }

  /**
   * connect: new connections are refused — the level is on, or the loop turn running now is
   * already later than connect_lag past the sampler (a long burst of work, measured from
   * inside it: a sample would only come after the burst).
   */
  get connect(): boolean {
    return this.#connect || this.#lateTurn(this.#cfg.connect_lag);
  }

  /** read: history/presence/rpc are refused — the level is on, or the running turn is past read_lag. */
  get read(): boolean {
    return this.#read || this.#lateTurn(this.#cfg.read_lag);
  }

  /**
   * #lateTurn: the running turn is `threshold` past the sampler, and since the last sample the
   * loop was busy with its own work (see #busy).
   */
  #lateTurn(threshold: number): boolean {
    if (this.#timer === undefined) return false;
    const now = this.#now();
    if (now - this.#expected <= threshold) return false;
    // Asked for every upgrade and read while late: measure (a /proc read on Linux) once per
    // LOAD_REUSE_MS, not once per call, in a burst of thousands.
    if (this.#turnLoad === undefined || now - this.#turnLoadAt >= LOAD_REUSE_MS) {
      this.#turnLoad = this.#meter.since();
      this.#turnLoadAt = now;
    }
    return this.#turnLoad.busy >= this.#cfg.utilization && this.#turnLoad.cpu >= this.#cfg.min_cpu;
  }

  /** lagMs is the smoothed event-loop lag, in milliseconds. */
  get lagMs(): number {
    return this.#lag;
  }

  /** utilization is the smoothed event-loop utilization, 0–1. */
  get utilization(): number {
    return this.#utilization;
  }

  /** cpu is the smoothed CPU of the loop thread, in cores. */
  get cpu(): number {
    return this.#cpu;
  }

  /** start samples every shedding.sample_interval (no-op when shedding is disabled). */
  start(): void {
    if (!this.#cfg.enabled || this.#timer !== undefined) return;
    const interval = this.#cfg.sample_interval;
    this.#expected = this.#now() + interval;
    this.#meter.mark();
    this.#timer = setInterval(() => {
      const now = this.#now();
      const load = this.#meter.since();
      this.#meter.mark();
      // How late this tick ran: the time any work queued with it waited behind the rest.
      this.sample(Math.max(0, now - this.#expected), load.busy, load.cpu);
      this.#expected = now + interval;
    }, interval);
    // Never keeps the process alive by itself.
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#lag = 0;
    this.#utilization = 0;
    this.#cpu = 0;
    this.sample(0, 0, 0);
  }

  /**
   * sample folds one lag measurement (ms), the loop's utilization (0–1) and its thread's CPU
   * (cores) since the previous sample into their smoothed values and updates the levels. The
   * utilization and CPU are smoothed over time, not samples: a sample that came 240 ms late
   * covers 13 sample intervals of a busy loop.
   */
  sample(lagMs: number, utilization: number, cpu: number): void {
    this.#lag += (lagMs - this.#lag) * SMOOTHING;
    const intervals = (this.#cfg.sample_interval + lagMs) / Math.max(1, this.#cfg.sample_interval);
    const weight = 1 - (1 - SMOOTHING) ** intervals;
    this.#utilization += (utilization - this.#utilization) * weight;
    this.#cpu += (cpu - this.#cpu) * weight;
    const { connect_lag: connectLag, read_lag: readLag } = this.#cfg;
    // The node's own overload: the loop lags and is busy (see the module note).
    const { utilization: u, min_cpu: minCpu } = this.#cfg;
    const busy = this.#utilization >= u && this.#cpu >= minCpu;
    const stillBusy = this.#utilization >= u * 0.75 && this.#cpu >= minCpu * 0.75;
    const connect = this.#connect ? stillBusy && this.#lag >= connectLag / 2 : busy && this.#lag > connectLag;
    if (connect !== this.#connect) {
      this.#connect = connect;
      this.#events?.onChange('connect', connect, this.#lag, this.#utilization);
    }
    const read = this.#read ? stillBusy && this.#lag >= readLag / 2 : busy && this.#lag > readLag;
    if (read !== this.#read) {
      this.#read = read;
      this.#events?.onChange('read', read, this.#lag, this.#utilization);
    }
  }
}
