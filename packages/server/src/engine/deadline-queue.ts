/**
 * DeadlineQueue: the expiry index of the memory engines (streams in `broker-memory.ts`,
 * channel presence in `presence-memory.ts`) — a binary min-heap of `(at, item)` entries,
 * ordered by `at`, so state expires in O(log n) per due entry instead of a scan of everything
 * on every sweep.
 *
 * Each item holds at most one entry, and the holder keeps it: an earlier deadline moves the
 * entry (`reschedule`) and forgotten state takes its entry out (`remove`). An earlier version
 * pushed a new entry instead and skipped the old one as stale when it popped, so every channel
 * emptied before its entry was due left the entry — and through it the channel's whole state —
 * in the heap for a full TTL: under connection churn with presence on (one state per channel
 * occupancy), that was ~300 bytes of heap per departed connection for 67 s.
 *
 * @module
 */

/** QueueEntry is one deadline in a {@link DeadlineQueue}; its holder keeps it to move or remove it. */
export interface QueueEntry<T> {
  /** When the entry is due. Change it only through `reschedule`. */
  readonly at: number;
  readonly item: T;
}

interface Slot<T> {
  at: number;
  readonly item: T;
  /** Position in the heap array; -1 once popped or removed. */
  index: number;
}

/** DeadlineQueue is a min-heap of deadlines with removal and rescheduling by entry. */
export class DeadlineQueue<T> {
  private readonly heap: Slot<T>[] = [];

  /** size is the number of entries. */
  get size(): number {
    return this.heap.length;
  }

  /** push adds an entry due at `at` and returns it. */
  push(at: number, item: T): QueueEntry<T> {
    const slot: Slot<T> = { at, item, index: this.heap.length };
    this.heap.push(slot);
    this.up(slot.index);
    return slot;
  }

  /** popDue removes and returns the earliest entry if it is due (`at < now`), else undefined. */
  popDue(now: number): QueueEntry<T> | undefined {
    const top = this.heap[0];
    if (top === undefined || !(top.at < now)) return undefined;
    this.removeAt(0);
    return top;
  }

  /** reschedule moves `entry` (still queued) to a new deadline. */
  reschedule(entry: QueueEntry<T>, at: number): void {
    const slot = entry as Slot<T>;
    if (slot.index < 0) return;
    const earlier = at < slot.at;
    slot.at = at;
    if (earlier) this.up(slot.index);
    else this.down(slot.index);
  }

  /** remove takes `entry` out of the queue (no-op if it was popped or removed already). */
  remove(entry: QueueEntry<T>): void {
    const slot = entry as Slot<T>;
    if (slot.index >= 0) this.removeAt(slot.index);
  }

  /** clear removes every entry. */
  clear(): void {
    for (const slot of this.heap) slot.index = -1;
    this.heap.length = 0;
  }

  private removeAt(i: number): void {
    const heap = this.heap;
    const gone = heap[i]!;
    gone.index = -1;
    const last = heap.pop()!;
    if (last === gone) return;
    heap[i] = last;
    last.index = i;
    this.up(i);
    this.down(last.index);
  }

  private up(i: number): void {
    const heap = this.heap;
    const slot = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (p.at <= slot.at) break;
      heap[i] = p;
      p.index = i;
      i = parent;
    }
    heap[i] = slot;
    slot.index = i;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const slot = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && heap[r]!.at < heap[l]!.at ? r : l;
      const child = heap[c]!;
      if (child.at >= slot.at) break;
      heap[i] = child;
      child.index = i;
      i = c;
    }
    heap[i] = slot;
    slot.index = i;
  }
}
