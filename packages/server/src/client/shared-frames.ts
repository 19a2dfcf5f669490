/**
 * SharedFrames: one push going to many connections, encoded at most once per format. Fan-out
 * (publications, join/leave, messages to a user's connections) asks for the frame of each
 * receiver's codec; the first receiver of a format pays the encoding, the rest share its
 * bytes, prepared once for the wire (transport/prepared-frame.ts).
 *
 * @module
 */
import type { Codec } from '../protocol/codec.js';
import type { Push } from '../protocol/types.js';
import { markShared } from '../transport/prepared-frame.js';

/** SharedFrames holds one push and its frames, by codec slot. */
export class SharedFrames {
  readonly #push: Push;
  readonly #frames: Array<Buffer | undefined> = [];

  constructor(push: Push) {
    this.#push = push;
  }

  /** for returns the push encoded by `codec`, encoding it on first use. */
  for(codec: Codec): Buffer {
    return (this.#frames[codec.slot] ??= markShared(codec.push(this.#push)));
  }
}
