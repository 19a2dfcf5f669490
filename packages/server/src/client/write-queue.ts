/**
 * WriteQueue: one connection's outgoing frames between the moment they are produced and the
 * next flush pass (write coalescing), and the slow-consumer rule.
 *
 * Frames queued between two passes leave as one transport frame (protocol messages joined by
 * the codec's separator: a newline in JSON, nothing in Protobuf, whose messages carry their
 * length), so a burst of publications costs one write. A transport that frames messages itself
 * (Transport.sendMany) gets them unjoined.
 *
 * The slow-consumer rule (docs/OPERATIONS.md#slow-consumers): what waits for a client — bytes
 * queued here plus bytes the socket accepted but has not written — may exceed
 * client.queue_max_size only by replies to the client's own commands. A reply the client asked
 * for is not a backlog: a recovery or history reply of any size the limits allow is queued and
 * written. Pushes (publications, join/leave, messages, pings) are the backlog: when what waits,
 * less the replies that may still be among it, goes over the limit, the queue is emptied and
 * the owner told the client is slow (3008). Replies cannot pile up either: the session runs a
 * client's next command only once what waits is back under the limit ({@link overLimit}).
 *
 * Which unwritten socket bytes are replies is not known byte by byte, so a bound is kept: the
 * reply bytes handed to the socket, lowered to the socket's unwritten bytes whenever those are
 * fewer (a socket cannot hold more reply bytes than it holds). It errs towards letting a
 * reader's replies through, and bounds what a connection holds by the limit plus its replies
 * not yet written: a client that stopped reading is still caught by its pushes.
 *
 * @module
 */
import { joinMessages } from '../protocol/codec.js';
import type { Transport } from '../transport/transport.js';
import type { Flushable } from './flush-scheduler.js';

/** WriteQueueOwner is the connection a queue writes for. */
export interface WriteQueueOwner {
  /** The pushes waiting went over the limit: the queue is empty now, and the owner disconnects (3008). */
  onSlow(): void;
  /** The transport threw while writing: the owner disconnects. */
  onWriteError(err: unknown): void;
}

/** FlushRequester runs flush passes (the node's FlushScheduler, through the session context). */
export interface FlushRequester {
  /** scheduleFlush flushes `queue` in the next pass: at once when `urgent`, else after client.write_delay. */
  scheduleFlush(queue: Flushable, urgent: boolean): void;
}

/** A shared placeholder, so an idle connection holds no queue array of its own. */
const noFrames: Buffer[] = [];

/** WriteQueue queues frames for one transport and writes them in flush passes. */
export class WriteQueue implements Flushable {
  readonly #transport: Transport;
  readonly #owner: WriteQueueOwner;
  readonly #maxBytes: number;
  readonly #flusher: FlushRequester;
  /**
   * The one frame waiting for the next flush, while there is exactly one: a subscriber of a
   * channel gets a publication per flush pass in most fan-outs, and an array per delivery
   * would be garbage per delivery.
   */
  #one: Buffer | undefined;
  /** Every frame waiting, once there are two or more; the shared empty array otherwise. */
  #frames: Buffer[] = noFrames;
  /** Bytes of #frames. */
  #bytes = 0;
  /** Bytes of #frames that are replies. */
  #replyBytes = 0;
  /** At least the reply bytes the socket has not written yet (see the module note). */
  #replyInSocket = 0;
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
   * overLimit tells whether what waits for the client (queued plus unwritten by the socket)
   * is over client.queue_max_size — by replies, since pushes over it end the connection.
   */
  get overLimit(): boolean {
    return this.#bytes + this.#transport.bufferedAmount > this.#maxBytes;
  }

  /**
   * push queues a push. When the pushes waiting (queued plus unwritten, less the replies that
   * may be among them) go over the limit, the queue is emptied and the owner told it is slow.
   */
  push(frame: Buffer, urgent: boolean): void {
    this.#add(frame);
    const buffered = this.#transport.bufferedAmount;
    if (this.#replyInSocket > buffered) this.#replyInSocket = buffered;
    if (this.#bytes - this.#replyBytes + buffered - this.#replyInSocket > this.#maxBytes) {
      this.clear();
      this.#owner.onSlow();
      return;
    }
    this.#request(urgent);
  }

  /** reply queues a reply to one of the client's commands: never counted as a backlog, flushed at once. */
  reply(frame: Buffer): void {
    this.#add(frame);
    this.#replyBytes += frame.length;
    this.#request(true);
  }

  #add(frame: Buffer): void {
    if (this.#frames !== noFrames) this.#frames.push(frame);
    else if (this.#one === undefined) this.#one = frame;
    else {
      this.#frames = [this.#one, frame];
      this.#one = undefined;
    }
    this.#bytes += frame.length;
  }

  #request(urgent: boolean): void {
    const want = urgent ? 2 : 1;
    if (this.#flushPending < want) {
      this.#flushPending = want;
      this.#flusher.scheduleFlush(this, urgent);
    }
  }

  /** flush writes everything queued as one frame. */
  flush(): void {
    this.#flushPending = 0;
    const one = this.#one;
    const q = this.#frames;
    if (one === undefined && q.length === 0) return;
    const replies = this.#replyBytes;
    this.clear();
    const transport = this.#transport;
    try {
      if (one !== undefined) transport.send(one);
      else if (transport.sendMany !== undefined) transport.sendMany(q);
      else transport.send(joinMessages(transport.codec, q));
    } catch (err) {
      // One connection's write failure must not stop the flush pass of every other one.
      this.#owner.onWriteError(err);
      return;
    }
    if (replies > 0 || this.#replyInSocket > 0) {
      this.#replyInSocket = Math.min(this.#replyInSocket + replies, this.#transport.bufferedAmount);
    }
  }

  /** clear drops everything queued (the connection is closing or was found slow). */
  clear(): void {
    this.#one = undefined;
    this.#frames = noFrames;
    this.#bytes = 0;
    this.#replyBytes = 0;
  }
}
