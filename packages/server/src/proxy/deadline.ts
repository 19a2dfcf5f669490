/**
 * The deadline of one backend call: the one place a proxy's `timeout` is enforced. When it
 * passes, its signal aborts with a {@link ProxyTimeoutError} (`queued` when the call was still
 * waiting for a concurrency slot), so the HTTP request is really cancelled and every waiter
 * (the concurrency queue, the caller) is answered at once.
 *
 * @module
 */
import { ProxyTimeoutError } from './errors.js';

/** Deadline is the running timeout of one call; {@link Deadline.clear} it once the call settled. */
export class Deadline {
  /** Aborts with a ProxyTimeoutError when the deadline passes. */
  readonly signal: AbortSignal;
  #queued = true;
  readonly #timer: ReturnType<typeof setTimeout>;

  constructor(target: string, timeoutMs: number) {
    const controller = new AbortController();
    this.signal = controller.signal;
    this.#timer = setTimeout(() => controller.abort(new ProxyTimeoutError(target, timeoutMs, this.#queued)), timeoutMs);
  }

  /** admitted marks the call as past the wait for a slot: a timeout from now on is not `queued`. */
  admitted(): void {
    this.#queued = false;
  }

  /** clear stops the timer. */
  clear(): void {
    clearTimeout(this.#timer);
  }
}

/** untilAborted rejects with the signal's reason once it aborts (never settles otherwise). */
export function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
}
