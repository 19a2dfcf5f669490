/**
 * WriteQueue: one connection's outgoing frames between the moment they are produced and the
 * next flush pass (write coalescing), bounded in bytes.
 *
 * Frames queued between two passes leave as one transport frame (newline-separated protocol
 * messages, as the JSON protocol allows), so a burst of publications costs one write. The
 * bound counts what is queued here plus what the socket has accepted but not yet written:
 * a client that cannot keep up is reported as slow instead of growing the process's memory.
 *
 * @module
 */
import type { Transport } from '../transport/transport.js';
import type { Flushable } from './flush-scheduler.js';

/** WriteQueueOwner is the connection a queue writes for. */
export interface WriteQueueOwner {
  /** The queue went over its byte limit: it is empty now, and the owner disconnects (3008). */
  onSlow(): void;
  /** The transport threw while writing: the owner disconnects. */
  onWriteError(err: unknown): void;
}

/** FlushRequester runs flush passes (the node's FlushScheduler, through the session context). */
export interface FlushRequester {
  /** scheduleFlush flushes `queue` in the next pass: at once when `urgent`, else after client.write_delay. */
  scheduleFlush(queue: Flushable, urgent: boolean): void;
}

const newline = Buffer.from('\n');
/** A shared placeholder, so an idle connection holds no queue array of its own. */
const noFrames: Buffer[] = [];

/** WriteQueue queues frames for one transport and writes them in flush passes. */
export class WriteQueue implements Flushable {
  readonly #transport: Transport;
  readonly #owner: WriteQueueOwner;
  readonly #maxBytes: number;
  readonly #flusher: FlushRequester;
  /** Frames waiting for the next flush; the shared empty array while there are none. */
  #frames: Buffer[] = noFrames;
  #bytes = 0;
  /** 0: no flush pending, 1: a delayed one (client.write_delay), 2: an immediate one. */
  #flushPending = 0;

  constructor(transport: Transport, owner: WriteQueueOwner, maxBytes: number, flusher: FlushRequester) {
    this.#transport = transport;
    this.#owner = owner;
    this.#maxBytes = maxBytes;
    this.#flusher = flusher;
  }

  /** Bytes queued and not yet handed to the transport. */
  get queuedBytes(): number {
    return this.#bytes;
  }

  /**
   * push queues a frame. Over the byte limit (queued here plus not yet written by the socket)
   * the queue is emptied and the owner told it is slow.
   */
  push(frame: Buffer, urgent: boolean): void {
    if (this.#frames === noFrames) this.#frames = [];
    this.#frames.push(frame);
    this.#bytes += frame.length;
    if (this.#bytes + this.#transport.bufferedAmount > this.#maxBytes) {
      this.clear();
      this.#owner.onSlow();
      return;
    }
    const want = urgent ? 2 : 1;
    if (this.#flushPending < want) {
      this.#flushPending = want;
      this.#flusher.scheduleFlush(this, urgent);
    }
  }

  /** flush writes everything queued as one frame. */
  flush(): void {
    this.#flushPending = 0;
    const q = this.#frames;
    if (q.length === 0) return;
    this.#frames = noFrames;
    this.#bytes = 0;
    let frame: Buffer;
    if (q.length === 1) {
      frame = q[0] as Buffer;
    } else {
      const parts: Buffer[] = new Array(q.length * 2 - 1);
      for (let i = 0; i < q.length; i++) {
        if (i > 0) parts[i * 2 - 1] = newline;
        parts[i * 2] = q[i] as Buffer;
      }
      frame = Buffer.concat(parts);
    }
    try {
      this.#transport.send(frame);
    } catch (err) {
      // One connection's write failure must not stop the flush pass of every other one.
      this.#owner.onWriteError(err);
    }
  }

  /** clear drops everything queued (the connection is closing or was found slow). */
  clear(): void {
    this.#frames = noFrames;
    this.#bytes = 0;
  }
}
