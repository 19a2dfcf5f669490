/**
 * PendingReplies: the requests of one load-generator connection that wait for their replies,
 * each with a timeout. Shared by the JSON/raw/Socket.IO client and the Protobuf client, which
 * differ in how they read a reply, not in how they wait for one.
 *
 * @module
 */

/** A reply error as the protocol carries it. */
export interface ReplyError {
  code?: number;
  message?: string;
}

interface Pending<V> {
  resolve: (value: V) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** PendingReplies maps request keys to the promises waiting for their replies. */
export class PendingReplies<K, V> {
  readonly #pending = new Map<K, Pending<V>>();

  /** wait resolves with the reply to `key`, or rejects on its error or after `timeoutMs`. */
  wait(key: K, timeoutMs: number): Promise<V> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(key);
        reject(new Error(`timeout after ${timeoutMs} ms waiting for reply ${String(key)}`));
      }, timeoutMs);
      this.#pending.set(key, { resolve, reject, timer });
    });
  }

  /** settle answers the request `key` with `error` or `value`; false when none waits for it. */
  settle(key: K, error: ReplyError | undefined, value: V): boolean {
    const p = this.#pending.get(key);
    if (!p) return false;
    this.#pending.delete(key);
    clearTimeout(p.timer);
    if (error) p.reject(new Error(`error${error.code === undefined ? '' : ` ${error.code}`}: ${error.message}`));
    else p.resolve(value);
    return true;
  }

  /** rejectAll fails every waiting request with `err` (the connection closed). */
  rejectAll(err: Error): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
  }
}
