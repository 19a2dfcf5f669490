/**
 * MapMirror: what one map subscriber holds of a map channel — its entries (key → data) and its
 * stream position — built the way the `centrifuge` SDK builds it: the state pages collected,
 * then the stream catch-up applied over them in order, then every live change. Pure (no
 * socket), so the load client and the tests drive it alike.
 *
 * It also counts what a correct server never makes a subscriber see, because the lobby
 * scenario's exactness rests on them:
 * - a live change whose offset is not the next one (`gaps`: something lost between the
 *   snapshot and the stream, or in the stream) or is not newer (`stale`: applied twice);
 * - a live *set* of a key the mirror already holds (`overwrites`): in a namespace where every
 *   client write is `if_new` and nothing else writes, that is a slot taken by two players.
 *
 * Ephemeral maps number nothing (offset 0): their changes are applied without these checks.
 *
 * @module
 */

/** MapEntry is an entry or a change as the protocol carries it (JSON). */
export interface MapEntry {
  key: string;
  data?: unknown;
  /** Stream offset (durable and persistent maps); absent or 0 on ephemeral ones. */
  offset?: number;
  removed?: boolean;
}

/** MirrorPhase is where the subscribe flow is: paging the state, catching up the stream, or live. */
export type MirrorPhase = 'state' | 'stream' | 'live';

/** Counts of what a correct server never makes a subscriber see (see the module note). */
export interface MirrorAnomalies {
  gaps: number;
  stale: number;
  overwrites: number;
}

/** MapMirror is one subscriber's copy of one map channel. */
export class MapMirror {
  readonly entries = new Map<string, unknown>();
  phase: MirrorPhase = 'state';
  /** The stream position: the last change applied (live), or where the catch-up stands. */
  offset = 0;
  epoch = '';
  readonly anomalies: MirrorAnomalies = { gaps: 0, stale: 0, overwrites: 0 };
  /** Entries of the state pages, and the stream catch-up, until the flow goes live. */
  #state: MapEntry[] = [];
  #stream: MapEntry[] = [];
  /** Live pushes that arrived before the live reply was read (applied after it, by offset). */
  #early: MapEntry[] = [];

  /** restart forgets the flow so far (a new epoch, or position lost: the SDK reads the map again). */
  restart(): void {
    this.entries.clear();
    this.phase = 'state';
    this.offset = 0;
    this.epoch = '';
    this.#state = [];
    this.#stream = [];
    this.#early = [];
  }

  /**
   * addState collects one state page (phase 2 reply). `position` is given with the first page
   * only: the stream position the catch-up starts from.
   */
  addState(page: readonly MapEntry[], position?: { offset: number; epoch: string }): void {
    if (position !== undefined) {
      this.offset = position.offset;
      this.epoch = position.epoch;
    }
    this.#state.push(...page);
  }

  /** addStream collects one stream page (phase 1 reply that is not yet live) and moves the catch-up on. */
  addStream(pubs: readonly MapEntry[], offset: number): void {
    this.phase = 'stream';
    this.#stream.push(...pubs);
    this.offset = offset;
  }

  /**
   * goLive applies the live reply: the state collected (with the reply's own `state`, on an
   * ephemeral map's last page), the stream catch-up and the reply's `publications`, in order,
   * last write winning per key; then the pushes that came early, dropping those the reply
   * already carried.
   */
  goLive(reply: {
    state?: readonly MapEntry[];
    publications?: readonly MapEntry[];
    offset?: number;
    epoch?: string;
  }): void {
    this.entries.clear();
    for (const e of [...this.#state, ...(reply.state ?? [])]) this.entries.set(e.key, e.data);
    for (const e of [...this.#stream, ...(reply.publications ?? [])]) this.#set(e);
    this.offset = reply.offset ?? 0;
    this.epoch = reply.epoch ?? '';
    this.phase = 'live';
    this.#state = [];
    this.#stream = [];
    const early = this.#early;
    this.#early = [];
    for (const e of early) this.applyLive(e);
  }

  /** size of the snapshot the subscriber was given (entries, once live). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * applyLive applies one live change (a push). Before the flow is live it is kept for later;
   * once live: an old offset is dropped as `stale`, a skipped one counted as a gap (and
   * applied), a set of a held key counted as an overwrite (and applied: the mirror follows the
   * server). Returns whether it was applied now.
   */
  applyLive(e: MapEntry): boolean {
    if (this.phase !== 'live') {
      this.#early.push(e);
      return false;
    }
    const off = e.offset ?? 0;
    if (off > 0) {
      if (off <= this.offset) {
        this.anomalies.stale++;
        return false;
      }
      if (off !== this.offset + 1) this.anomalies.gaps++;
      this.offset = off;
    }
    if (e.removed !== true && this.entries.has(e.key)) this.anomalies.overwrites++;
    this.#set(e);
    return true;
  }

  #set(e: MapEntry): void {
    if (e.removed === true) this.entries.delete(e.key);
    else this.entries.set(e.key, e.data);
  }
}
