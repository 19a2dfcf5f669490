/**
 * DeltaFrames: one publication as the delta-compressed subscribers of a channel receive it
 * (see delta.ts), made at most once per broadcast and encoded at most once per format — the
 * full payload (JSON: the data as a string; Protobuf: the same frame as everyone's) and the
 * Fossil delta against the previous publication, when the broker delivered that one with it
 * and the subscriber's base is exactly that publication's data.
 *
 * @module
 */
import type { Codec } from '../protocol/codec.js';
import type { Publication, RawJSON } from '../protocol/types.js';
import { markShared } from '../transport/prepared-frame.js';
import { fullPayload, makeDelta } from './delta.js';
import type { SharedFrames } from './shared-frames.js';

/** DeltaFrames holds one publication's delta-mode frames, by codec slot. */
export class DeltaFrames {
  readonly #channel: string;
  readonly #pub: Publication;
  readonly #prev: Publication | undefined;
  readonly #shared: SharedFrames;
  readonly #full: Array<Buffer | undefined> = [];
  readonly #delta: Array<Buffer | undefined> = [];
  /** The delta's bytes; null once known that there is none worth sending. */
  #bytes: Buffer | null | undefined;
  /** A base found equal to the previous publication's data (see #holdsPrev). */
  #matched: RawJSON | undefined;

  /** @param prev the stream's publication before `pub`, as the broker delivered it (if it did). */
  constructor(channel: string, pub: Publication, prev: Publication | undefined, shared: SharedFrames) {
    this.#channel = channel;
    this.#pub = pub;
    this.#prev = prev;
    this.#shared = shared;
  }

  /** full returns the publication with its whole payload, in `codec`'s format. */
  full(codec: Codec): Buffer {
    // Protobuf carries data as bytes either way: the frame every subscriber gets is the same.
    if (codec.format !== 'json') return this.#shared.for(codec);
    return (this.#full[codec.slot] ??= this.#encode(codec, fullPayload(this.#pub)));
  }

  /** data is what a subscriber holds once it received this publication: its delta base then. */
  get data(): RawJSON {
    return this.#pub.data;
  }

  /**
   * delta returns the publication as a Fossil delta against the stream's previous one, in
   * `codec`'s format, for a client whose delta base is `base` — or undefined when that base is
   * not exactly the previous publication's data, when no previous publication came with this
   * one, or when the delta would not be smaller.
   */
  delta(codec: Codec, base: RawJSON): Buffer | undefined {
    if (!this.#holdsPrev(base)) return undefined;
    const bytes = this.#deltaBytes();
    if (bytes === null) return undefined;
    return (this.#delta[codec.slot] ??= this.#encode(codec, { ...this.#pub, payload: bytes, delta: true }));
  }

  /**
   * #holdsPrev tells whether `base` is the previous publication's data. Subscribers of a channel
   * hold the same string (the one publication object fanned out to them), so once one base
   * matched, the others match by reference without comparing the text again.
   */
  #holdsPrev(base: RawJSON): boolean {
    if (base === this.#matched) return true;
    const prev = this.#prev;
    if (prev === undefined || base.length !== prev.data.length || base !== prev.data) return false;
    this.#matched = base;
    return true;
  }

  #deltaBytes(): Buffer | null {
    if (this.#bytes !== undefined) return this.#bytes;
    const prev = this.#prev;
    const pub = this.#pub;
    const ok = prev !== undefined && pub.offset > 1 && prev.offset === pub.offset - 1;
    this.#bytes = (ok ? makeDelta(prev.data, Buffer.from(pub.data, 'utf8')) : undefined) ?? null;
    return this.#bytes;
  }

  #encode(codec: Codec, pub: Publication): Buffer {
    return markShared(codec.push({ type: 'pub', channel: this.#channel, pub }));
  }
}
