/**
 * The sticker scenario's record of deliveries: for every client and every offset of the chat
 * channel, which payload arrived (which kind, which sticker) and when. Judged at the end
 * against the posts the server accepted (their offsets, stickers and send times), this gives
 * exact counts per client kind: right payload, the other kind's payload, another sticker's,
 * missing, duplicated — and the delivery latency of each right one.
 *
 * Memory: two typed arrays of (posts + 1) slots per client (12 bytes a slot), e.g. 900
 * clients × 1,000 posts ≈ 11 MB, and nothing allocated per delivery.
 *
 * @module
 */
import { LatencyRecorder, roundSummary, type LatencySummary } from '../../harness/stats.js';
import type { Received } from './stickers.js';
import type { ClientKind, KindDeliveries } from './types.js';

/** A slot's code: 0 nothing yet; k + 1 a new build's sticker k; −(k + 1) an old build's text for k. */
const UNKNOWN = 0x7fffffff;

function encode(r: Received): number {
  if (r.kind === undefined || r.sticker < 0) return UNKNOWN;
  return r.kind === 'new' ? r.sticker + 1 : -(r.sticker + 1);
}

/** AcceptedPosts is what the publisher learnt: per offset, the sticker posted (-1: none), when and in which phase. */
export interface AcceptedPosts {
  /** Index: offset (1..posts); -1 where no accepted post has that offset. */
  stickerAt: Int32Array;
  /** performance.now() when the post with that offset was sent. */
  sentAt: Float64Array;
  /** 1 where the post was part of the cold burst. */
  burst: Uint8Array;
}

/** ReceiptLedger holds what every client received, by offset. */
export class ReceiptLedger {
  /** Deliveries of an offset a client had already received. */
  readonly duplicates: Uint32Array;
  /** Deliveries with an offset outside 1..posts. */
  readonly outOfRange: Uint32Array;
  /** Distinct offsets each client received. */
  readonly distinct: Uint32Array;
  /** Distinct offsets received over every client. */
  totalDistinct = 0;

  readonly #codes: Int32Array[];
  readonly #arrivals: Float64Array[];

  constructor(
    readonly kinds: readonly ClientKind[],
    readonly posts: number,
  ) {
    const n = kinds.length;
    this.duplicates = new Uint32Array(n);
    this.outOfRange = new Uint32Array(n);
    this.distinct = new Uint32Array(n);
    this.#codes = Array.from({ length: n }, () => new Int32Array(posts + 1));
    this.#arrivals = Array.from({ length: n }, () => new Float64Array(posts + 1));
  }

  /** record notes that `client` received `received` at `offset` at `atMs`. */
  record(client: number, offset: number, received: Received, atMs: number): void {
    if (!(offset >= 1 && offset <= this.posts)) {
      (this.outOfRange[client] as number)++;
      return;
    }
    const codes = this.#codes[client] as Int32Array;
    if (codes[offset] !== 0) {
      (this.duplicates[client] as number)++;
      return;
    }
    codes[offset] = encode(received);
    (this.#arrivals[client] as Float64Array)[offset] = atMs;
    (this.distinct[client] as number)++;
    this.totalDistinct++;
  }

  /**
   * tally judges every client's receipts against the accepted posts, per kind (bytes per
   * delivery are filled in by the caller, who holds the byte counts).
   */
  tally(accepted: AcceptedPosts): Record<ClientKind, KindDeliveries> {
    const out = { new: emptyDeliveries(), old: emptyDeliveries() };
    const recorders = () => ({ burst: new LatencyRecorder(), after: new LatencyRecorder() });
    const latency = { new: recorders(), old: recorders() };
    for (let c = 0; c < this.kinds.length; c++) {
      const kind = this.kinds[c] as ClientKind;
      const d = out[kind];
      const codes = this.#codes[c] as Int32Array;
      const arrivals = this.#arrivals[c] as Float64Array;
      d.clients++;
      d.duplicates += this.duplicates[c] as number;
      d.unexpected += this.outOfRange[c] as number;
      for (let off = 1; off <= this.posts; off++) {
        const sticker = accepted.stickerAt[off] as number;
        const code = codes[off] as number;
        if (sticker < 0) {
          if (code !== 0) d.unexpected++;
          continue;
        }
        d.expected++;
        if (code === 0) d.missing++;
        else if (code === UNKNOWN) d.wrongSticker++;
        else if ((code > 0 ? 'new' : 'old') !== kind) d.otherKind++;
        else if (Math.abs(code) - 1 !== sticker) d.wrongSticker++;
        else {
          d.right++;
          const phase = accepted.burst[off] === 1 ? 'burst' : 'after';
          latency[kind][phase].add((arrivals[off] as number) - (accepted.sentAt[off] as number));
        }
      }
    }
    for (const k of ['new', 'old'] as const) {
      out[k].latencyMs = {
        burst: roundSummary(latency[k].burst.summary(), 2),
        after: roundSummary(latency[k].after.summary(), 2),
      };
    }
    return out;
  }
}

/** emptyDeliveries is a kind's tally before any client is counted. */
export function emptyDeliveries(): KindDeliveries {
  return {
    clients: 0,
    expected: 0,
    right: 0,
    otherKind: 0,
    wrongSticker: 0,
    missing: 0,
    duplicates: 0,
    unexpected: 0,
    latencyMs: { burst: noSamples(), after: noSamples() },
    bytesPerDelivery: 0,
  };
}

/** noSamples is the summary of no latency samples. */
function noSamples(): LatencySummary {
  return new LatencyRecorder().summary();
}
