/**
 * BurstLog: log a protection once per interval per kind, with how many times it triggered
 * since the last line. A rejection storm must not become a log storm that costs more CPU and
 * disk than the rejections it reports.
 *
 * @module
 */
import type { Logger } from 'pino';

/** BurstLog rate-limits warnings per kind. */
export class BurstLog {
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #kinds = new Map<string, { last: number; suppressed: number }>();

  constructor(log: Logger, intervalMs: number) {
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  /**
   * warn logs `msg` for `kind` unless one was logged less than the interval ago; the next
   * line carries `suppressed`, the number of events not logged in between.
   */
  warn(kind: string, fields: Record<string, unknown>, msg: string, now = Date.now()): void {
    this.#write('warn', kind, fields, msg, now);
  }

  /** error is {@link warn} at error level (an outage, not a limit doing its job). */
  error(kind: string, fields: Record<string, unknown>, msg: string, now = Date.now()): void {
    this.#write('error', kind, fields, msg, now);
  }

  #write(level: 'warn' | 'error', kind: string, fields: Record<string, unknown>, msg: string, now: number): void {
    let k = this.#kinds.get(kind);
    if (!k) this.#kinds.set(kind, (k = { last: -Infinity, suppressed: 0 }));
    if (now - k.last < this.#intervalMs) {
      k.suppressed++;
      return;
    }
    this.#log[level]({ ...fields, kind, suppressed: k.suppressed }, msg);
    k.last = now;
    k.suppressed = 0;
  }
}
